"""Owns the fused ECG output across leads: one signal from several leads, chosen without references, and its beats.

    from cass_tf import fusion
    fused = fusion.fuse(parts["fetal"], rate=1000)     # parts["fetal"]: (leads, samples) per-lead fetal estimates
    fused.signal, fused.peaks, fused.heart_rate        # the chosen signal, the fused R peaks, BPM per window
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
go to the first candidate (leads before components). That candidate is the fused signal. Fetal beats use the
evidence of the 3 most regular admissible candidates (COMBINED, `combined_peaks`): their QRS envelopes, each scaled
to its own detection level, summed, detected by the same rule, and gaps longer than 1.66 median RRs searched again at
half the threshold (Pan & Tompkins 1985's search-back); a beat one candidate misses in noise another often shows.
This was chosen over the single candidate's peaks on 24 synthetic 4-lead recordings and kept over 32 (docs/multilead.md,
"Fetal beats from three candidates"); maternal beats stay the chosen candidate's own. Nothing here is fitted to real
data.
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
# {component: how many of the most regular admissible candidates give the fused beats (`combined_peaks`)}; chosen
# on synthetic fetal data (module doc). Other components' beats are their chosen candidate's events.r_peaks.
COMBINED = {"fetal": 3}


@dataclasses.dataclass(frozen=True)
class Fused:
    """The chosen signal of `fuse`, its weights over the leads, the fused R peaks, and heart rate (BPM) per window."""

    signal: np.ndarray
    weights: np.ndarray
    candidate: str  # the most regular admissible candidate, "lead k" or "component k" (0-based): `signal`
    combined: tuple[str, ...]  # the candidates whose QRS evidence gives `peaks` (`combined_peaks`), `candidate` first
    peaks: np.ndarray
    irregularity: float
    windows: list[tuple[int, int]]
    heart_rate: np.ndarray


def fuse(leads: np.ndarray, rate: float, component: str = "fetal",
         maternal_peaks: Optional[np.ndarray] = None) -> Fused:
    """The most regular admissible candidate of (leads, samples) estimates of `component`, and its beats, or for a
    component of COMBINED those of its COMBINED[component] most regular ones (see the module doc)."""
    found = candidates(leads, rate, component, maternal_peaks)
    count = COMBINED.get(component)
    used = found.ranking[:count or 1] or [0]  # none admissible: the first candidate
    peaks = combined_peaks(found.signals[used], rate, component) if count else found.peaks[used[0]]
    samples = found.signals.shape[1]
    seconds = min(HEART_RATE_SECONDS, samples / rate)
    return Fused(found.signals[used[0]], found.weights[used[0]], found.names[used[0]],
                 tuple(found.names[k] for k in used), peaks, float(found.scores[used[0]]),
                 metrics.rate_windows(samples, rate, seconds),
                 metrics.windowed_event_rates(peaks, samples, rate, seconds))


@dataclasses.dataclass(frozen=True)
class Candidates:
    """`fuse`'s candidates of (leads, samples) estimates: the leads and their FastICA components (`signals` =
    `weights` @ leads), their names, events.r_peaks and scores (rr_irregularity, inf where not admissible)."""

    signals: np.ndarray
    weights: np.ndarray
    names: list[str]
    peaks: list[np.ndarray]
    scores: np.ndarray

    @property
    def ranking(self) -> list[int]:
        """The admissible candidates, most regular first (ties: the first candidate)."""
        return [int(k) for k in np.argsort(self.scores, kind="stable") if np.isfinite(self.scores[k])]


def candidates(leads: np.ndarray, rate: float, component: str = "fetal",
               maternal_peaks: Optional[np.ndarray] = None) -> Candidates:
    """The candidates `fuse` chooses among, with their peaks and scores (module doc)."""
    leads = np.asarray(leads, dtype=np.float64)
    if leads.ndim != 2 or leads.shape[1] < 2:
        raise ValueError(f"fuse: leads must be (leads, samples), got shape {leads.shape}")
    weights = np.concatenate([np.eye(leads.shape[0]), fastica(leads)[1]])
    names = [f"lead {k}" for k in range(leads.shape[0])] \
        + [f"component {k}" for k in range(len(weights) - leads.shape[0])]
    signals = weights @ leads
    peaks = [r_peaks(s, rate, component) for s in signals]
    scores = np.array([rr_irregularity(p) if _admissible(p, leads.shape[1], rate, component, maternal_peaks)
                       else np.inf for p in peaks])
    return Candidates(signals, weights, names, peaks, scores)


def combined_peaks(signals: np.ndarray, rate: float, component: str) -> np.ndarray:
    """R peaks of the sum of (signals, samples)' QRS envelopes, each divided by its detection level (metrics.qrs_level;
    silent signals add nothing), by the detector of events.r_peaks with the component's heart-rate limits, then
    metrics.search_back. One signal alone gives events.r_peaks' peaks plus the search-back's."""
    low, high = metrics.HEART_RATE_LIMITS[component]
    envelope = np.zeros(signals.shape[1])
    for signal in signals:
        single = metrics.qrs_envelope(signal, rate)
        level = metrics.qrs_level(single, rate, high, low)
        if level > 0:
            envelope += single / level
    return metrics.search_back(envelope, metrics.envelope_qrs(envelope, rate, high, low), rate, high, low)


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
