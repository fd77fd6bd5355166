"""How far the synthetic ECG test splits let a mask go: an ideal ratio mask (knowing the true components) beside
a model, per lead, on configs/ecg.json's and configs/ecg_leads.json's test splits.

    python bench/ecg_ideal_mask.py [--model runs/.../serving_model] [--out docs/raw/ecg_ideal_mask.json]

Per lead of every test recording, whole signal: the relative L2 error (metrics.relative_error) of the fetal and
maternal estimates of the ideal ratio mask |S|^2 / (|S_f|^2 + |S_m|^2 + |N|^2) (N: the mixture less both
components) applied to the mixture's STFT (the STFT of `--stft`, cass_tf.spectral); of the model's, when given;
the fetal-to-noise power ratio of the whole lead and in FETAL_BAND; and the L2 error of the true fetal signal
band-passed to FETAL_BAND (what a perfect estimate of the fetal QRS band alone would score). The ideal ratio mask
is the usual reference for mask-based separation (Wang, "On ideal binary mask as the computational goal of auditory
scene analysis", 2005; Narayanan & Wang, ICASSP 2013); it is no bound for a model that uses the beats' repetition.
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

from cass_tf import metrics  # noqa: E402
from cass_tf.atomic import write_text  # noqa: E402
from cass_tf.config import load_config  # noqa: E402
from cass_tf.data import ecg  # noqa: E402
from cass_tf.filters import bandpass  # noqa: E402
from cass_tf.spectral import Spectral  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ("configs/ecg.json", "configs/ecg_leads.json")
FETAL_BAND = (10.0, 45.0)  # Hz: where a fetal QRS's energy lies at 256 Hz


def ideal_mask(mixture: np.ndarray, parts: dict[str, np.ndarray], spectral: Spectral) -> dict[str, np.ndarray]:
    """{component: waveform} of the ideal ratio mask for each of `parts` (1-D each) applied to `mixture`; every
    signal is padded by a window at each end (reflected) so that the STFT covers all of it."""
    pad = spectral.window

    def stft(x: np.ndarray) -> np.ndarray:
        return spectral.stft(np.float32(np.pad(x, pad, mode="reflect"))).numpy()

    noise = mixture - sum(parts.values())
    spectra = {name: stft(x) for name, x in {**parts, "noise": noise}.items()}
    total = sum(np.abs(s) ** 2 for s in spectra.values()) + 1e-30
    mix = stft(mixture)
    return {name: spectral.inverse_stft(np.abs(spectra[name]) ** 2 / total * mix, mixture.size + 2 * pad
                                        ).numpy()[pad:pad + mixture.size] for name in parts}


def l2(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Whole-signal relative L2 error (eq. 6)."""
    return float(metrics.relative_error(estimate, truth, 2))


def power_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """Power ratio of `signal` to `noise` in dB."""
    return float(10 * np.log10(np.mean(signal ** 2) / np.mean(noise ** 2)))


def score_split(config_path: str, stft: list[str], separator: Any) -> list[dict[str, float | str | int]]:
    """One row per lead of the config's test split."""
    config = load_config(REPO / config_path, overrides=stft)
    spectral, rate = Spectral.from_config(config), config.data.sample_rate
    rows = []
    for recording in ecg.load(config)["test"]:
        mixture = np.atleast_2d(recording.mixture).astype(np.float64)
        truth = {n: np.atleast_2d(recording.components[n]).astype(np.float64) for n in ("maternal", "fetal")}
        for lead in range(mixture.shape[0]):
            parts = {n: truth[n][lead] for n in truth}
            noise = mixture[lead] - parts["maternal"] - parts["fetal"]
            ideal = ideal_mask(mixture[lead], parts, spectral)
            row = {"recording": recording.name, "lead": lead,
                   "fetal_to_noise_db": power_db(parts["fetal"], noise),
                   "fetal_to_noise_band_db": power_db(bandpass(parts["fetal"], rate, FETAL_BAND),
                                                      bandpass(noise, rate, FETAL_BAND)),
                   "fetal_band_only_l2": l2(bandpass(parts["fetal"], rate, FETAL_BAND), parts["fetal"]),
                   **{f"ideal_{n}_l2": l2(ideal[n], parts[n]) for n in parts}}
            if separator is not None:
                out = separator(np.float32(mixture[lead]))
                row.update({f"model_{n}_l2": l2(np.asarray(out[n], np.float64).reshape(-1), parts[n]) for n in parts})
            rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="a one-lead SavedModel, separated lead by lead")
    parser.add_argument("--stft", nargs=2, type=int, default=[64, 8], metavar=("WINDOW", "HOP"),
                        help="the ideal mask's STFT (default: the 64/8 of the one-lead models)")
    parser.add_argument("--out", default="docs/raw/ecg_ideal_mask.json")
    args = parser.parse_args()
    separator = None
    if args.model:
        import cass_tf
        separator = cass_tf.Separator(args.model)
    window, hop = args.stft
    stft = [f"stft.n_fft={window}", f"stft.window={window}", f"stft.hop={hop}", f"patch.frequency_bins={window // 2}"]
    splits = {}
    for config_path in CONFIGS:
        rows = score_split(config_path, stft, separator)
        means = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k not in ("recording", "lead")}
        splits[config_path] = {"leads": rows, "mean": means}
        print(config_path, ", ".join(f"{k} {v:.3f}" for k, v in means.items()), flush=True)
    meta = {"command": "python " + " ".join(sys.argv), "machine": f"{os.cpu_count()}-core {platform.machine()} CPU"}
    write_text(args.out, json.dumps({"meta": meta, "splits": splits}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
