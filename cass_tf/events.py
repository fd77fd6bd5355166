"""Owns events from separated components: R peaks and heart-rate traces (ECG), pulse and breathing rates (PPG), the
channel rule, and writing them (CSV, WFDB annotation files).

    from cass_tf import events
    found = events.detect(parts, ["Abdomen_1", "Abdomen_2"], rate=1000)   # parts: {component: (channels, samples)}
    found.peaks["fetal"][1]          # fetal R peaks (sample indices) of channel 1
    found.chosen["fetal"]            # the channel the rule picks (most regular RR), written to .fqrs
    events.write(found, "out/r01", "out/r01/r01.edf")   # beats.csv, heart_rate.csv, r01.edf.fqrs/.mqrs

ECG components (metrics.HEART_RATE_LIMITS: maternal, fetal): R peaks by metrics.detect_qrs with the component's
heart-rate limits (`r_peaks`, the detector pipelines/validate_real.py scores); heart rate per HEART_RATE_SECONDS
window from the peaks inside it (metrics.windowed_event_rates). The channel written to the WFDB annotation file is the
one whose detected RR series is most regular (`rr_irregularity`: validate_real's "own blind" rule).
Given fused outputs (`fused`: cass_tf.fusion.fuse_outputs of the same parts, e.g. of a multi-lead model's leads: the
most regular admissible lead or independent component, no references), each fused signal is one more channel named FUSED (after the real ones, index len(channels)), and it is the chosen
one, so the annotation files, the beats' `chosen` column and the heart-rate traces are the fused output's;
`Events.fused` keeps the signals and their weights over the channels (written to fused.csv / fused.json).
PPG components (heart, respiratory): pulse and breathing rate traces, per metrics.RATE_WINDOW_SECONDS window every
metrics.RATE_HOP_SECONDS (32 s every 16 s; one window of the whole signal when shorter), by every estimator in
metrics.RATE_ESTIMATORS ("spectral", "peaks", "ar"), each row naming its estimator: the protocol cass_tf.bidmc
scores on BIDMC. `ppg_rates` gives them for one separated PPG without the rest.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from cass_tf import atomic, metrics
from cass_tf.records import write_annotations

HEART_RATE_SECONDS = 5.0  # heart-rate trace window: a few beats even at 40 BPM, and fetal decelerations still show
ANNOTATION_EXTENSIONS = {"fetal": "fqrs", "maternal": "mqrs"}  # WFDB annotation files of the chosen channel's peaks
RATE_QUANTITIES = {"heart": ("pulse", metrics.PULSE_BAND), "respiratory": ("breathing", metrics.BREATHING_BAND)}
BEATS_CSV, HEART_RATE_CSV, RATES_CSV = "beats.csv", "heart_rate.csv", "rates.csv"
FUSED, FUSED_CSV, FUSED_JSON = "fused", "fused.csv", "fused.json"  # the fused output's channel name and files


@dataclasses.dataclass(frozen=True)
class Events:
    """What `detect` found in one separation: per ECG component, each channel's R peaks and the chosen channel; per
    window (`windows`: (start, end) samples), the heart rates (ECG, BPM) or pulse/breathing rates (PPG, per minute)
    as {(quantity, estimator): (channels, windows)} ("detector" is the estimator of ECG heart rates)."""

    channels: tuple[str, ...]
    rate: int
    samples: int
    peaks: dict[str, list[np.ndarray]]
    chosen: dict[str, int]
    windows: list[tuple[int, int]]
    rates: dict[tuple[str, str], np.ndarray]
    fused: dict[str, Any] = dataclasses.field(default_factory=dict)  # {component: fusion.Fused} given to `detect`


def require(components: Sequence[str]) -> None:
    """A ValueError unless a model's components carry events (ECG: maternal/fetal; PPG: heart/respiratory)."""
    if not any(c in metrics.HEART_RATE_LIMITS or c in RATE_QUANTITIES for c in components):
        raise ValueError(f"--events: the model's components {list(components)} carry no events (ECG: maternal/fetal, "
                         "PPG: heart/respiratory)")


def r_peaks(signal: np.ndarray, rate: float, component: str) -> np.ndarray:
    """R-peak sample indices of a maternal or fetal ECG: metrics.detect_qrs with that heart's rate limits."""
    low, high = metrics.HEART_RATE_LIMITS[component]
    return metrics.detect_qrs(signal, rate, max_bpm=high, min_bpm=low)


def rr_irregularity(peaks: np.ndarray) -> float:
    """Mean |successive RR difference| / median RR of detected peaks (inf with fewer than 3)."""
    if peaks.size < 3:
        return float("inf")
    rr = np.diff(peaks)
    return float(np.mean(np.abs(np.diff(rr))) / np.median(rr))


def regular_channel(peaks: Sequence[np.ndarray]) -> int:
    """The channel whose detected RR series is most regular (the first of equals)."""
    return int(np.argmin([rr_irregularity(p) for p in peaks]))


def fetal_share(outputs: dict[str, np.ndarray]) -> float:
    """|fetal|^2 / (|fetal|^2 + |maternal|^2) of one channel's outputs (0 when both are silent)."""
    fetal, maternal = float(np.sum(outputs["fetal"] ** 2)), float(np.sum(outputs["maternal"] ** 2))
    return fetal / (fetal + maternal) if fetal + maternal > 0 else 0.0


def detect(parts: dict[str, np.ndarray], channels: Sequence[str], rate: int,
           estimators: Optional[Sequence[str]] = None, fused: Optional[Mapping[str, Any]] = None) -> Events:
    """Events of separated components {component: (channels, samples) or (samples,)} at `rate`; see the module doc.

    `estimators`: the metrics.RATE_ESTIMATORS used for PPG rates (default: all). `fused`: {component:
    fusion.Fused} of these parts, each the FUSED channel and the chosen one (module doc). Raises ValueError when no
    component carries events (an audio model).
    """
    require(list(parts))
    parts = {n: np.atleast_2d(v) for n, v in parts.items()}
    samples = next(iter(parts.values())).shape[1]
    peaks = {c: [r_peaks(row, rate, c) for row in v] for c, v in parts.items() if c in metrics.HEART_RATE_LIMITS}
    chosen = {c: regular_channel(p) for c, p in peaks.items()}
    fused = dict(fused or {})
    if fused:
        channels = (*channels, FUSED)
        for c, f in fused.items():
            peaks[c].append(f.peaks)
            chosen[c] = len(channels) - 1
    rates: dict[tuple[str, str], np.ndarray] = {}
    if peaks:
        seconds = min(HEART_RATE_SECONDS, samples / rate)
        for c, per in peaks.items():  # (a fused channel included: its beats are in `per`)
            rates[(c, "detector")] = np.stack([metrics.windowed_event_rates(p, samples, rate, seconds) for p in per])
        windows = metrics.rate_windows(samples, rate, seconds)
    else:
        seconds = min(metrics.RATE_WINDOW_SECONDS, samples / rate)
        hop = metrics.RATE_HOP_SECONDS if seconds == metrics.RATE_WINDOW_SECONDS else None
        windows = metrics.rate_windows(samples, rate, seconds, hop)
        for c, (quantity, band) in RATE_QUANTITIES.items():
            for estimator in (estimators or tuple(metrics.RATE_ESTIMATORS)) if c in parts else ():
                rates[(quantity, estimator)] = np.stack([
                    metrics.windowed_rates(row, rate, band, estimator, seconds, hop) for row in parts[c]])
    return Events(tuple(channels), rate, samples, peaks, chosen, windows, rates, fused)


def ppg_rates(parts: dict[str, np.ndarray], rate: int, estimator: str = "spectral"
              ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Breathing- and pulse-rate traces of one separated PPG ({"heart": 1-D, "respiratory": 1-D}, e.g.
    `cass_tf.separate(ppg, "saved_models/ppg", sample_rate=rate)`) by one metrics.RATE_ESTIMATORS estimator:
    {"breathing" / "pulse": (window centres in seconds, rate per minute)}, the windows of `detect` (NaN where the
    estimator finds none). Raises ValueError for an unknown estimator or no heart/respiratory component."""
    if estimator not in metrics.RATE_ESTIMATORS:
        raise ValueError(f"estimator must be one of {list(metrics.RATE_ESTIMATORS)}, got {estimator!r}")
    if not any(c in parts for c in RATE_QUANTITIES):
        raise ValueError(f"no PPG component (heart, respiratory) among {list(parts)}")
    found = detect({c: v for c, v in parts.items() if c in RATE_QUANTITIES}, ["ppg"], rate, [estimator])
    centres = np.array([(a + b) / 2 for a, b in found.windows]) / rate
    return {quantity: (centres, values[0]) for (quantity, _), values in found.rates.items()}


def write(found: Events, folder: str, base: str) -> list[str]:
    """Writes the events into `folder`: ECG: beats.csv (every channel's peaks, with the instantaneous rate and whether
    the channel is the chosen one), heart_rate.csv (per window and channel) and WFDB annotation files
    `<base>.fqrs`/`.mqrs` of the chosen channels' peaks (needs wfdb), and for fused events fused.csv (time and each
    fused signal) and fused.json (each one's candidate and weights over the channels); PPG: rates.csv. Returns the
    paths written."""
    written = []
    if found.fused:
        names = list(found.fused)
        signals = np.stack([found.fused[n].signal for n in names], axis=1)
        written.append(_write_csv(os.path.join(folder, FUSED_CSV), ["time_s"] + names,
                                  [[_seconds(k / found.rate)] + [f"{v:.9g}" for v in row]
                                   for k, row in enumerate(signals)]))
        choice = {n: {"candidate": f.candidate, "beats_from": list(f.combined), "channels": list(found.channels[:-1]),
                      "weights": [float(w) for w in f.weights]} for n, f in found.fused.items()}
        written.append(atomic.write_text(os.path.join(folder, FUSED_JSON), json.dumps(choice, indent=2) + "\n"))
    if found.peaks:
        written.append(_write_csv(os.path.join(folder, BEATS_CSV), ["component", "channel", "sample", "time_s",
                                                                     "rr_bpm", "chosen"], _beat_rows(found)))
        written.append(_write_csv(os.path.join(folder, HEART_RATE_CSV), ["channel", "start_s", "end_s"]
                                  + [f"{c}_bpm" for c, _ in found.rates], _window_rows(found, None)))
        for component, per in found.peaks.items():
            written.append(write_annotations(base, ANNOTATION_EXTENSIONS[component], per[found.chosen[component]],
                                             found.rate, channel=found.chosen[component]))
    else:
        estimators = sorted({e for _, e in found.rates}, key=list(metrics.RATE_ESTIMATORS).index)
        quantities = sorted({q for q, _ in found.rates})
        rows = [row for e in estimators for row in _window_rows(found, e, quantities)]
        written.append(_write_csv(os.path.join(folder, RATES_CSV), ["channel", "start_s", "end_s", "estimator"]
                                  + [f"{q}_per_min" for q in quantities], rows))
    return written


def traces(found: Events) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{label: (window centres in seconds, rate)} for a figure: the chosen channels' heart rates (ECG), or each
    quantity by the first estimator (PPG), channel 0."""
    centres = np.array([(a + b) / 2 for a, b in found.windows]) / found.rate
    result = {}
    for (quantity, estimator), values in found.rates.items():
        if quantity in found.chosen:
            k = found.chosen[quantity]
            result[f"{quantity} heart rate (BPM), {found.channels[k]}"] = (centres, values[k])
        elif estimator == next(iter(found.rates))[1]:
            result[f"{quantity} rate (/min, {estimator}), {found.channels[0]}"] = (centres, values[0])
    return result


def annotations(found: Events) -> list[tuple[float, str]]:
    """(onset seconds, text) of the chosen channels' R peaks, e.g. (12.345, "fetal R Abdomen_4"), for EDF+ output."""
    return sorted((float(p) / found.rate, f"{c} R {found.channels[found.chosen[c]]}")
                  for c, per in found.peaks.items() for p in per[found.chosen[c]])


def _beat_rows(found: Events) -> list[list[object]]:
    rows = []
    for component, per in found.peaks.items():
        for k, p in enumerate(per):
            rr = np.concatenate([[np.nan], 60.0 * found.rate / np.diff(p)]) if p.size else np.zeros(0)
            rows += [[component, found.channels[k], int(s), _seconds(s / found.rate), _number(r),
                      int(k == found.chosen[component])] for s, r in zip(p, rr)]
    return rows


def _window_rows(found: Events, estimator: Optional[str], quantities: Optional[list[str]] = None
                 ) -> list[list[object]]:
    keys = [(q, estimator) for q in quantities] if quantities else list(found.rates)
    rows = []
    for k, channel in enumerate(found.channels):
        for w, (a, b) in enumerate(found.windows):
            rows.append([channel, _seconds(a / found.rate), _seconds(b / found.rate)]
                        + ([estimator] if estimator else []) + [_number(found.rates[key][k, w]) for key in keys])
    return rows


def _number(value: float) -> str:
    """A CSV cell: up to 6 significant digits; empty for NaN (no beats in the window)."""
    return "" if not np.isfinite(value) else f"{float(value):.6g}"


def _seconds(value: float) -> str:
    return f"{float(value):.6f}"


def _write_csv(path: str, heading: list[str], rows: list[list[object]]) -> str:
    with atomic.writing(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(heading)
        out.writerows(rows)
    return path
