"""Owns the real validation recordings (ADFECGDB, BIDMC): readers and the classical references they are scored with.

Validation only: nothing here feeds training or model selection. Readers take a data root holding the datasets in
their published layout (`<root>/ADFECGDB/rNN.edf` + `rNN.edf.qrs`, `<root>/BIDMC/bidmc_NN_*.csv`, see each
SOURCE.md). ADFECGDB needs the optional extra `pip install .[biosignal]` (pyedflib for EDF, wfdb for the `.qrs`
annotations); BIDMC is plain CSV.

Classical references (fixed textbook rules; thresholds are metrics.py's, chosen on synthetic data):
- Fetal ECG, one channel: maternal template subtraction (cass_tf.cancellation), then fetal R peaks detected on the
  residual.
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
from cass_tf.cancellation import template_subtraction, template_subtraction_leads
from cass_tf.events import r_peaks

ADFECGDB_RECORDS = ("r01", "r04", "r07", "r08", "r10")
BIDMC_RECORDS = tuple(f"{i:02d}" for i in range(1, 27))
ABDOMINAL_CHANNELS = ("Abdomen_1", "Abdomen_2", "Abdomen_3", "Abdomen_4")
DIRECT_CHANNEL = "Direct_1"
BIDMC_RATE = 125


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


def fetal_peaks(signal: np.ndarray, rate: float) -> np.ndarray:
    """events.r_peaks with the fetal heart-rate limits, used on every fetal signal scored here."""
    return r_peaks(signal, rate, "fetal")
