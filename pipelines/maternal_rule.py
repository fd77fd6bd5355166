"""Compares two blind maternal R-peak rules for the multi-lead classical reference on synthetic 4-lead recordings.

    python pipelines/maternal_rule.py [--recordings 16] [--out docs/raw/maternal_rule.json]

"first PC": events.r_peaks on the first principal component of the high-passed leads (the first version of
realdata.multilead_fetal); "fusion": fusion.maternal_peaks (the shipped rule). For each, the maternal F1 against the
true maternal peaks and the multi-lead reference's fetal F1 (template subtraction at those peaks, fusion.fuse).
Synthetic data only (configs/ecg.json with data.ecg.leads=4, 60 s, seed 1's test split): the check that the choice
made after seeing ADFECGDB r08 (docs/multilead.md) also holds where nobody looked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cass_tf import cancellation, fusion, metrics, realdata  # noqa: E402
from cass_tf.atomic import write_text  # noqa: E402
from cass_tf.events import r_peaks  # noqa: E402
from pipelines.validate_real import OTHER_SYNTHETIC_SEED, synthetic_leads  # noqa: E402


def first_pc_peaks(leads: np.ndarray, rate: float) -> np.ndarray:
    x = metrics.bandpass(leads, rate, (fusion.BASELINE_HZ, rate / 2))
    x = x - x.mean(axis=1, keepdims=True)
    _, _, rows = np.linalg.svd(x @ x.T)
    return r_peaks(rows[0] @ x, rate, "maternal")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recordings", type=int, default=16)
    parser.add_argument("--out", default="docs/raw/maternal_rule.json")
    args = parser.parse_args()
    recordings, rate = synthetic_leads(args.recordings, seed=OTHER_SYNTHETIC_SEED)
    tolerance = round(metrics.MATCH_SECONDS * rate)
    rows = []
    for recording in recordings:
        x = recording.mixture.astype(np.float64)
        row = {"recording": recording.name}
        for rule, find in (("first_pc", first_pc_peaks), ("fusion", fusion.maternal_peaks)):
            maternal = find(x, rate)
            residuals = np.stack([cancellation.template_subtraction(lead, rate, maternal)[0] for lead in x])
            fetal = fusion.fuse(residuals, rate, "fetal", maternal_peaks=maternal).peaks
            row[rule] = {"maternal_f1": metrics.match_events(maternal, recording.events["maternal"], tolerance)["f1"],
                         "fetal_f1": metrics.match_events(fetal, recording.events["fetal"], tolerance)["f1"]}
        rows.append(row)
        print(row, flush=True)
    means = {rule: {k: float(np.mean([r[rule][k] for r in rows])) for k in ("maternal_f1", "fetal_f1")}
             for rule in ("first_pc", "fusion")}
    meta = {"command": "python pipelines/maternal_rule.py " + " ".join(sys.argv[1:]),
            "machine": f"{os.cpu_count()}-core CPU, no GPU"}
    write_text(args.out, json.dumps({"meta": meta, "mean": means, "recordings": rows}, indent=1) + "\n")
    print(means)
    return 0


if __name__ == "__main__":
    sys.exit(main())
