"""Owns the real validation recordings (ADFECGDB, BIDMC): readers and the classical references they are scored with.

Validation only: nothing here feeds training or model selection. Readers take a data root holding the datasets in
their published layout (`<root>/ADFECGDB/rNN.edf` + `rNN.edf.qrs`, `<root>/BIDMC/bidmc_NN_*.csv`, see each
SOURCE.md). ADFECGDB needs the optional extra `pip install .[biosignal]` (pyedflib for EDF, wfdb for the `.qrs`
annotations); BIDMC is plain CSV.

Classical references (fixed textbook rules; thresholds are metrics.py's, chosen on synthetic data):
- Fetal ECG, one channel: maternal template subtraction. Maternal R peaks by metrics.detect_qrs (the maternal QRS
  dominates an abdominal lead); around each, a segment from -MATERNAL_BEFORE to +MATERNAL_AFTER of the median RR;
  the template is the mean of the TEMPLATE_BEATS nearest maternal beats (follows slow morphology change), scaled to
  the beat by least squares, and subtracted; fetal R peaks are then detected on the residual.
- Fetal ECG, all leads (`multilead_fetal`, after Varanini et al. 2014, see cass_tf.fusion): maternal R peaks on the
  leads' first principal component, template subtraction on each lead at those peaks, FastICA across the residual
  leads, and the blind choice of cass_tf.fusion among the residuals and their components.
- PPG: the raw PLETH band-passed to the breathing or the pulse band (metrics.bandpass).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Optional

import numpy as np

from cass_tf import fusion, metrics
from cass_tf.events import r_peaks

ADFECGDB_RECORDS = ("r01", "r04", "r07", "r08", "r10")
BIDMC_RECORDS = tuple(f"{i:02d}" for i in range(1, 27))
ABDOMINAL_CHANNELS = ("Abdomen_1", "Abdomen_2", "Abdomen_3", "Abdomen_4")
DIRECT_CHANNEL = "Direct_1"
BIDMC_RATE = 125
MATERNAL_BEFORE, MATERNAL_AFTER = 0.35, 0.65  # template segment around a maternal R peak, fractions of the median RR
TEMPLATE_BEATS = 20
BASELINE_HZ = fusion.BASELINE_HZ  # high-pass applied before template subtraction (removes wander, keeps QRS/T)


@dataclasses.dataclass(frozen=True)
class AbdominalRecord:
    """One ADFECGDB record: abdominal channels (channels, samples) and the direct scalp ECG in microvolts at `rate`."""

    name: str
    rate: int
    abdomen: np.ndarray
    direct: np.ndarray
    fetal_peaks: np.ndarray  # reference fetal R peaks, sample indices at `rate`


@dataclasses.dataclass(frozen=True)
class PPGRecord:
    """One BIDMC record: fingertip PPG (PLETH, arbitrary units) at `rate` with its reference annotations."""

    name: str
    rate: int
    pleth: np.ndarray
    breaths: tuple[np.ndarray, ...]  # breath onsets (sample indices), one array per annotator
    heart_rate: np.ndarray  # monitor HR (beats/min), once a second from t = 0; NaN where the monitor gave none
    pulse_rate: np.ndarray  # monitor PULSE (beats/min) from the oximeter, once a second; NaN where none


def read_adfecgdb(record: str, root: str) -> AbdominalRecord:
    """Reads `<root>/ADFECGDB/<record>.edf` (pyedflib) and its `.qrs` fetal R peaks (wfdb.rdann)."""
    try:
        import pyedflib  # optional extra [biosignal]
        import wfdb  # optional extra [biosignal]
    except ImportError as e:
        raise ImportError(f"reading ADFECGDB needs pyedflib and wfdb: pip install '.[biosignal]' ({e})") from None
    path = os.path.join(root, "ADFECGDB", f"{record}.edf")
    if not os.path.exists(path):
        raise FileNotFoundError(f"ADFECGDB record {record!r}: no file {path!r}")
    with pyedflib.EdfReader(path) as reader:
        labels = reader.getSignalLabels()
        missing = [c for c in (DIRECT_CHANNEL, *ABDOMINAL_CHANNELS) if c not in labels]
        if missing:
            raise ValueError(f"{path}: channels {missing} missing (has {labels})")
        rates = {int(reader.getSampleFrequency(i)) for i in range(len(labels))}
        if len(rates) != 1:
            raise ValueError(f"{path}: channels at different rates {sorted(rates)}")
        signals = {label: reader.readSignal(i) for i, label in enumerate(labels)}
    annotation = wfdb.rdann(path, "qrs")
    return AbdominalRecord(
        name=record, rate=rates.pop(),
        abdomen=np.stack([signals[c] for c in ABDOMINAL_CHANNELS]),
        direct=signals[DIRECT_CHANNEL],
        fetal_peaks=np.asarray(annotation.sample, dtype=np.int64),
    )


def read_bidmc(record: str, root: str) -> PPGRecord:
    """Reads BIDMC record `record` ("01".."26"): PLETH from _Signals.csv, _Breaths.csv, HR/PULSE from _Numerics.csv."""
    stem = os.path.join(root, "BIDMC", f"bidmc_{record}")
    signals = _read_csv(f"{stem}_Signals.csv")
    numerics = _read_csv(f"{stem}_Numerics.csv")
    breaths = _read_csv(f"{stem}_Breaths.csv")
    return PPGRecord(
        name=f"bidmc_{record}", rate=BIDMC_RATE,
        pleth=_column(signals, "PLETH", f"{stem}_Signals.csv"),
        breaths=tuple(column[np.isfinite(column)].astype(np.int64) for column in breaths.values()),
        heart_rate=_column(numerics, "HR", f"{stem}_Numerics.csv"),
        pulse_rate=_column(numerics, "PULSE", f"{stem}_Numerics.csv"),
    )


def _read_csv(path: str) -> dict[str, np.ndarray]:
    """{stripped header name: float64 column} of a comma-separated file; empty or "NaN" cells become NaN."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"BIDMC file not found: {path!r}")
    with open(path, encoding="utf-8") as f:
        names = [name.strip() for name in f.readline().split(",")]
    table = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64, ndmin=2)
    if table.shape[1] != len(names):
        raise ValueError(f"{path}: header has {len(names)} columns, rows have {table.shape[1]}")
    return {name: table[:, i] for i, name in enumerate(names)}


def _column(table: dict[str, np.ndarray], name: str, path: str) -> np.ndarray:
    if name not in table:
        raise ValueError(f"{path}: no column {name!r} (has {list(table)})")
    return table[name]


def monitor_rates(values: np.ndarray, samples: int, rate: float, seconds: float = metrics.RATE_WINDOW_SECONDS,
                  hop: float | None = None, statistic: Callable[[np.ndarray], Any] = np.mean) -> np.ndarray:
    """`statistic` (default the mean) of once-a-second monitor values inside each metrics.rate_windows(samples, rate,
    seconds, hop) window (NaN where none is finite)."""
    result = []
    for start, end in metrics.rate_windows(samples, rate, seconds, hop):
        inside = values[int(np.ceil(start / rate)):int(np.ceil(end / rate))]
        inside = inside[np.isfinite(inside)]
        result.append(float(statistic(inside)) if inside.size else float("nan"))
    return np.array(result)


def template_subtraction(channel: np.ndarray, rate: float,
                         peaks: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """(residual, maternal R peaks): the high-passed channel minus a scaled local mean maternal beat at each peak;
    the peaks are detected on the channel unless given (e.g. fusion.maternal_peaks of all leads)."""
    x = metrics.bandpass(channel, rate, (BASELINE_HZ, rate / 2))
    peaks = r_peaks(x, rate, "maternal") if peaks is None else np.asarray(peaks, dtype=np.int64)
    residual = x.copy()
    if peaks.size < 2:
        return residual, peaks
    rr = float(np.median(np.diff(peaks)))
    before, after = int(MATERNAL_BEFORE * rr), int(MATERNAL_AFTER * rr)
    inside = peaks[(peaks >= before) & (peaks + after <= x.size)]
    if inside.size == 0:
        return residual, peaks
    segments = np.stack([x[p - before:p + after] for p in inside])
    half = TEMPLATE_BEATS // 2
    for k, p in enumerate(inside):
        lo = max(0, min(k - half, inside.size - TEMPLATE_BEATS))
        template = segments[lo:lo + TEMPLATE_BEATS].mean(axis=0)
        gain = float(segments[k] @ template) / float(template @ template) if template.any() else 0.0
        residual[p - before:p + after] -= gain * template
    return residual, peaks


def classical_fetal_peaks(channel: np.ndarray, rate: float) -> np.ndarray:
    """Fetal R peaks of one abdominal channel by maternal template subtraction (see the module doc)."""
    residual, _ = template_subtraction(channel, rate)
    return fetal_peaks(residual, rate)


def multilead_fetal(abdomen: np.ndarray, rate: float) -> fusion.Fused:
    """The multi-lead classical reference on (leads, samples) abdominal leads: maternal R peaks on all leads together
    (fusion.maternal_peaks), maternal template subtraction on each lead at those peaks, then fusion.fuse of the
    residuals (the leads and their FastICA components; the most regular fetal RR series, maternal remnants excluded)."""
    residuals, maternal = template_subtraction_leads(abdomen, rate)
    return fusion.fuse(residuals, rate, "fetal", maternal_peaks=maternal)


def template_subtraction_leads(abdomen: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(residuals (leads, samples), maternal R peaks): template_subtraction of each lead at the maternal peaks of all
    leads together (fusion.maternal_peaks)."""
    maternal = fusion.maternal_peaks(abdomen, rate)
    return np.stack([template_subtraction(lead, rate, maternal)[0] for lead in abdomen]), maternal


def fetal_peaks(signal: np.ndarray, rate: float) -> np.ndarray:
    """events.r_peaks with the fetal heart-rate limits, used on every fetal signal scored here."""
    return r_peaks(signal, rate, "fetal")
