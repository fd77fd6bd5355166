"""Compares blind rules for the fused fetal beats of 4 leads, for a model's fused output and the classical reference.

    python pipelines/fetal_beats_rule.py [--model saved_models/ecg/3] [--adfecgdb]
                                         [--out docs/raw/fetal_beats_rule.json]

Rules, each on the candidates of cass_tf.fusion (`fusion.candidates`: the leads and their FastICA components, ranked
by fetal RR regularity, maternal remnants excluded): "single", events.r_peaks of the most regular candidate (the
rule before fusion.combined_peaks); "search_back", fusion.combined_peaks of that candidate alone (its peaks plus
metrics.search_back); "combined", fusion.combined_peaks of the 3 most regular (the shipped rule, fusion.COMBINED).
Methods: "model", the model's per-lead fetal outputs (maternal remnants told apart by its fused maternal output's
peaks, as fusion.fuse_outputs); "classical", realdata.multilead_fetal's template-subtraction residuals.
The rule is chosen on synthetic 4-lead recordings only: validate_real's SYNTHETIC_RECORDINGS (60 s, its data seed),
SELECTION_RECORDINGS more from SELECTION_SEED, and validate_real's multi-lead split (MULTILEAD_CONFIG's validation
recordings, 20 s); "synthetic" is the mean over all of them, "chosen_on" over the first two (the combined rule was
chosen on those 24 before the split was scored, docs/multilead.md). `--adfecgdb` also scores ADFECGDB (validation: it
reports the chosen rule, it never chooses one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cass_tf import cancellation, fusion, metrics, realdata  # noqa: E402
from cass_tf.atomic import write_text  # noqa: E402
from cass_tf.config import load_config  # noqa: E402
from cass_tf.data import load_recordings  # noqa: E402
from cass_tf.separator import Separator  # noqa: E402
from pipelines.validate_real import (MULTILEAD_CONFIG, REPO, SYNTHETIC_RECORDINGS, separate_channels,  # noqa: E402
                                     synthetic_leads)

SELECTION_SEED = 7  # a data seed no other check uses
SELECTION_RECORDINGS = 16
RULES = {"single": 0, "search_back": 1, "combined": fusion.COMBINED["fetal"]}  # candidates combined (0: none)


def rule_peaks(found: fusion.Candidates, rate: float) -> dict[str, np.ndarray]:
    """The fetal beats of each of RULES from one set of candidates."""
    used = found.ranking or [0]  # as fusion.fuse: none admissible, the first candidate
    return {rule: fusion.combined_peaks(found.signals[used[:count]], rate, "fetal") if count else found.peaks[used[0]]
            for rule, count in RULES.items()}


def method_candidates(outputs: list[dict[str, np.ndarray]], abdomen: np.ndarray, rate: float
                      ) -> dict[str, fusion.Candidates]:
    """{"model": the candidates of the model's fetal outputs, "classical": those of the template-subtraction
    residuals}, each with its maternal peaks as fusion.fuse_outputs and realdata.multilead_fetal give them."""
    maternal = np.stack([out["maternal"] for out in outputs])
    model_maternal = fusion.maternal_peaks(maternal, rate)  # = fuse_outputs' maternal peaks of the outputs
    residuals, abdomen_maternal = cancellation.template_subtraction_leads(abdomen, rate)
    return {"model": fusion.candidates(np.stack([out["fetal"] for out in outputs]), rate, "fetal", model_maternal),
            "classical": fusion.candidates(residuals, rate, "fetal", abdomen_maternal)}


def score(name: str, separator: Separator, abdomen: np.ndarray, truth: np.ndarray, rate: float) -> dict[str, Any]:
    """One recording's fetal F1 (50 ms) under every rule for both methods."""
    tolerance = round(metrics.MATCH_SECONDS * rate)
    found = method_candidates(separate_channels(separator, abdomen, rate), abdomen, rate)
    row = {"recording": name, **{method: {rule: metrics.match_events(peaks, truth, tolerance)["f1"]
                                          for rule, peaks in rule_peaks(c, rate).items()}
                                 for method, c in found.items()}}
    print(row, flush=True)
    return row


def multilead_split() -> tuple[list[Any], int]:
    """validate_real's synthetic multi-lead split: MULTILEAD_CONFIG's validation recordings, and their rate."""
    config = load_config(os.path.join(REPO, MULTILEAD_CONFIG), ["data.cache_dir=null"])
    return load_recordings(config)["test"], config.data.sample_rate


def means(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {method: {rule: float(np.mean([r[method][rule] for r in rows])) for rule in RULES}
            for method in ("model", "classical")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="saved_models/ecg/3")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--adfecgdb", action="store_true", help="also score ADFECGDB (validation only)")
    parser.add_argument("--out", default="docs/raw/fetal_beats_rule.json")
    args = parser.parse_args()
    separator = Separator(args.model)
    result: dict[str, Any] = {"meta": {"command": "python pipelines/fetal_beats_rule.py " + " ".join(sys.argv[1:]),
                                       "model": args.model, "machine": f"{os.cpu_count()}-core CPU, no GPU"}}
    sets = {"validate_real": synthetic_leads(SYNTHETIC_RECORDINGS),
            f"seed {SELECTION_SEED}": synthetic_leads(SELECTION_RECORDINGS, seed=SELECTION_SEED),
            "multi-lead split": multilead_split()}
    every, chosen_on = [], []
    for label, (recordings, rate) in sets.items():
        rows = [score(f"{label} {r.name}", separator, r.mixture.astype(np.float64), r.events["fetal"], rate)
                for r in recordings]
        result[label] = {"mean": means(rows), "recordings": rows}
        every += rows
        chosen_on += rows if label != "multi-lead split" else []
    result["synthetic"] = {"mean": means(every), "recordings": len(every)}
    result["chosen_on"] = {"mean": means(chosen_on), "recordings": len(chosen_on)}
    if args.adfecgdb:
        records = [realdata.read_adfecgdb(name, args.data) for name in realdata.ADFECGDB_RECORDS]
        rows = [score(r.name, separator, r.abdomen, r.fetal_peaks, r.rate) for r in records]
        result["adfecgdb"] = {"mean": means(rows), "records": rows}
    write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v["mean"] for k, v in result.items() if k != "meta"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
