"""How well anyone could find the fetal beats of the synthetic 4-lead recordings, and how close multi-lead linear
filtering could come to their waveforms, with the truth's help: oracle references for issue 23's synthetic targets.

    python bench/ecg_oracle_beats.py [--out docs/raw/ecg_oracle_beats.json]     # about a minute

On validate_real's multi-lead split (MULTILEAD_CONFIG's validation recordings, 8 x 4 leads x 20 s, the split that
issue 23's synthetic targets are scored on) and validate_real's 8 synthetic 4-lead 60-s recordings, per recording:
- "fetal_to_noise_db": per lead, the fetal-to-noise power ratio in FETAL_BAND (noise: the mixture less both
  components);
- "detector": fetal QRS F1 (50 ms) of events.r_peaks on the true fetal signal of the lead where it is largest, the
  ceiling of the fixed detector itself;
- "perfect_cancellation": F1 of the shipped fusion rule (fusion.candidates and combined_peaks of the COMBINED most
  regular leads and FastICA components) on the leads with the true maternal ECG subtracted, a perfect maternal
  cancellation;
- "max_snr_filter": F1 of events.r_peaks on the one spatial filter of the perfectly cancelled leads with the largest
  fetal-to-noise ratio in FETAL_BAND (the generalised eigenvector of the true fetal and noise covariances; either
  sign, the better one), and that ratio ("max_snr_filter_db");
- "wiener_l2": the whole-signal relative L2 (per lead, mean) of the fetal and maternal estimates of a multichannel
  Wiener filter with oracle statistics: per WIENER_BAND_HZ band of the recording's spectrum, W = R_sx R_xx^-1 from
  the true component's and the mixture's cross-spectra over that band. It is linear and time-invariant (no use of
  beat repetition) and fitted to each recording's truth, so it overfits in its favour.
No model, no real data.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the checkout's cass_tf, installed or not

import numpy as np  # noqa: E402
import scipy.linalg as sla  # noqa: E402

from bench.ecg_ideal_mask import FETAL_BAND, l2  # noqa: E402
from cass_tf import events, fusion, metrics  # noqa: E402
from cass_tf.atomic import write_text  # noqa: E402
from cass_tf.filters import bandpass  # noqa: E402
from pipelines.fetal_beats_rule import multilead_split, rule_peaks  # noqa: E402
from pipelines.validate_real import synthetic_leads  # noqa: E402

WIENER_BAND_HZ = 1.0  # 20 spectral lines per 4 x 4 cross-spectrum on a 20-s recording


def wiener(mixture: np.ndarray, truth: np.ndarray, rate: float) -> np.ndarray:
    """The oracle multichannel Wiener estimate of `truth` (leads, samples) from `mixture` (same shape)."""
    x, s = np.fft.rfft(mixture, axis=1), np.fft.rfft(truth, axis=1)
    frequencies = np.fft.rfftfreq(mixture.shape[1], 1 / rate)
    estimate = np.zeros_like(x)
    for low in np.arange(0.0, frequencies[-1] + WIENER_BAND_HZ, WIENER_BAND_HZ):
        band = (frequencies >= low) & (frequencies < low + WIENER_BAND_HZ)
        if band.any():
            xb = x[:, band]
            estimate[:, band] = (s[:, band] @ xb.conj().T) @ np.linalg.pinv(xb @ xb.conj().T, rcond=1e-10) @ xb
    return np.fft.irfft(estimate, n=mixture.shape[1], axis=1)


def score(recording: Any, rate: float) -> dict[str, Any]:
    """One recording's oracle figures (the module doc)."""
    mixture = recording.mixture.astype(np.float64)
    parts = {name: recording.components[name].astype(np.float64) for name in ("fetal", "maternal")}
    truth = recording.events["fetal"]
    tolerance = round(metrics.MATCH_SECONDS * rate)

    def f1(peaks: np.ndarray) -> float:
        return metrics.match_events(peaks, truth, tolerance)["f1"]

    cancelled = mixture - parts["maternal"]
    fetal_band, noise_band = (bandpass(x, rate, FETAL_BAND) for x in (parts["fetal"], cancelled - parts["fetal"]))
    fetal_power, noise_power = (np.sum(x ** 2, axis=1) for x in (fetal_band, noise_band))
    found = fusion.candidates(cancelled, rate, "fetal", np.zeros(0, dtype=int))
    weights = sla.eigh(fetal_band @ fetal_band.T, noise_band @ noise_band.T)[1][:, -1]
    beamformed = weights @ cancelled
    return {"recording": recording.name,
            "fetal_to_noise_db": (10 * np.log10(fetal_power / noise_power)).round(2).tolist(),
            "detector": f1(events.r_peaks(parts["fetal"][np.argmax(fetal_power)], rate, "fetal")),
            "perfect_cancellation": f1(rule_peaks(found, rate)["combined"]),
            "max_snr_filter": max(f1(events.r_peaks(sign * beamformed, rate, "fetal")) for sign in (1, -1)),
            "max_snr_filter_db": float(10 * np.log10(np.sum((weights @ fetal_band) ** 2)
                                                     / np.sum((weights @ noise_band) ** 2))),
            "wiener_l2": {name: float(np.mean([l2(e, t) for e, t in zip(wiener(mixture, truth_, rate), truth_)]))
                          for name, truth_ in parts.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs/raw/ecg_oracle_beats.json")
    args = parser.parse_args()
    sets = {"multi-lead split": multilead_split(), "validate_real 60 s": synthetic_leads()}
    result: dict[str, Any] = {"meta": {"command": "python " + " ".join(sys.argv),
                                       "machine": f"{os.cpu_count()}-core {platform.machine()} CPU"}}
    for label, (recordings, rate) in sets.items():
        rows = [score(r, rate) for r in recordings]
        mean = {key: float(np.mean([r[key] for r in rows]))
                for key in ("detector", "perfect_cancellation", "max_snr_filter", "max_snr_filter_db")}
        mean["wiener_l2"] = {name: float(np.mean([r["wiener_l2"][name] for r in rows]))
                             for name in ("fetal", "maternal")}
        result[label] = {"mean": mean, "recordings": rows}
        print(label, json.dumps(mean), flush=True)
    write_text(args.out, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
