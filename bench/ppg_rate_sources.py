"""Scores, on BIDMC, sources derived from PPG models' outputs beside the push rule's own: what a second band-pass and a
mean of several trained models do to the rate errors (saved_models/README.md,
"Candidates PD and V, a second filtering, and seed means").

    python bench/ppg_rate_sources.py --ppg_model P=runs/p1r/P/Trainer/serving_model ... \
        [--mean P3=P,P1,P2 ...] [--out docs/raw/ppg_rate_sources.json]

Sources, each scored by cass_tf.bidmc exactly as the push rule scores a model (issue 21's windows, references and
three estimators, which band-pass their input first), for the PLETH as recorded and with its mean removed:
- `band-pass`: the rule's reference, the PLETH band-passed to each quantity's band, so filtered twice in all;
- `PLETH`: the PLETH itself, filtered once, by the estimators (issue 21's "band-passed raw PLETH");
- each model's outputs as the rule scores them (filtered once);
- `<model> band-passed`: its outputs band-passed like the reference before the estimators (filtered twice), and
  `<model> high-passed` / `low-passed`: the same with only that edge of the band, to show which edge matters;
- each `--mean`: the sample-wise mean of the named models' outputs, a seed ensemble (filtered once).
BIDMC is validation data: this only reports; nothing here is chosen or fitted on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Mapping

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cass_tf import bidmc, metrics, realdata  # noqa: E402
from cass_tf.atomic import write_text  # noqa: E402
from cass_tf.separator import Separator  # noqa: E402
from pipelines.validate_real import labelled_models  # noqa: E402

PLETH = "PLETH"
EDGES = {"band-passed": lambda band, rate: band, "high-passed": lambda band, rate: (band[0], rate),
         "low-passed": lambda band, rate: (0.0, band[1])}  # filters.bandpass drops an edge at 0 or Nyquist


def filtered(outputs: Mapping[str, np.ndarray], rate: float, edges: str) -> dict[str, np.ndarray]:
    """Each scored component filtered by EDGES[edges] of its quantity's band, the filter bidmc.score_record gives
    the reference ("band-passed") or one of its edges."""
    return {component: metrics.bandpass(outputs[component], rate, EDGES[edges](band, rate))
            for component, band in bidmc.QUANTITIES.values()}


def mean_outputs(members: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The sample-wise mean of several models' components."""
    return {component: np.mean([m[component] for m in members], axis=0) for component in members[0]}


def sources(record: realdata.PPGRecord, models: Mapping[str, Separator], means: Mapping[str, list[str]],
            offset: str) -> dict[str, dict[str, np.ndarray]]:
    """{label: {component: signal}} of every derived source of one record (the module's list, but the band-pass,
    which bidmc.score_record adds)."""
    outputs = {label: bidmc.separated(model, record, offset) for label, model in models.items()}
    pleth = record.pleth - (np.mean(record.pleth) if offset == bidmc.MEAN_REMOVED else 0.0)
    return {PLETH: {component: pleth for component, _ in bidmc.QUANTITIES.values()}, **outputs,
            **{f"{label} {edges}": filtered(out, record.rate, edges)
               for label, out in outputs.items() for edges in EDGES},
            **{label: mean_outputs([outputs[m] for m in members]) for label, members in means.items()}}


def record_means(summary: Mapping[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """{quantity: {source: {estimator: mean of the record MAEs}}} of a bidmc.summary."""
    return {q: {s: {e: v["record_mean"] for e, v in per.items()} for s, per in by_source.items()}
            for q, by_source in summary.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--ppg_model", action="append", required=True, help="LABEL=MODEL (repeatable)")
    parser.add_argument("--mean", action="append", default=[], help="LABEL=MODEL_LABEL,MODEL_LABEL,... (repeatable)")
    parser.add_argument("--out", default="docs/raw/ppg_rate_sources.json")
    args = parser.parse_args()
    models = labelled_models(args.ppg_model, "saved_models/ppg", "--ppg_model", (bidmc.BANDPASS, PLETH))
    means = {}
    for spec in args.mean:
        label, _, members = spec.partition("=")
        means[label] = members.split(",")
        unknown = [m for m in means[label] if m not in models]
        if not members or unknown or label in models or label in (bidmc.BANDPASS, PLETH):
            parser.error(f"--mean {spec!r}: give LABEL=A,B,... naming --ppg_model labels, LABEL new; "
                         f"unknown: {unknown}")
    separators = {label: Separator(path) for label, path in models.items()}
    result: dict[str, Any] = {}
    for offset in bidmc.OFFSETS:
        per_record = []
        for name in realdata.BIDMC_RECORDS:
            record = realdata.read_bidmc(name, args.data)
            per_record.append(bidmc.score_record(record, sources(record, separators, means, offset)))
            print(offset, name, flush=True)
        summary = bidmc.summary(per_record)
        result[offset] = {"record_mean": record_means(summary), "summary": summary,
                          "records": bidmc.record_maes(per_record)}
        for quantity, per_source in result[offset]["record_mean"].items():
            for source, values in per_source.items():
                print(offset, quantity, source, " ".join(f"{e} {v:.3f}" for e, v in values.items()))
    meta = {"command": "python bench/ppg_rate_sources.py " + " ".join(sys.argv[1:]), "models": models,
            "means": means, "machine": f"{os.cpu_count()}-core CPU, no GPU",
            "statistic": "record_mean: the mean over the 26 records of each record's MAE (per minute)"}
    write_text(args.out, json.dumps({"meta": meta, **result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
