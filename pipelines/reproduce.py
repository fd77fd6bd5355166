"""Reproduces the paper's Tables 1-3 and Figures 4-6: baseline vs CASS vs CASS with cross training, over seeds.

    python pipelines/reproduce.py --config configs/paper/ecg.json [--config configs/paper/ppg.json ...]
                                  [--budget cpu|paper] [--seeds 0 1 2] [--set dotted.path=value ...]
                                  [--out_dir runs/reproduce] [--results docs/results]

For each config's task (bach10, ecg or ppg) this trains the three variants of the paper, `loss.mode` = baseline,
cass and cass_cross, each with every seed in `--seeds` (`train.seed`: the initial weights and the training crops;
the data and the test set stay the same), with one config otherwise: the same data, model, optimiser settings,
step budget and the training recipe chosen on a validation split (`RECIPE`: pipelines/ablate.py,
docs/results/training.md), applied to all variants alike (`--budget` overrides, then `--set`; nothing is tuned per
variant). Runs go round seed by seed (every task and variant at seed 0 first), each in
`<out_dir>/<task>-<budget>/<variant>/seed<k>/`; rerunning the same command skips finished runs and resumes
unfinished ones. After each task and seed, every finished run is scored once (cass_tf.evaluate on the test crops,
under both protocols: "waveform" against the true waveforms, "paper" against the true magnitudes with the mixture's
phase; cached in the run's `scores.json`) and the results are rewritten:

    <results>/<task>.md                per protocol and component: mean ± std over seeds of the relative L1/L2/L∞
                                       errors beside the paper's, the oracle rows, the ordering verdicts, the
                                       command, budget and wall times; `<task>-<budget>.md` for a budget other
                                       than cpu (its figures and summary.json key likewise), with the cpu budget's
                                       L2 beside its own ("Budgets side by side") once summary.json holds both
    <results>/summary.json             {task: {protocol: {variant: {component: {"l2_mean", "l2_std", "l1_mean",
                                       "linf_mean", "seeds"}}}}} (merged: other tasks' entries are kept)
    <results>/<task>_test_l2.png       Figs. 4/5: log test relative L2 (waveform) per epoch, per variant (lowest seed)
    <results>/<task>_discriminator.png Fig. 6: each component's AE outputs fed to the other components'
                                       discriminators (probability "real" per test crop), cass vs cass_cross

An ordering "holds" only when Welch's t-test over the seeds' mean L2 errors gives p < 0.05 in the claimed
direction (`compare`); "contradicted" when p < 0.05 the other way; otherwise it is within the seeds' spread.

Budgets (`BUDGETS`), each after `RECIPE`:
    paper  the paper's settings: 500 epochs, batch 50, learning rates 1e-5 (AEs) / 1e-6 (discriminators),
           ResNet-9 width 32 (a GPU job).
    cpu    scaled down so that 3 tasks x 3 variants x 3 seeds train in about two hours on 2 otherwise idle CPU
           cores: width 8, batch 16, 600 steps (ECG, PPG) or 400 steps of 16-frame patches (Bach10), learning
           rates 1e-3 / 1e-4. Its numbers are not the paper's setting.
    cpu_large  the cpu budget at width 16 with 3x the steps (1800 ECG/PPG, 1200 Bach10), trained in bfloat16 where
           the machine has it (train.precision=auto): roughly 4-5x the cpu budget's arithmetic.
    tiny   for the test suite only: seconds per run, meaningless numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from typing import Any, Sequence

if __package__ in (None, ""):  # run as a script from a checkout: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cass_tf import atomic  # noqa: E402
from cass_tf import cli  # noqa: E402
from cass_tf.config import Config, ConfigError, load_config  # noqa: E402
from cass_tf.rundir import WAVEFORM_L2, RunDir  # noqa: E402
from pipelines.pages import results_markdown  # noqa: E402
from pipelines.paper import BUDGETS, LABELS, PROTOCOL_SCOPES, VARIANTS, budget_overrides  # noqa: E402
from pipelines.seed_stats import statistics  # noqa: E402
# re-exported for pipelines/precision.py and tests/test_reproduce.py, which know this module as the pipeline's face
from pipelines.paper import PAPER  # noqa: E402,F401
from pipelines.seed_stats import compare  # noqa: E402,F401

SEEDS = (0, 1, 2)
PROG = "python pipelines/reproduce.py"


def variant_config(config: Config, variant: str, root: str, seed: int | None = None) -> Config:
    """`config` with loss.mode = variant, training in `<root>/<variant>` (`<root>/<variant>/seed<k>` with
    train.seed = k when a seed is given)."""
    if seed is None:
        return config.replace([f"loss.mode={variant}", f"output.model_dir={os.path.join(root, variant)}"])
    return config.replace([f"loss.mode={variant}", f"train.seed={seed}",
                           f"output.model_dir={os.path.join(root, variant, f'seed{seed}')}"])


def finished(config: Config) -> bool:
    """Whether the run in config.output.model_dir has trained all of config.train.epochs (its wall_time.json)."""
    return _read_json(RunDir(config.output.model_dir).wall_time).get("epochs") == config.train.epochs


def train_variant(config: Config, label: str) -> float:
    """Trains (or resumes, or skips if finished) one run; returns the wall time accumulated over all runs."""
    from cass_tf.training import train_to_the_end

    model_dir = config.output.model_dir
    timing_path = RunDir(model_dir).wall_time
    before = _read_json(timing_path).get("train_seconds", 0.0)
    if finished(config):
        return before
    epochs = config.train.epochs

    def progress(row: dict[str, float]) -> None:
        errors = "  ".join(f"{k.split('/', 1)[1]}={v:.4g}" for k, v in row.items() if k.startswith(WAVEFORM_L2))
        print(f"[{label}] epoch {int(row['epoch'])}/{epochs}  test L2 {errors}  ({row['seconds']:.1f} s)", flush=True)

    started = time.time()
    last = train_to_the_end(config, lambda line: print(f"[{label}] {line}", flush=True), verbose=False,
                            on_epoch=progress)[-1]
    total = before + time.time() - started
    _write_json(timing_path, {"train_seconds": total, "epochs": int(last["epoch"]), "steps": int(last["step"])})
    print(f"[{label}] done: {int(last['epoch'])} epochs, {int(last['step'])} steps, {total:.0f} s of training wall "
          "time", flush=True)
    return total


class Task:
    """One task's runs under one budget: their configs, the test data, and the scores of its finished runs."""

    def __init__(self, config: Config, budget: str, out_dir: str, seeds: Sequence[int]):
        self.config, self.budget, self.seeds = config, budget, list(seeds)
        self.name = config.name
        # the results page, figures and summary.json key: the task's name for the cpu budget (the first one
        # published), `<name>-<budget>` for the others, so that budgets sit side by side
        self.page = self.name if budget == "cpu" else f"{self.name}-{budget}"
        self.root = os.path.join(out_dir, f"{self.name}-{budget}")
        self.configs = {(v, s): variant_config(config, v, self.root, s) for s in seeds for v in VARIANTS}
        self._data = self._oracle = None

    @property
    def data(self):
        if self._data is None:
            from cass_tf.data.pipeline import make_datasets

            self._data = make_datasets(self.config, train=False)
        return self._data

    def train(self, seed: int) -> None:
        for variant in VARIANTS:
            config = self.configs[variant, seed]
            print(f"== {self.name}: {variant} seed {seed} in {config.output.model_dir}", flush=True)
            train_variant(config, f"{self.name} {variant} seed {seed}")

    def scores(self, variant: str, seed: int) -> dict[str, Any] | None:
        """{"waveform"/"paper": {component: {metric: mean over the test crops}}} of a finished run (None if not
        finished), computed once and cached in the run's scores.json."""
        from cass_tf import evaluate
        from cass_tf.models.cass import restore

        config = self.configs[variant, seed]
        if not finished(config):
            return None
        path = RunDir(config.output.model_dir).scores
        cached = _read_json(path)
        if cached:
            return cached
        model_dir = config.output.model_dir
        result = evaluate.evaluate_run(model_dir, config, self.data, signals=False, model=restore(model_dir),
                                       protocols=tuple(PROTOCOL_SCOPES))
        scores = {protocol: {name: {m: s["mean"] for m, s in result[scope]["summary"][name].items()}
                             for name in config.components}
                  for protocol, scope in PROTOCOL_SCOPES.items()}
        _write_json(path, scores)
        return scores

    def oracle(self) -> dict[str, Any]:
        if self._oracle is None:
            from cass_tf import evaluate

            self._oracle = evaluate.oracle_errors(self.data, self.config, signals=False)
        return self._oracle

    def runs(self) -> list[tuple[str, int, str, dict[str, Any], bool]]:
        """(variant, seed, model_dir, its wall_time.json or {}, finished) of every run, seed by seed."""
        return [(variant, seed, config.output.model_dir, _read_json(RunDir(config.output.model_dir).wall_time),
                 finished(config)) for (variant, seed), config in self.configs.items()]


def write_summary(path: str, task: str, stats: dict[str, Any]) -> str:
    """Merges this task's statistics (without the per-seed lists) into summary.json."""
    summary = _read_json(path)
    summary[task] = {p: {v: {c: {k: x for k, x in s.items() if k != "l2"} for c, s in per.items()}
                         for v, per in variants.items()} for p, variants in stats.items()}
    return atomic.write_text(path, json.dumps(summary, indent=1, sort_keys=True) + "\n")


def figures(task: Task, results_dir: str) -> dict[str, str]:
    """Figs. 4/5 and 6 from each variant's lowest finished seed."""
    from cass_tf import evaluate, plots
    from cass_tf.models.cass import restore

    histories, discriminators = {}, {}
    for variant in VARIANTS:
        seed = next((s for s in task.seeds if finished(task.configs[variant, s])), None)
        if seed is None:
            continue
        model_dir = task.configs[variant, seed].output.model_dir
        histories[f"{LABELS[variant]} (seed {seed})"] = RunDir(model_dir).read_history()
        if variant != "baseline":
            discriminators[f"{LABELS[variant]} (seed {seed})"] = evaluate.discriminator_outputs(restore(model_dir),
                                                                                              task.data)
    atomic.make_dirs(results_dir, "--results")
    paths = {"test_l2": plots.test_l2_curves(histories, task.config.components,
                                             os.path.join(results_dir, f"{task.page}_test_l2.png"))}
    if discriminators:
        paths["discriminator"] = plots.discriminator_outputs(
            discriminators, os.path.join(results_dir, f"{task.page}_discriminator.png"))
    return paths


def report(task: Task, results_dir: str, command: str, overrides: Sequence[str]) -> dict[str, Any]:
    """Scores the finished runs and rewrites the task's page, summary.json and figures; returns the statistics."""
    stats = statistics(task)
    if not any(stats[p] for p in stats):
        return stats
    figure_paths = figures(task, results_dir)
    summary_path = write_summary(os.path.join(results_dir, "summary.json"), task.page, stats)
    page = results_markdown(task, stats, command, overrides, figure_paths, _read_json(summary_path))
    path = atomic.write_text(os.path.join(results_dir, f"{task.page}.md"), page)
    print(f"== {task.name}: wrote {path}", flush=True)
    return stats


def reproduce(configs: Sequence[Config], budget: str, seeds: Sequence[int], out_dir: str, results_dir: str,
              command: str, overrides: dict[str, list[str]]) -> dict[str, Any]:
    """Trains every task's variants seed by seed, reporting after each task and seed; returns the statistics."""
    tasks = [Task(c, budget, out_dir, seeds) for c in configs]
    stats = {}
    for seed in seeds:
        for task in tasks:
            task.train(seed)
            try:
                stats[task.name] = report(task, results_dir, command, overrides[task.name])
            except Exception as e:  # noqa: BLE001 - training goes on; the next report (or a rerun) rewrites it
                print(f"== {task.name}: report after seed {seed} failed, training goes on: "
                      f"{type(e).__name__}: {e}"[:400], flush=True)
    return stats



def main(argv: Sequence[str] | None = None) -> int:
    """The command line (cass_tf.cli's conventions: quiet, one `error:` line, exit 2 on usage errors, --verbose)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = cli.Command("reproduce", __doc__.split("\n\n")[0], _arguments, lambda args: _run(args, argv))
    return cli.run_command(command, argv, prog=PROG)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", action="append", required=True,
                        help="configs/paper/<task>.json: the paper's settings (repeatable: the tasks go round seed by seed)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="train.seed values (default 0 1 2)")
    parser.add_argument("--budget", default="cpu", choices=sorted(BUDGETS),
                        help="cpu (default), cpu_large, paper, or tiny (tests only)")
    parser.add_argument("--set", action="append", default=[], help="extra override for all variants: dotted.path=json")
    parser.add_argument("--out_dir", default="runs/reproduce", help="where the three runs train")
    parser.add_argument("--results", default="docs/results", help="where <task>.md and the figures go")


def _run(args: argparse.Namespace, argv: Sequence[str]) -> None:
    configs, overrides = [], {}
    for path in args.config:
        task_overrides = budget_overrides(args.budget, load_config(path).data.source) + args.set
        configs.append(load_config(path, task_overrides))
        overrides[configs[-1].name] = task_overrides
    if any(seed < 0 for seed in args.seeds) or len(set(args.seeds)) != len(args.seeds):
        raise ConfigError(f"--seeds: must be distinct non-negative integers, got {args.seeds}")
    cli.show_device(configs[0].train.precision if configs else None)
    reproduce(configs, args.budget, args.seeds, args.out_dir, args.results, f"{PROG} {shlex.join(argv)}", overrides)


def _read_json(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _write_json(path: str, value: dict[str, Any]) -> None:
    atomic.write_text(path, json.dumps(value, indent=1))


if __name__ == "__main__":
    sys.exit(main())
