"""Reads breathing on BIDMC from the three respiratory modulations of a PPG and from their sum (issue 21's question:
does a respiration waveform that the modulations imply beat the band-pass?).

    python bench/ppg_modulations.py [--ppg_model saved_models/ppg/1 ...] [--out docs/raw/ppg_modulations.json]

Per source, one record at a time, at the PPG's rate (Charlton et al., "Breathing rate estimation from the
electrocardiogram and photoplethysmogram: a review", IEEE Rev. Biomed. Eng. 11, 2018, and Karlen et al.,
"Multiparameter respiratory rate estimation from the photoplethysmogram", IEEE TBME 60(7), 2013):
- RIIV, the baseline: the respiratory output (for "band-pass": the PLETH band-passed to metrics.BREATHING_BAND);
- RIAV, the pulse amplitudes: each pulse peak's height above the lowest point since the previous peak;
- RIFV, the pulse intervals: each peak's time since the previous one;
the pulses are the peaks of the heart output (for "band-pass": the PLETH in metrics.PULSE_BAND) at least 60/210 s
apart (the band's top) whose prominence is at least PULSE_PROMINENCE of the median peak's (which drops dicrotic
notches: the "peaks" estimator's rule counts them, and every second interval then alternates at half the pulse rate,
inside the breathing band), and RIAV and RIFV are interpolated linearly between pulses and band-passed to
metrics.BREATHING_BAND as the band-pass reference's RIIV is (their slow drift would otherwise leak into the band). Each
waveform is scored as cass_tf.bidmc scores a respiratory output: 32-s windows every 16 s, every
metrics.RATE_ESTIMATORS estimator, against annotator 1, mean of the record MAEs. "fused" is the spectral fusion of
the three: per window, each one's periodogram inside metrics.BREATHING_BAND (as the "spectral" estimator computes
it) divided by its sum there, the three averaged, and the rate at the peak (equal weights, nothing fitted; the
modulations' phases differ between people, so their spectra are averaged, not their waveforms). BIDMC is validation
data: this only reports; nothing here is chosen on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import numpy as np
import scipy.signal as sps

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cass_tf import bidmc, metrics, realdata  # noqa: E402
from cass_tf.atomic import write_text  # noqa: E402
from cass_tf.separator import Separator  # noqa: E402

MODULATIONS = ("riiv", "riav", "rifv")
PULSE_PROMINENCE = 0.3  # a fixed design choice, not tuned: a dicrotic notch stands out far less than a pulse
FUSED = "fused"


def modulations(heart: np.ndarray, baseline: np.ndarray, rate: float) -> dict[str, np.ndarray]:
    """{"riiv", "riav", "rifv"} waveforms of one record (module doc), each as long as `heart` (RIAV and RIFV zero
    with fewer than 3 pulses)."""
    pulses, _ = sps.find_peaks(heart, distance=max(1, int(rate / metrics.PULSE_BAND[1])))
    prominence = sps.peak_prominences(heart, pulses)[0]
    pulses = pulses[prominence >= PULSE_PROMINENCE * np.median(prominence)] if pulses.size else pulses
    waves = {"riiv": np.asarray(baseline, dtype=np.float64)}
    if pulses.size < 3:
        return {**waves, "riav": np.zeros(heart.size), "rifv": np.zeros(heart.size)}
    troughs = np.array([np.min(heart[a:b + 1]) for a, b in zip(pulses[:-1], pulses[1:])])
    grid = np.arange(heart.size)
    series = {"riav": np.interp(grid, pulses[1:], heart[pulses[1:]] - troughs),
              "rifv": np.interp(grid, pulses[1:], np.diff(pulses) / rate)}
    return {**waves, **{name: metrics.bandpass(x, rate, metrics.BREATHING_BAND) for name, x in series.items()}}


def fused_rates(waves: dict[str, np.ndarray], rate: float) -> np.ndarray:
    """The spectral fusion's rate (per minute) per window (module doc); NaN where every waveform is flat."""
    rates = []
    for a, b in metrics.rate_windows(waves["riiv"].size, rate, hop=metrics.RATE_HOP_SECONDS):
        total, frequencies = 0.0, None
        for wave in waves.values():
            frequencies, power = metrics.band_periodogram(wave[a:b], rate, metrics.BREATHING_BAND)
            if power.sum() > 0:
                total = total + power / power.sum()
        rates.append(60.0 * frequencies[np.argmax(total)] if np.any(total) else np.nan)
    return np.array(rates)


def score_record(record: realdata.PPGRecord, sources: dict[str, Any]) -> dict[str, Any]:
    """{source: {modulation: {estimator: MAE}}} of one record."""
    reference = bidmc.references(record)["breathing"]
    result: dict[str, Any] = {"record": record.name}
    for label, separator in sources.items():
        if separator is None:
            heart = metrics.bandpass(record.pleth, record.rate, metrics.PULSE_BAND)
            baseline = metrics.bandpass(record.pleth, record.rate, metrics.BREATHING_BAND)
        else:
            parts = bidmc.separated(separator, record)
            heart, baseline = parts["heart"], parts["respiratory"]
        waves = modulations(heart, baseline, record.rate)
        result[label] = {name: {estimator: metrics.rate_errors(metrics.windowed_rates(
            wave, record.rate, metrics.BREATHING_BAND, estimator, hop=metrics.RATE_HOP_SECONDS), reference)["mae"]
            for estimator in metrics.RATE_ESTIMATORS} for name, wave in waves.items()}
        result[label][FUSED] = {"spectral": metrics.rate_errors(fused_rates(waves, record.rate), reference)["mae"]}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--ppg_model", action="append", default=None)
    parser.add_argument("--out", default="docs/raw/ppg_modulations.json")
    args = parser.parse_args()
    models = args.ppg_model or ["saved_models/ppg/1", "saved_models/ppg/2"]
    sources = {bidmc.BANDPASS: None, **{m: Separator(m) for m in models}}
    rows = []
    for name in realdata.BIDMC_RECORDS:
        rows.append(score_record(realdata.read_bidmc(name, args.data), sources))
        print(name, {s: round(rows[-1][s][FUSED]["spectral"], 2) for s in sources}, flush=True)
    means = {s: {m: {e: float(np.mean([r[s][m][e] for r in rows])) for e in rows[0][s][m]}
                 for m in (*MODULATIONS, FUSED)} for s in sources}
    meta = {"command": "python bench/ppg_modulations.py " + " ".join(sys.argv[1:]),
            "machine": f"{os.cpu_count()}-core CPU, no GPU", "statistic": "mean over records of each record's MAE"}
    write_text(args.out, json.dumps({"meta": meta, "mean": means, "records": rows}, indent=1) + "\n")
    print(json.dumps(means, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
