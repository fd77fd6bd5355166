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
                                       command, budget and wall times
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
import math
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
from cass_tf.rundir import SCORES, WAVEFORM_L2, RunDir  # noqa: E402

VARIANTS = ("baseline", "cass", "cass_cross")
LABELS = {"baseline": "Baseline AE", "cass": "CASS", "cass_cross": "CASS with Cross Training"}
SEEDS = (0, 1, 2)
# protocol -> the cass_tf.evaluate scope scored for it (the test crops under both)
PROTOCOL_SCOPES = {"waveform": "crops", "paper": "crops_paper"}
PROTOCOL_NOTES = {
    "waveform": "estimates against the TRUE component waveforms (what a user gets)",
    "paper": "the paper's protocol: estimate and true component magnitude both put back with the mixture's phase "
             "(phase errors do not count; the ideal magnitude scores 0); like for like with the paper's tables",
}
P_VALUE = 0.05
# What the results pages say about their figures that summary.json does not hold (docs/README.md, "How figures are
# backed"): the per-seed scores behind the p-values and the oracle rows stay in the run directories.
UNBACKED_VERDICTS = "<!-- unbacked: the per-seed scores behind the p-values are not in summary.json -->"
UNBACKED_VERDICTS_SAY = ("The p-values are not reproducible from committed files: they come from the per-seed scores "
                         f"in each run's `{SCORES}`, which are not committed; rerun the command to get them.")
UNBACKED_ORACLE_SAYS = ("Its row is not reproducible from committed files: `summary.json` does not hold it; rerun the "
                        "command to get it.")
# The training recipe chosen on the validation split by pipelines/ablate.py (docs/results/training.md), for every
# budget, task and variant alike.
RECIPE: list[str] = ["model.discriminator_norm=spectral"]

# Per budget: overrides for every task ("common"), then per data source. Applied before the user's --set.
BUDGETS: dict[str, dict[str, list[str]]] = {
    "paper": {
        "common": ["train.epochs=500", "train.batch_size=50", "train.ae_learning_rate=1e-5",
                   "train.d_learning_rate=1e-6", "model.width=32"],
    },
    "cpu": {
        "common": ["model.width=8", "train.batch_size=16", "train.steps_per_epoch=20",
                   "train.ae_learning_rate=1e-3", "train.d_learning_rate=1e-4"],
        "ppg": ["train.epochs=30"],
        "ecg": ["train.epochs=30"],
        # 16 kHz and the config's STFT (n_fft 1024, 512 bins) kept; patches of 16 frames (0.3 s) instead of 64.
        "bach10": ["train.epochs=20", "patch.frames=16"],
    },
    # what bfloat16 training buys in about the cpu budget's wall time (docs/benchmarks.md): width 16 and 3x the steps
    "cpu_large": {
        "common": ["model.width=16", "train.batch_size=16", "train.steps_per_epoch=20", "train.precision=auto",
                   "train.ae_learning_rate=1e-3", "train.d_learning_rate=1e-4"],
        "ppg": ["train.epochs=90"],
        "ecg": ["train.epochs=90"],
        "bach10": ["train.epochs=60", "patch.frames=16"],
    },
    "tiny": {
        "common": ["model.width=2", "patch.frequency_bins=16", "patch.frames=16", "train.batch_size=4",
                   "train.epochs=2", "train.steps_per_epoch=3", "train.ae_learning_rate=1e-3",
                   "train.d_learning_rate=1e-4", "data.cache_dir=null"],
        "ppg": ["data.ppg.train_recordings=3", "data.ppg.test_recordings=2", "data.ppg.seconds=20"],
        "ecg": ["data.ecg.train_recordings=2", "data.ecg.test_recordings=1", "data.ecg.seconds=12"],
        "bach10": ["data.sample_rate=4000", "stft.n_fft=128", "stft.window=128", "stft.hop=32"],
    },
}

# The paper's Tables 1-3 (CASS, Ong, Chui & Yang), relative errors after the inverse STFT, for reference only.
PAPER: dict[str, dict[str, dict[str, dict[str, float]]]] = {
    "bach10": {  # Table 1 ("bass" is Bach10's bassoon)
        "bassoon": {"baseline": {"l1": 0.13942, "l2": 0.14630, "linf": 0.21712},
                    "cass": {"l1": 0.10363, "l2": 0.10909, "linf": 0.16692},
                    "cass_cross": {"l1": 0.10241, "l2": 0.10825, "linf": 0.16887}},
        "saxophone": {"baseline": {"l1": 0.15845, "l2": 0.16984, "linf": 0.26421},
                      "cass": {"l1": 0.13325, "l2": 0.14254, "linf": 0.22329},
                      "cass_cross": {"l1": 0.12850, "l2": 0.13717, "linf": 0.21234}},
    },
    "ecg": {  # Table 2
        "maternal": {"baseline": {"l1": 0.45158, "l2": 0.53502, "linf": 0.85077},
                     "cass": {"l1": 0.40672, "l2": 0.47942, "linf": 0.77370},
                     "cass_cross": {"l1": 0.40994, "l2": 0.48082, "linf": 0.77911}},
        "fetal": {"baseline": {"l1": 0.49818, "l2": 0.57435, "linf": 0.80709},
                  "cass": {"l1": 0.37387, "l2": 0.46627, "linf": 0.75402},
                  "cass_cross": {"l1": 0.37218, "l2": 0.45848, "linf": 0.74462}},
    },
    "ppg": {  # Table 3
        "heart": {"baseline": {"l1": 0.02409, "l2": 0.026174, "linf": 0.051244},
                  "cass": {"l1": 0.019765, "l2": 0.021612, "linf": 0.04225},
                  "cass_cross": {"l1": 0.02047, "l2": 0.022261, "linf": 0.043220}},
        "respiratory": {"baseline": {"l1": 0.05874, "l2": 0.066493, "linf": 0.13064},
                        "cass": {"l1": 0.05117, "l2": 0.058100, "linf": 0.11460},
                        "cass_cross": {"l1": 0.05310, "l2": 0.06036, "linf": 0.119324}},
    },
}
TABLE_METRICS = ("l1", "l2", "linf", "si_sdr")
PROG = "python pipelines/reproduce.py"


def budget_overrides(budget: str, source: str) -> list[str]:
    """The overrides a budget applies to a task (data source): the recipe, the budget's common ones, the task's."""
    if budget not in BUDGETS:
        raise ConfigError(f"--budget: unknown budget {budget!r} (choose from {sorted(BUDGETS)})")
    return [*RECIPE, *BUDGETS[budget].get("common", []), *BUDGETS[budget].get(source, [])]


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


def statistics(task: Task) -> dict[str, Any]:
    """{protocol: {variant: {component: {"l2_mean", "l2_std", "l1_mean", "linf_mean", "seeds", "l2"}}}} over the
    finished seeds ("l2": the per-seed values; std: sample standard deviation, 0 with one seed)."""
    import numpy as np

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
    from scipy import stats

    if len(better) < 2 or len(worse) < 2:
        return "untested (fewer than 2 seeds)"
    p = stats.ttest_ind(better, worse, equal_var=False).pvalue
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
    write_summary(os.path.join(results_dir, "summary.json"), task.page, stats)
    page = results_markdown(task, stats, command, overrides, figure_paths)
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


def results_markdown(task: Task, stats: dict[str, Any], command: str, overrides: Sequence[str],
                     figure_paths: dict[str, str]) -> str:
    """The results page: per protocol, mean ± std over seeds beside the paper's values; verdicts; runs."""
    from cass_tf.evaluate import CROP_NOTE, ORACLE_LABEL, ORACLE_NOTE

    config, budget = task.config, task.budget
    paper = PAPER.get(config.data.source, {})
    settings = sorted({f"{v:.4f}" for per in paper.values() for variant in per.values() for v in variant.values()})
    lines = [
        f"# Reproduction: {task.name} (budget `{budget}`)",
        "",
        f"<!-- settings: {P_VALUE} {config.train.ae_learning_rate:g} {config.train.d_learning_rate:g} "
        + " ".join(settings) + " -->",
        "",
        "Baseline AE vs CASS vs CASS with cross adversarial training, trained with identical data, model, recipe and "
        f"step budget (only `loss.mode` differs), each with seeds {task.seeds} (`train.seed`: initial weights and "
        "training crops; the same data and test set). Relative errors are eq. 6 of the paper, ||x̂ - x||_p / "
        "||x||_p (lower is better), on the fixed test crops (" + CROP_NOTE + "); mean ± sample standard deviation "
        "over the seeds that have finished. The `paper` columns are Tables 1-3 of the paper"
        + ("" if budget == "paper" else f"; this run used the `{budget}` budget, far smaller than the paper's") + ".",
        "",
        "Command (rerun it to resume; finished runs are skipped):",
        "",
        f"    {command}",
        "",
        f"Overrides (recipe, then budget `{budget}`, applied to every variant): "
        + (", ".join(f"`{o}`" for o in overrides) if overrides else "none"),
        "",
        f"Training: {config.train.epochs} epochs x {config.train.steps_per_epoch} steps, batch "
        f"{config.train.batch_size}, learning rates {config.train.ae_learning_rate:g} (AEs) / "
        f"{config.train.d_learning_rate:g} (discriminators), ResNet-9 width {config.model.width}, patch "
        f"{config.patch.frequency_bins}x{config.patch.frames}, {config.data.sample_rate} Hz, n_fft "
        f"{config.stft.n_fft}, hop {config.stft.hop}.",
        "",
        "## Does the paper's ordering hold?",
        "",
        f"Welch's t-test over the seeds' mean L2 errors: \"holds\" needs p < {P_VALUE} in the claimed direction, "
        "\"contradicted\" p < 0.05 the other way; anything else is within the seeds' spread.",
        "",
        UNBACKED_VERDICTS,
        *verdicts(task, stats),
        "",
        UNBACKED_VERDICTS_SAY,
        "<!-- /unbacked -->",
        "",
        "<!-- figures: summary.json -->",
    ]
    oracle = task.oracle()
    for protocol, scope in PROTOCOL_SCOPES.items():
        lines += [f"## {protocol.capitalize()} protocol", "", f"Values: {PROTOCOL_NOTES[protocol]}.", ""]
        for name in config.components:
            lines += [f"**{name}**", "", "| model | seeds | L2 (mean ± std) | L1 | L∞ | paper L1 | paper L2 | paper L∞ |",
                      "|---|---|---|---|---|---|---|---|"]
            for variant in VARIANTS:
                s = stats[protocol].get(variant, {}).get(name)
                ref = paper.get(name, {}).get(variant, {})
                spread = f" ± {s['l2_std']:.4f}" if s and s["seeds"] > 1 else ""
                cells = ([str(s["seeds"]), f"{s['l2_mean']:.4f}{spread}", f"{s['l1_mean']:.4f}",
                          f"{s['linf_mean']:.4f}"] if s else ["0", "", "", ""])
                cells += [f"{ref[m]:.4f}" if m in ref else "" for m in ("l1", "l2", "linf")]
                lines.append(f"| {LABELS[variant]} | " + " | ".join(cells) + " |")
            if protocol == "waveform":
                o = oracle["crops"]["summary"][name]
                lines.append(f"| {ORACLE_LABEL} | | {o['l2']['mean']:.4f} | {o['l1']['mean']:.4f} | "
                             f"{o['linf']['mean']:.4f} | | | | <!-- unbacked row -->")
            else:
                lines.append(f"| {ORACLE_LABEL} | | 0 (by construction) | 0 | 0 | | | |")
            lines.append("")
        lines += [f"`{ORACLE_LABEL}`: {ORACLE_NOTE}. {UNBACKED_ORACLE_SAYS}", ""]
    lines += ["<!-- /figures -->", "", "## Runs", "", "| variant | seed | model_dir | steps | training wall time |",
              "|---|---|---|---|---|"]
    for (variant, seed), run in task.configs.items():
        timing = _read_json(RunDir(run.output.model_dir).wall_time)
        state = _duration(timing["train_seconds"]) if finished(run) else "not finished"
        lines.append(f"| {LABELS[variant]} | {seed} | `{run.output.model_dir}` | {timing.get('steps', '')} | {state} |")
    lines += ["", "## Figures", "", f"![test L2 per epoch]({os.path.basename(figure_paths['test_l2'])})", "",
              "Log test relative L2 error of the waveforms (test crops, waveform protocol) after every epoch, each "
              "variant's lowest finished seed (paper Figs. 4/5).", ""]
    if "discriminator" in figure_paths:
        lines += [f"![discriminator outputs]({os.path.basename(figure_paths['discriminator'])})", "",
                  "Each component's autoencoder output on the test mixtures, fed to the *other* components' "
                  "discriminators: probability of 'real' per test crop, CASS vs CASS with cross training, lowest "
                  "finished seed (paper Fig. 6); dotted: the same discriminator on the true component.", ""]
    lines += [f"Per-run scores: `<model_dir>/{SCORES}`; statistics: `summary.json` beside this page.", ""]
    return "\n".join(lines)


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


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _read_json(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _write_json(path: str, value: dict[str, Any]) -> None:
    atomic.write_text(path, json.dumps(value, indent=1))


if __name__ == "__main__":
    sys.exit(main())
