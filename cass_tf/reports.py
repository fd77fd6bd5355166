"""Owns the evaluation report: Markdown tables of the scores (headers, titles, the oracle rows' labels and notes),
`evaluation.json` / `evaluation.md`, and JSON without inf/nan."""

from __future__ import annotations

import json
import math
import os
from typing import Any, Sequence

from cass_tf import atomic
from cass_tf.config import Config
from cass_tf.scoring import METRICS, NOTES

__all__ = ["HEADERS", "TITLES", "EVENTS_TITLE", "EVENTS_NOTE", "ORACLE_LABEL", "ORACLE_NOTE", "COMPLEX_ORACLE_LABEL",
           "COMPLEX_ORACLE_NOTE", "table", "report", "write_outputs", "jsonable"]

HEADERS = {"l1": "L1", "l2": "L2", "linf": "L∞", "si_sdr": "SI-SDR (dB)", "sdr": "SDR (dB)",
           "qrs_sensitivity": "QRS Se", "qrs_ppv": "QRS PPV", "qrs_f1": "QRS F1", "rate_error": "rate error (/min)"}

EVENTS_TITLE = "Event-level scores, whole test signals"

EVENTS_NOTE = ("mean over the whole test recordings (separated as for the whole-signal scores) of "
               "metrics.component_event_scores against the generator's true events: QRS sensitivity, PPV and F1 "
               "at 50 ms (ECG), or the mean absolute error of the per-32-s spectral rate in breaths or beats per "
               "minute (PPG)")

ORACLE_LABEL = "ideal magnitude (oracle)"

ORACLE_NOTE = ("not a model: the true component magnitudes put through the same reconstruction, i.e. the best "
               "any magnitude estimator can score in that table")

COMPLEX_ORACLE_LABEL = "ideal complex mask (oracle)"

COMPLEX_ORACLE_NOTE = ("not a model: the true component spectra (lowest patch.frequency_bins bins) inverted with "
                       "their own phase, i.e. the best a complex-mask estimator can score")

TITLES = {"crops": "Test crops (waveform protocol)",
          "crops_component_phase": "Test crops, true component phase (waveform protocol, diagnostic)",
          "signals": "Whole test signals (waveform protocol)",
          "crops_paper": "Test crops (paper protocol: estimate and reference both with the mixture's phase)"}


def table(rows: dict[str, dict[str, float]], metrics: Sequence[str] = METRICS,
          extra: dict[str, dict[str, float]] | None = None, extra_label: str = "paper") -> str:
    """A Markdown table: one row per run, one column per metric (and `extra` columns, e.g. the paper's values)."""
    extra_metrics = sorted({m for v in (extra or {}).values() for m in v}, key=list(METRICS).index)
    header = ["model"] + [HEADERS[m] for m in metrics] + [f"{extra_label} {HEADERS[m]}" for m in extra_metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, values in rows.items():
        cells = [name] + [_fmt(values.get(m)) for m in metrics]
        cells += [_fmt((extra or {}).get(name, {}).get(m)) for m in extra_metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(results: dict[str, dict[str, Any]], components: Sequence[str],
           oracle: dict[str, Any] | None = None) -> str:
    """Markdown: per test set and component, a table of means (rows = runs, then the `oracle` row if given)."""
    parts = []
    for scope in ("crops", "signals", "crops_component_phase", "crops_paper"):
        if not all(scope in r for r in results.values()):
            continue
        parts.append(f"### {TITLES[scope]}\n\nValues: {NOTES[scope]}.\n")
        for name in components:
            rows = {run: {m: s["mean"] for m, s in r[scope]["summary"][name].items()} for run, r in results.items()}
            if oracle and scope in oracle:
                rows[ORACLE_LABEL] = {m: s["mean"] for m, s in oracle[scope]["summary"][name].items()}
            if oracle and scope in oracle.get("complex_mask", {}):
                rows[COMPLEX_ORACLE_LABEL] = {m: s["mean"] for m, s in
                                              oracle["complex_mask"][scope]["summary"][name].items()}
            parts.append(f"**{name}**\n\n{table(rows)}\n")
    if all(r.get("events") for r in results.values()):
        parts.append(f"### {EVENTS_TITLE}\n\nValues: {EVENTS_NOTE}.\n")
        for name in components:
            rows = {run: r["events"].get(name, {}) for run, r in results.items()}
            keys = [k for k in HEADERS if any(k in v for v in rows.values())]
            if keys:
                parts.append(f"**{name}**\n\n{table(rows, keys)}\n")
    if oracle:
        parts.append(f"`{ORACLE_LABEL}`: {ORACLE_NOTE}.\n")
    if oracle and "complex_mask" in oracle:
        parts.append(f"`{COMPLEX_ORACLE_LABEL}`: {COMPLEX_ORACLE_NOTE}.\n")
    return "\n".join(parts)


def write_outputs(results: dict[str, dict[str, Any]], components: Sequence[str], out: str, config: Config,
                  oracle: dict[str, Any] | None = None) -> tuple[str, str]:
    """Writes `<out>/evaluation.json` and `<out>/evaluation.md`; returns their paths."""
    atomic.make_dirs(out, "out")
    document = {"config": config.name, "components": list(components), "runs": results}
    if oracle:
        document["oracle"] = oracle
    json_path, md_path = os.path.join(out, "evaluation.json"), os.path.join(out, "evaluation.md")
    atomic.write_text(json_path, json.dumps(jsonable(document), indent=1, allow_nan=False))
    runs = "\n".join(f"- `{name}`: {r['model_dir']} (loss.mode={r['mode']}, checkpoint {r['checkpoint']})"
                     for name, r in results.items())
    atomic.write_text(md_path, f"# Evaluation: {config.name}\n\nRuns:\n{runs}\n\n"
                         "Relative errors are eq. 6 of the paper, ||x̂ - x||_p / ||x||_p (lower is better); "
                         "SI-SDR and SDR in dB (higher is better).\n\n" + report(results, components, oracle))
    return json_path, md_path


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"


def jsonable(value: Any) -> Any:
    """JSON has no inf/nan: non-finite floats become the strings "inf", "-inf", "nan"."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
