"""Fetal beats recalled by ECG models, split by whether a maternal R peak falls within OVERLAP_SECONDS of the beat.

    python pipelines/fetal_overlap.py --ecg_model ecg/2=saved_models/ecg/2 [--ecg_model LABEL=MODEL ...]
                                      [--recordings 16] [--adfecgdb] [--out docs/raw/fetal_overlap.json]

Each model separates every recording (a multi-lead model all leads together, a one-lead model each lead on its
own, as pipelines/validate_real.py does); its per-lead outputs are fused by cass_tf.fusion.fuse_outputs, and each
reference fetal beat counts as recalled when a fused fetal peak is within metrics.MATCH_SECONDS of it. A beat
"overlaps" when the nearest maternal R peak is within OVERLAP_SECONDS: on synthetic data the true maternal peaks,
on ADFECGDB (which has no maternal reference) fusion.maternal_peaks of the abdominal leads, the same for every
model. The multi-lead classical reference (realdata.multilead_fetal) is scored beside the models.

Synthetic recordings: configs/ecg.json with 4 leads, 60 s, seed 1's test split (the recordings of
pipelines/maternal_rule.py), which no model trained or was blessed on. --adfecgdb adds ADFECGDB (validation data:
it may compare models, never choose a design).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable, Sequence

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __package__ in (None, ""):
    sys.path.insert(0, REPO)

from cass_tf import fusion, metrics, realdata  # noqa: E402
from cass_tf.atomic import write_text  # noqa: E402
from pipelines.validate_real import (OTHER_SYNTHETIC_SEED, fused_outputs, labelled_models,  # noqa: E402
                                     separate_channels, synthetic_leads)

OVERLAP_SECONDS = 0.05
CLASSICAL = "multi-lead classical"


def recall_by_overlap(detected: np.ndarray, fetal: np.ndarray, maternal: np.ndarray, rate: float
                      ) -> dict[str, dict[str, int]]:
    """{"overlapping" | "apart": {"recalled", "beats"}} of reference `fetal` peaks, split by the distance to the
    nearest `maternal` peak (<= OVERLAP_SECONDS: overlapping); recalled when a `detected` peak is within
    metrics.MATCH_SECONDS (a many-to-one check; metrics.match_events' one-to-one F1 is reported beside it)."""
    detected, maternal = np.sort(np.asarray(detected)), np.sort(np.asarray(maternal))
    result = {"overlapping": {"recalled": 0, "beats": 0}, "apart": {"recalled": 0, "beats": 0}}
    for beat in np.asarray(fetal):
        near = maternal.size > 0 and np.min(np.abs(maternal - beat)) <= round(OVERLAP_SECONDS * rate)
        hit = detected.size > 0 and np.min(np.abs(detected - beat)) <= round(metrics.MATCH_SECONDS * rate)
        counts = result["overlapping" if near else "apart"]
        counts["beats"] += 1
        counts["recalled"] += int(hit)
    return result


def fused_fetal_peaks(separator: Any, leads: np.ndarray, rate: int) -> np.ndarray:
    """The model's fused fetal R peaks of (leads, samples) `leads` (each lead minus its median, as validate_real)."""
    return fused_outputs(separate_channels(separator, leads, rate), rate)["fetal"].peaks


def score_set(methods: dict[str, Callable[[np.ndarray, int], np.ndarray]],
              recordings: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]], rate: int
              ) -> dict[str, Any]:
    """Per method, per recording and summed: recall_by_overlap and the one-to-one fetal F1."""
    result: dict[str, Any] = {}
    for label, find in methods.items():
        rows = []
        for name, leads, fetal, maternal in recordings:
            maternal = fusion.maternal_peaks(leads, rate) if maternal is None else maternal
            peaks = find(leads, rate)
            rows.append({"recording": name, **recall_by_overlap(peaks, fetal, maternal, rate),
                         "f1": metrics.match_events(peaks, fetal, round(metrics.MATCH_SECONDS * rate))["f1"]})
        totals = {kind: {k: sum(r[kind][k] for r in rows) for k in ("recalled", "beats")}
                  for kind in ("overlapping", "apart")}
        result[label] = {"recordings": rows, "mean_f1": float(np.mean([r["f1"] for r in rows])),
                         **{f"recall_{kind}": t["recalled"] / max(t["beats"], 1) for kind, t in totals.items()},
                         "beats": {kind: t["beats"] for kind, t in totals.items()}}
        print(f"{label}: mean fused fetal F1 {result[label]['mean_f1']:.4f}, recall overlapping "
              f"{result[label]['recall_overlapping']:.4f} ({totals['overlapping']['beats']} beats), apart "
              f"{result[label]['recall_apart']:.4f} ({totals['apart']['beats']})", flush=True)
    return result


def synthetic(count: int) -> tuple[list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], int]:
    """The synthetic recordings of the module doc: (name, leads, fetal peaks, maternal peaks), and their rate."""
    recordings, rate = synthetic_leads(count, seed=OTHER_SYNTHETIC_SEED)
    return [(r.name, r.mixture.astype(np.float64), r.events["fetal"], r.events["maternal"]) for r in recordings], rate


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ecg_model", action="append", default=[], metavar="[LABEL=]MODEL",
                        help="an ECG model to score (repeatable; default: every version in saved_models/ecg)")
    parser.add_argument("--recordings", type=int, default=16, help="synthetic recordings (60 s, 4 leads)")
    parser.add_argument("--adfecgdb", action="store_true", help="also score ADFECGDB (../shared/data)")
    parser.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data"))
    parser.add_argument("--out", default="docs/raw/fetal_overlap.json")
    args = parser.parse_args(argv)
    from cass_tf import Separator

    models = labelled_models(args.ecg_model, os.path.join(REPO, "saved_models/ecg"), "--ecg_model", (CLASSICAL,))
    methods: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
        label: (lambda leads, rate, s=Separator(path): fused_fetal_peaks(s, leads, rate))
        for label, path in models.items()}
    methods[CLASSICAL] = lambda leads, rate: realdata.multilead_fetal(leads, rate).peaks
    recordings, rate = synthetic(args.recordings)
    command = "python pipelines/fetal_overlap.py " + " ".join(sys.argv[1:] if argv is None else argv)
    result = {"meta": {"command": command,
                       "models": models, "overlap_seconds": OVERLAP_SECONDS,
                       "machine": f"{os.cpu_count()}-core CPU, no GPU"},
              "synthetic": score_set(methods, recordings, rate)}
    if args.adfecgdb:
        records = [realdata.read_adfecgdb(r, args.data) for r in realdata.ADFECGDB_RECORDS]
        result["adfecgdb"] = score_set(methods, [(r.name, r.abdomen, r.fetal_peaks, None) for r in records],
                                       records[0].rate)
    write_text(args.out, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
