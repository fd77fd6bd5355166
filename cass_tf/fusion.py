"""Owns the fused ECG output across leads: one signal from several leads, chosen without references, and its beats.

    from cass_tf import fusion
    fused = fusion.fuse(parts["fetal"], rate=1000)     # parts["fetal"]: (leads, samples) per-lead fetal estimates
    fused.signal, fused.peaks, fused.heart_rate        # the chosen signal, its R peaks, BPM per fused.windows window
    fused.weights                                      # fused.signal == fused.weights @ leads

Candidates: every lead, and every independent component of the leads (FastICA, `fastica`: symmetric, log-cosh
contrast, Hyvarinen, "Fast and robust fixed-point algorithms for independent component analysis", IEEE TNN 10(3),
1999), i.e. linear combinations. Each candidate's R peaks come from events.r_peaks (the fixed detector of
metrics.detect_qrs with the component's heart-rate limits). The rule, blind (no reference peaks), after Varanini,
Tartarisco, Billeci, Macerata, Pioggia, Balocchi, "An efficient unsupervised fetal QRS complex detection from
abdominal maternal ECG", Physiol. Meas. 35(8), 2014 (they keep the source whose fetal RR series is smoothest):
the candidate whose detected RR series is most regular (events.rr_irregularity), among the admissible ones: at
least MIN_BEATS_PER_MINUTE of the beats of the component's lower heart-rate limit detected, a median detected rate
within its limits (metrics.HEART_RATE_LIMITS), and, when maternal R peaks are given,
at most MATERNAL_OVERLAP of its peaks within metrics.MATCH_SECONDS of one (a maternal remnant is regular too). Ties
go to the first candidate (leads before components). Nothing here is fitted to real data.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

import numpy as np

from cass_tf import metrics
from cass_tf.events import HEART_RATE_SECONDS, r_peaks, rr_irregularity

FASTICA_ITERATIONS = 200
FASTICA_TOLERANCE = 1e-6
FASTICA_SEED = 0
BASELINE_HZ = 1.0  # high-pass before maternal detection (as realdata's template subtraction)
MATERNAL_OVERLAP = 0.5  # chance coincidence of a fetal and a maternal beat within 50 ms is ~0.1-0.2
MIN_BEATS_PER_MINUTE = 0.5  # fraction of the lower heart-rate limit's beat count a candidate must reach


@dataclasses.dataclass(frozen=True)
class Fused:
    """The chosen signal of `fuse`, its weights over the leads, R peaks, and heart rate (BPM) per window."""

    signal: np.ndarray
    weights: np.ndarray
    candidate: str  # "lead k" or "component k" (0-based)
    peaks: np.ndarray
    irregularity: float
    windows: list[tuple[int, int]]
    heart_rate: np.ndarray


def fuse(leads: np.ndarray, rate: float, component: str = "fetal",
         maternal_peaks: Optional[np.ndarray] = None) -> Fused:
    """The most regular admissible candidate of (leads, samples) estimates of `component` (see the module doc)."""
    leads = np.asarray(leads, dtype=np.float64)
    if leads.ndim != 2 or leads.shape[1] < 2:
        raise ValueError(f"fuse: leads must be (leads, samples), got shape {leads.shape}")
    weights = np.concatenate([np.eye(leads.shape[0]), fastica(leads)[1]])
    names = [f"lead {k}" for k in range(leads.shape[0])] \
        + [f"component {k}" for k in range(len(weights) - leads.shape[0])]
    signals = weights @ leads
    peaks = [r_peaks(s, rate, component) for s in signals]
    scores = [rr_irregularity(p) if _admissible(p, leads.shape[1], rate, component, maternal_peaks) else np.inf
              for p in peaks]
    best = int(np.argmin(scores))
    seconds = min(HEART_RATE_SECONDS, leads.shape[1] / rate)
    return Fused(signals[best], weights[best], names[best], peaks[best], float(scores[best]),
                 metrics.rate_windows(leads.shape[1], rate, seconds),
                 metrics.windowed_event_rates(peaks[best], leads.shape[1], rate, seconds))


def _admissible(peaks: np.ndarray, samples: int, rate: float, component: str,
                maternal_peaks: Optional[np.ndarray]) -> bool:
    low, high = metrics.HEART_RATE_LIMITS[component]
    if peaks.size < max(3, MIN_BEATS_PER_MINUTE * low * samples / rate / 60):
        return False
    if not low <= 60 * rate / float(np.median(np.diff(peaks))) <= high:
        return False
    if maternal_peaks is None or maternal_peaks.size == 0:
        return True
    tolerance = round(metrics.MATCH_SECONDS * rate)
    return metrics.match_events(peaks, maternal_peaks, tolerance)["tp"] <= MATERNAL_OVERLAP * peaks.size


def fuse_outputs(parts: Mapping[str, np.ndarray], rate: float) -> dict[str, Fused]:
    """A separator's (leads, samples) ECG outputs fused: {"maternal": the maternal rule of `maternal_peaks` over the
    maternal outputs, "fetal": `fuse` of the fetal outputs, maternal remnants told apart by those maternal peaks}."""
    maternal = fuse(_high_passed(parts["maternal"], rate), rate, "maternal")
    return {"maternal": maternal, "fetal": fuse(parts["fetal"], rate, "fetal", maternal_peaks=maternal.peaks)}


def maternal_peaks(leads: np.ndarray, rate: float) -> np.ndarray:
    """Maternal R peaks of (leads, samples) abdominal leads by the same rule: `fuse(..., "maternal")` of the leads
    high-passed at BASELINE_HZ (metrics.bandpass), i.e. the most regular maternal RR series among the leads and
    their independent components."""
    return fuse(_high_passed(leads, rate), rate, "maternal").peaks


def _high_passed(leads: np.ndarray, rate: float) -> np.ndarray:
    return metrics.bandpass(np.asarray(leads, dtype=np.float64), rate, (BASELINE_HZ, rate / 2))


def fastica(x: np.ndarray, seed: int = FASTICA_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(sources (k, samples), unmixing (k, leads)) of (leads, samples) `x`: symmetric FastICA with the log-cosh
    contrast on the whitened leads (k = the rank of x, 0 for silent leads); sources = unmixing @ (x - its row means), unit variance."""
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(axis=1, keepdims=True)
    values, vectors = np.linalg.eigh(centred @ centred.T / x.shape[1])
    keep = values > 1e-12 * max(float(values.max()), 1e-300)
    whitening = (vectors[:, keep] / np.sqrt(values[keep])).T
    z = whitening @ centred
    if z.shape[0] == 0:  # silent leads: no components
        return z, whitening
    w = _decorrelate(np.random.default_rng(seed).standard_normal((z.shape[0], z.shape[0])))
    for _ in range(FASTICA_ITERATIONS):
        g = np.tanh(w @ z)
        updated = _decorrelate(g @ z.T / z.shape[1] - np.diag((1 - g ** 2).mean(axis=1)) @ w)
        converged = np.max(np.abs(np.abs(np.sum(updated * w, axis=1)) - 1)) < FASTICA_TOLERANCE
        w = updated
        if converged:
            break
    unmixing = w @ whitening
    return unmixing @ centred, unmixing


def _decorrelate(w: np.ndarray) -> np.ndarray:
    """(W W^T)^(-1/2) W: the symmetric orthogonalisation of FastICA."""
    values, vectors = np.linalg.eigh(w @ w.T)
    return (vectors / np.sqrt(values)) @ vectors.T @ w
