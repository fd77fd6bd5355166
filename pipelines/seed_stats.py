"""Owns pipelines/reproduce.py's statistics over seeds: per-variant means and spreads, Welch's test, the verdicts on
the paper's orderings."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from scipy.stats import ttest_ind

from cass_tf.config import Config
from pipelines.paper import LABELS, PAPER, PROTOCOL_SCOPES, VARIANTS

if TYPE_CHECKING:
    from pipelines.reproduce import Task

P_VALUE = 0.05


def statistics(task: Task) -> dict[str, Any]:
    """{protocol: {variant: {component: {"l2_mean", "l2_std", "l1_mean", "linf_mean", "seeds", "l2"}}}} over the
    finished seeds ("l2": the per-seed values; std: sample standard deviation, 0 with one seed)."""
    result: dict[str, Any] = {p: {} for p in PROTOCOL_SCOPES}
    for variant in VARIANTS:
        runs = [s for s in (task.scores(variant, seed) for seed in task.seeds) if s is not None]
        if not runs:
            continue
        for protocol in PROTOCOL_SCOPES:
            per = {}
            for name in task.config.components:
                values = {m: np.array([r[protocol][name][m] for r in runs]) for m in ("l1", "l2", "linf")}
                per[name] = {"l2_mean": float(values["l2"].mean()),
                             "l2_std": float(values["l2"].std(ddof=1)) if len(runs) > 1 else 0.0,
                             "l1_mean": float(values["l1"].mean()), "linf_mean": float(values["linf"].mean()),
                             "seeds": len(runs), "l2": values["l2"].tolist()}
            result[protocol][variant] = per
    return result


def compare(better: Sequence[float], worse: Sequence[float]) -> str:
    """Does `better` have a lower mean than `worse` beyond the seeds' spread? Welch's t-test (unequal variances):
    "holds" (p < P_VALUE, lower), "contradicted" (p < P_VALUE, higher), "within the seeds' spread", or "untested"
    with fewer than two seeds on a side."""
    if len(better) < 2 or len(worse) < 2:
        return "untested (fewer than 2 seeds)"
    p = ttest_ind(better, worse, equal_var=False).pvalue
    if not math.isfinite(p) or p >= P_VALUE:
        return f"within the seeds' spread (p = {p:.2f})" if math.isfinite(p) else "within the seeds' spread"
    return f"holds (p = {p:.3f})" if sum(better) / len(better) < sum(worse) / len(worse) else \
        f"contradicted (p = {p:.3f})"


def verdicts(task: Task, stats: dict[str, Any]) -> list[str]:
    """Per protocol and component, the paper's claims tested over seeds: the baseline is worse than CASS and than
    CASS with cross training; which of the two CASS variants is better (its Tables 1-3); and whether the best
    variant's mean L2 is below the paper's best figure."""
    paper = PAPER.get(task.config.data.source, {})
    lines = []
    for protocol in PROTOCOL_SCOPES:
        per = stats[protocol]
        if not all(v in per for v in VARIANTS):
            lines.append(f"- {protocol} protocol: not every variant has a finished run yet.")
            continue
        for name in task.config.components:
            l2 = {v: per[v][name]["l2"] for v in VARIANTS}
            claims = [f"CASS better than the baseline: {compare(l2['cass'], l2['baseline'])}",
                      f"CASS with cross training better than the baseline: "
                      f"{compare(l2['cass_cross'], l2['baseline'])}"]
            if name in paper:
                cross_first = paper[name]["cass_cross"]["l2"] < paper[name]["cass"]["l2"]
                first, second = ("cass_cross", "cass") if cross_first else ("cass", "cass_cross")
                claims.append(f"{LABELS[first]} better than {LABELS[second]} (the paper's order): "
                              f"{compare(l2[first], l2[second])}")
                best = min(VARIANTS, key=lambda v: per[v][name]["l2_mean"])
                paper_best = min(paper[name][v]["l2"] for v in VARIANTS)
                below = per[best][name]["l2_mean"] < paper_best
                claims.append(f"best mean L2 ({LABELS[best]}, {per[best][name]['l2_mean']:.4f}) "
                              f"{'below' if below else 'not below'} the paper's best {paper_best:.4f}"
                              + ("" if below else _what_prevents(task.config, protocol)))
            lines.append(f"- **{name}**, {protocol} protocol: " + "; ".join(claims) + ".")
    return lines


def _what_prevents(config: Config, protocol: str) -> str:
    """What bounds a best mean L2 that stays above the paper's: the ideal-magnitude floor (waveform protocol), or,
    where that floor is 0 (paper protocol), the training budget."""
    if protocol == "waveform":
        return " (no magnitude model can go below the ideal-magnitude row under this protocol)"
    train = config.train
    return (f" (the ideal magnitude scores 0 under this protocol, so no representation floor is in the way: the "
            f"budget is, {train.epochs * train.steps_per_epoch} steps of batch {train.batch_size} at width "
            f"{config.model.width} against the paper's 500 epochs of batch 50 at width 32)")
