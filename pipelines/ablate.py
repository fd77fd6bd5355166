"""Chooses the adversarial training recipe on a validation split: greedy one-factor ablations (issue 10).

    python pipelines/ablate.py [--tasks ecg ppg] [--out_dir runs/ablation]

Every run trains CASS with cross training (`loss.mode=cass_cross`, the variant with the most adversarial terms)
with `data.validation_recordings` held out of the training recordings and scored instead of the test split, which
is never loaded. Stages, in order; each starts from the best recipe so far and keeps its best option (the
incumbent included), by the mean over tasks and components of the validation waveform L2 after the last epoch,
divided by the baseline's (the same budget, `loss.mode=baseline`):

    discriminator normalisation   BatchNorm with separate real/fake/cross calls (the old code), BatchNorm on one
                                  concatenated batch, layer norm, spectral norm
    warm-up                       0 or `WARMUP` AE steps on the reconstruction loss before eq. 7's BCE term
    output                        softplus magnitude (unbounded) or a sigmoid mask times the mixture (bounded)

Learning rates stay the budget's 1e-3 / 1e-4 (the paper's 10:1 ratio). CPU is scarce (2 cores shared): no "none"
normalisation, no learning-rate stage, no alternating update were run; see docs/results/training.md.

Then all three variants are trained at the chosen recipe, on `--tasks` and on `--check_tasks` (trained at the
chosen recipe only, to see whether it carries over). Runs train in `<out_dir>/<task>/<name>/`,
where the name spells the overrides, so a rerun skips finished runs and resumes unfinished ones. Writes
`<out_dir>/results.json` (every run: task, stage, option, overrides, scores, wall time) and `<out_dir>/table.md`.
One seed per run (CPU budget): differences smaller than the seed spread of pipelines/reproduce.py are noise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Sequence

if __package__ in (None, ""):  # run as a script from a checkout: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cass_tf import atomic  # noqa: E402
from cass_tf.config import load_config  # noqa: E402
from cass_tf.rundir import MAGNITUDE_L2, WAVEFORM_L2, RunDir  # noqa: E402

CONFIGS = {"ecg": "configs/paper/ecg.json", "ppg": "configs/paper/ppg.json"}
BUDGET = ["model.width=8", "train.batch_size=16", "train.steps_per_epoch=100", "train.epochs=3",
          "train.ae_learning_rate=1e-3", "train.d_learning_rate=1e-4"]
VALIDATION = {"ecg": ["data.validation_recordings=8"], "ppg": ["data.validation_recordings=8"]}
WARMUP = 100
ADVERSARIAL_ONLY = ("model.discriminator_", "train.d_learning_rate", "train.warmup_steps", "train.update")
STAGES: list[tuple[str, dict[str, list[str]]]] = [
    ("discriminator normalisation", {
        "BatchNorm, separate calls": ["model.discriminator_norm=batch", "model.discriminator_batch=separate"],
        "BatchNorm, concatenated": ["model.discriminator_norm=batch", "model.discriminator_batch=concatenated"],
        "layer norm": ["model.discriminator_norm=layer"],
        "spectral norm": ["model.discriminator_norm=spectral"],
    }),
    ("warm-up", {"none": [], f"{WARMUP} steps": [f"train.warmup_steps={WARMUP}"]}),
    ("output", {"softplus magnitude": [], "bounded mask": ["model.output=mask"]}),
]


def run_name(mode: str, overrides: Sequence[str]) -> str:
    """A directory name spelling the mode and the recipe's overrides (equal recipes share a run)."""
    parts = [mode] + [o.split(".")[-1].replace("discriminator_", "d_").replace("_learning_rate", "_lr")
                      for o in sorted(set(overrides))]
    return "__".join(parts).replace("=", "-")


def train_one(task: str, mode: str, overrides: Sequence[str], out_dir: str) -> dict[str, Any]:
    """Trains (or skips, if finished) one run; returns its validation scores from the last history row.

    A baseline ignores the overrides that only concern discriminators (`ADVERSARIAL_ONLY`), so it is trained once."""
    from cass_tf.training import train_to_the_end

    if mode == "baseline":
        overrides = [o for o in overrides if not o.startswith(ADVERSARIAL_ONLY)]
    model_dir = os.path.join(out_dir, task, run_name(mode, overrides))
    done_path = RunDir(model_dir).ablation
    if os.path.exists(done_path):
        with open(done_path, encoding="utf-8") as f:
            return json.load(f)
    config = load_config(CONFIGS[task], [*BUDGET, *VALIDATION[task], f"loss.mode={mode}", *overrides,
                                         f"output.model_dir={model_dir}"])
    started = time.time()
    print(f"[{task}] {os.path.basename(model_dir)} ...", flush=True)
    last = train_to_the_end(config, lambda line: print(f"[{task}] {line}", flush=True), verbose=False)[-1]
    record = {
        "task": task, "mode": mode, "overrides": list(overrides), "model_dir": model_dir,
        "steps": int(last["step"]), "seconds": round(time.time() - started, 1),
        "waveform_l2": {c: last[f"{WAVEFORM_L2}{c}"] for c in config.components},
        "magnitude_l2": {c: last[f"{MAGNITUDE_L2}{c}"] for c in config.components},
        "command": "cass-tf train --config " + CONFIGS[task] + "".join(
            f" --set {o}" for o in [*BUDGET, *VALIDATION[task], f"loss.mode={mode}", *overrides])
                   + f" --model_dir {model_dir}",
    }
    atomic.write_text(done_path, json.dumps(record, indent=1))
    print(f"[{task}] {os.path.basename(model_dir)}: validation L2 {record['waveform_l2']} "
          f"({record['seconds']:.0f} s)", flush=True)
    return record


def score(records: dict[str, dict[str, Any]], baselines: dict[str, dict[str, Any]]) -> float:
    """Mean over tasks and components of validation waveform L2 / the baseline's."""
    ratios = [records[t]["waveform_l2"][c] / baselines[t]["waveform_l2"][c]
              for t in records for c in records[t]["waveform_l2"]]
    return sum(ratios) / len(ratios)


def ablate(tasks: Sequence[str], out_dir: str, check_tasks: Sequence[str] = (), final: bool = True) -> dict[str, Any]:
    """Runs the stages greedily on `tasks`, then (if `final`) every variant at the chosen recipe on `tasks` and
    `check_tasks`; returns {"rows": [...], "recipe": overrides, "baselines": records, "final": {mode: {task: record}}}
    ("final" empty when not `final`)."""
    baselines = {t: train_one(t, "baseline", [], out_dir) for t in tasks}
    recipe: list[str] = []
    rows = []
    for stage, options in STAGES:
        best = None
        for option, overrides in options.items():
            candidate = recipe + overrides
            records = {t: train_one(t, "cass_cross", candidate, out_dir) for t in tasks}
            value = score(records, baselines)
            rows.append({"stage": stage, "option": option, "overrides": candidate, "score": value,
                         "records": records})
            if best is None or value < best[0]:
                best = (value, candidate)
        recipe = best[1]
        print(f"== {stage}: chose {recipe} (score {best[0]:.3f})", flush=True)
    every = list(dict.fromkeys([*tasks, *check_tasks])) if final else []
    runs = {mode: {t: train_one(t, mode, recipe, out_dir) for t in every} for mode in ("baseline", "cass", "cass_cross")}
    return {"rows": rows, "recipe": recipe, "baselines": baselines, "final": runs if every else {}}


def table(result: dict[str, Any]) -> str:
    """Markdown: one row per (stage, option): score, validation L2 per task and component, wall time, run."""
    last = result["final"].get("baseline", result["baselines"])
    columns = [(t, c) for t in last for c in last[t]["waveform_l2"]]
    header = ["stage", "option", "score (L2 / baseline L2, mean)"] + [f"{t} {c} L2" for t, c in columns] + ["s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def line(stage: str, option: str, value: str, records: dict[str, Any]) -> str:
        cells = [stage, option, value] + [f"{records[t]['waveform_l2'][c]:.4f}" if t in records else ""
                                          for t, c in columns]
        cells.append(f"{sum(r['seconds'] for r in records.values()):.0f}")
        return "| " + " | ".join(cells) + " |"

    lines.append(line("reference", "baseline AE (no discriminator)", "1", result["baselines"]))
    for row in result["rows"]:
        lines.append(line(row["stage"], row["option"], f"{row['score']:.3f}", row["records"]))
    for mode, records in result["final"].items():
        staged = {t: r for t, r in records.items() if t in result["baselines"]}
        lines.append(line("chosen recipe", mode, f"{score(staged, result['baselines']):.3f}", records))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python pipelines/ablate.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(CONFIGS), choices=sorted(CONFIGS),
                        help="the tasks every stage trains and scores")
    parser.add_argument("--check_tasks", nargs="*", default=[], choices=sorted(CONFIGS),
                        help="tasks trained at the chosen recipe only (every variant), to check it carries over")
    parser.add_argument("--stages_only", action="store_true",
                        help="stop after the stages (pipelines/reproduce.py trains every variant at the recipe)")
    parser.add_argument("--out_dir", default="runs/ablation")
    args = parser.parse_args(argv)
    result = ablate(args.tasks, args.out_dir, args.check_tasks, not args.stages_only)
    atomic.make_dirs(args.out_dir, "--out_dir")
    atomic.write_text(os.path.join(args.out_dir, "results.json"), json.dumps(result, indent=1))
    atomic.write_text(os.path.join(args.out_dir, "table.md"), table(result) + "\n")
    print(table(result))
    print(f"chosen recipe: {' '.join(result['recipe'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
