"""Compares cass_tf's hand-written QRS matching and R-peak detection with the field's libraries (issue 20, item 4).

    python pipelines/compare_libraries.py [--data ../shared/data] [--model saved_models/ecg]
                                          [--out docs/results/libraries.md]

Matching: metrics.match_events against wfdb.processing.compare_annotations (50 ms) on every detection scored below.
Detection, scored by fetal/maternal QRS F1 at 50 ms:
- synthetic test split (configs/ecg.json's 8 test recordings, 20 s at 256 Hz; the training set is not generated):
  fetal peaks on the model's fetal output and maternal peaks on the model's maternal output and on the raw mixture,
  against the true R peaks;
- ADFECGDB (validation only: choosing among fixed detectors, nothing tuned): fetal peaks on the model's fetal output
  of each abdominal channel (mean F1 over the 20 channels, and on each detector's own most-regular-RR channel), and
  maternal detection judged through maternal template subtraction (cancellation.template_subtraction with each maternal
  detector; fetal peaks on the residual by metrics.detect_qrs), against the reference fetal peaks.
Detectors: cass_tf's metrics.detect_qrs (events.r_peaks: the component's heart-rate limits), NeuroKit2 ecg_peaks
(methods in NK_METHODS, on nk.ecg_clean's output for the method where it has one) and wfdb XQRS (maternal).
Writes <out> (tables and command) and <out stem>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from typing import Any, Callable, Sequence

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cass_tf import cancellation, events, metrics, realdata  # noqa: E402
from cass_tf.atomic import write_text  # noqa: E402

NK_METHODS = ("neurokit", "pantompkins1985", "hamilton2002", "elgendi2010", "engzeemod2012", "kalidas2017",
              "nabian2018", "rodrigues2021", "christov2004")
Detector = Callable[[np.ndarray, int], np.ndarray]


def detectors(component: str) -> dict[str, Detector]:
    """Name -> (signal, rate) -> R-peak indices, for a maternal or fetal signal."""
    import neurokit2 as nk
    import wfdb.processing

    def neurokit(method: str) -> Detector:
        def detect(x: np.ndarray, rate: int) -> np.ndarray:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    clean = nk.ecg_clean(x, sampling_rate=rate, method=method)
                except ValueError:
                    clean = nk.ecg_clean(x, sampling_rate=rate)
                try:
                    _, info = nk.ecg_peaks(clean, sampling_rate=rate, method=method)
                except Exception:  # noqa: BLE001 (a detector that fails on a signal finds nothing there)
                    return np.zeros(0, np.int64)
            return np.asarray(info["ECG_R_Peaks"], np.int64)
        return detect

    def xqrs(x: np.ndarray, rate: int) -> np.ndarray:
        return np.asarray(wfdb.processing.xqrs_detect(np.asarray(x, np.float64), rate, verbose=False), np.int64)

    found: dict[str, Detector] = {"cass_tf": lambda x, rate: events.r_peaks(x, rate, component)}
    found.update({f"nk:{m}": neurokit(m) for m in NK_METHODS})
    if component == "maternal":
        found["wfdb:xqrs"] = xqrs
    return found


def compare_matching(detected: np.ndarray, reference: np.ndarray, rate: int) -> bool:
    """Whether match_events and wfdb's compare_annotations count the same true positives at 50 ms."""
    import wfdb.processing

    tolerance = round(metrics.MATCH_SECONDS * rate)
    ours = metrics.match_events(detected, reference, tolerance)
    if detected.size == 0 or reference.size == 0:
        return True
    theirs = wfdb.processing.compare_annotations(np.asarray(reference), np.asarray(detected), tolerance)
    return ours["tp"] == theirs.tp and ours["fp"] == theirs.fp and ours["fn"] == theirs.fn


def score(detected: np.ndarray, reference: np.ndarray, rate: int, agreement: list[bool]) -> float:
    agreement.append(compare_matching(detected, reference, rate))
    return float(metrics.match_events(detected, reference, round(metrics.MATCH_SECONDS * rate))["f1"])


def synthetic(separator: Any, agreement: list[bool]) -> dict[str, dict[str, float]]:
    """Mean F1 per detector on the synthetic test split: fetal and maternal outputs, maternal on the raw mixture."""
    from cass_tf import separate
    from cass_tf.config import load_config
    from cass_tf.data import load_recordings

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    config = load_config(os.path.join(root, "configs", "ecg.json"),
                         ["data.ecg.train_recordings=1", "data.validation_recordings=0", "data.cache_dir=null"])
    test = load_recordings(config)["test"]
    rate = config.data.sample_rate
    result: dict[str, dict[str, list[float]]] = {}
    for recording in test:
        out = separate(np.asarray(recording.mixture, np.float32), separator)
        cases = {"fetal output": ("fetal", out["fetal"]), "maternal output": ("maternal", out["maternal"]),
                 "maternal, raw mixture": ("maternal", recording.mixture)}
        for case, (component, x) in cases.items():
            for name, detect in detectors(component).items():
                f1 = score(detect(np.asarray(x, np.float64), rate), recording.events[component], rate, agreement)
                result.setdefault(case, {}).setdefault(name, []).append(f1)
    return {case: {n: float(np.mean(v)) for n, v in per.items()} for case, per in result.items()}


def adfecgdb(separator: Any, data: str, agreement: list[bool]) -> dict[str, dict[str, float]]:
    """Per detector: fetal F1 on the model's fetal output (all-channel mean, own most-regular channel mean) and the
    template-subtraction fetal F1 with that detector finding the maternal beats (all-channel mean, own channel)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from validate_real import separate_channels

    fetal: dict[str, list[tuple[float, float]]] = {}
    subtraction: dict[str, list[tuple[float, float]]] = {}
    for name in realdata.ADFECGDB_RECORDS:
        record = realdata.read_adfecgdb(name, data)
        rate, reference = record.rate, record.fetal_peaks
        outputs = separate_channels(separator, record.abdomen, rate)
        for detector, detect in detectors("fetal").items():
            peaks = [detect(out["fetal"].astype(np.float64), rate) for out in outputs]
            f1 = [score(p, reference, rate, agreement) for p in peaks]
            fetal.setdefault(detector, []).append((float(np.mean(f1)), f1[events.regular_channel(peaks)]))
        for detector, detect in detectors("maternal").items():
            peaks = [realdata.fetal_peaks(_subtract(channel, rate, detect), rate) for channel in record.abdomen]
            f1 = [score(p, reference, rate, agreement) for p in peaks]
            subtraction.setdefault(detector, []).append((float(np.mean(f1)), f1[events.regular_channel(peaks)]))
        print(f"{name}: done", flush=True)
    mean = lambda rows, k: float(np.mean([r[k] for r in rows]))  # noqa: E731
    return {"fetal output, all channels": {d: mean(r, 0) for d, r in fetal.items()},
            "fetal output, own channel": {d: mean(r, 1) for d, r in fetal.items()},
            "template subtraction, all channels": {d: mean(r, 0) for d, r in subtraction.items()},
            "template subtraction, own channel": {d: mean(r, 1) for d, r in subtraction.items()}}


def _subtract(channel: np.ndarray, rate: int, maternal: Detector) -> np.ndarray:
    """cancellation.template_subtraction's residual with `maternal` finding the maternal beats (on the channel
    high-passed as template subtraction high-passes it)."""
    high_passed = metrics.bandpass(channel, rate, (cancellation.BASELINE_HZ, rate / 2))
    return cancellation.template_subtraction(channel, rate, maternal(high_passed, rate))[0]


def markdown(tables: dict[str, dict[str, dict[str, float]]], agreement: list[bool], meta: dict[str, Any]) -> str:
    lines = ["# Hand-written vs library: QRS matching and R-peak detection", "",
             "<!-- figures: libraries.json -->", "", f"Model `{meta['model']}`; machine: {meta['machine']}; {meta['seconds']:.0f} s.", "", "```bash",
             meta["command"], "```", "",
             f"QRS matching: `metrics.match_events` and `wfdb.processing.compare_annotations` (50 ms) gave the same "
             f"tp/fp/fn on {sum(agreement)} of {len(agreement)} scored detections.", ""]
    for section, table in tables.items():
        columns = list(table)
        names = list(next(iter(table.values())))
        names += sorted({n for t in table.values() for n in t} - set(names))
        lines += [f"## {section}: mean QRS F1 (50 ms)", "", "| detector | " + " | ".join(columns) + " |",
                  "|---|" + "---|" * len(columns)]
        for name in names:
            lines.append(f"| {name} | " + " | ".join(f"{table[c][name]:.3f}" if name in table[c] else "-"
                                                     for c in columns) + " |")
        lines.append("")
    return "\n".join(lines + ["<!-- /figures -->", ""])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--model", default="saved_models/ecg")
    parser.add_argument("--out", default="docs/results/libraries.md")
    args = parser.parse_args(argv)
    from cass_tf import Separator

    began = time.time()
    separator = Separator(args.model)
    agreement: list[bool] = []
    tables = {"synthetic test split": synthetic(separator, agreement),
              "ADFECGDB": adfecgdb(separator, args.data, agreement)}
    meta = {"model": separator.source, "machine": f"{os.cpu_count()}-core CPU shared with other work, no GPU",
            "seconds": time.time() - began,
            "command": "python pipelines/compare_libraries.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    stem = os.path.splitext(args.out)[0]
    write_text(f"{stem}.json", json.dumps({"meta": meta, "tables": tables, "matching_agree": sum(agreement),
                                           "matching_total": len(agreement)}, indent=1) + "\n")
    write_text(args.out, markdown(tables, agreement, meta))
    print(markdown(tables, agreement, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
