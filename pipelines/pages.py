"""Owns pipelines/reproduce.py's results page: the Markdown of one task under one budget."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

from cass_tf.rundir import SCORES
from pipelines.paper import LABELS, PAPER, PROTOCOL_NOTES, PROTOCOL_SCOPES, VARIANTS
from pipelines.seed_stats import P_VALUE, verdicts

if TYPE_CHECKING:
    from pipelines.reproduce import Task

# What the results pages say about their figures that summary.json does not hold (docs/README.md, "How figures are
# backed"): the per-seed scores behind the p-values and the oracle rows stay in the run directories.
UNBACKED_VERDICTS = "<!-- unbacked: the per-seed scores behind the p-values are not in summary.json -->"
UNBACKED_VERDICTS_SAY = ("The p-values are not reproducible from committed files: they come from the per-seed scores "
                         f"in each run's `{SCORES}`, which are not committed; rerun the command to get them.")
UNBACKED_ORACLE_SAYS = ("Its row is not reproducible from committed files: `summary.json` does not hold it; rerun the "
                        "command to get it.")


def results_markdown(task: Task, stats: dict[str, Any], command: str, overrides: Sequence[str],
                     figure_paths: dict[str, str], summary: dict[str, Any]) -> str:
    """The results page: per protocol, mean ± std over seeds beside the paper's values; the cpu budget's beside this
    budget's (from `summary`, summary.json's content); verdicts; runs."""
    from cass_tf.evaluate import CROP_NOTE, ORACLE_LABEL, ORACLE_NOTE  # loads TensorFlow: after the CLI quieted it

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
    lines += budgets_side_by_side(summary, task.name, budget, config.components)
    lines += ["<!-- /figures -->", "", "## Runs", "", "| variant | seed | model_dir | steps | training wall time |",
              "|---|---|---|---|---|"]
    for variant, seed, model_dir, timing, done in task.runs():
        state = _duration(timing["train_seconds"]) if done else "not finished"
        lines.append(f"| {LABELS[variant]} | {seed} | `{model_dir}` | {timing.get('steps', '')} | {state} |")
    lines += ["", "Wall times are as measured while the run trained, often beside other work on the same cores: they "
              "say what a run took, not how fast training is (docs/benchmarks.md has the speed figures).",
              "", "## Figures", "", f"![test L2 per epoch]({os.path.basename(figure_paths['test_l2'])})", "",
              "Log test relative L2 error of the waveforms (test crops, waveform protocol) after every epoch, each "
              "variant's lowest finished seed (paper Figs. 4/5).", ""]
    if "discriminator" in figure_paths:
        lines += [f"![discriminator outputs]({os.path.basename(figure_paths['discriminator'])})", "",
                  "Each component's autoencoder output on the test mixtures, fed to the *other* components' "
                  "discriminators: probability of 'real' per test crop, CASS vs CASS with cross training, lowest "
                  "finished seed (paper Fig. 6); dotted: the same discriminator on the true component.", ""]
    lines += [f"Per-run scores: `<model_dir>/{SCORES}`; statistics: `summary.json` beside this page.", ""]
    return "\n".join(lines)


def budgets_side_by_side(summary: dict[str, Any], name: str, budget: str, components: Sequence[str]) -> list[str]:
    """The "Budgets side by side" section of task `name`'s page under `budget`: per protocol, component and variant,
    the L2 mean ± std over seeds (their number) of summary.json's `cpu` entry (`name`) beside this budget's
    (`name-budget`); no lines for the cpu budget itself or while summary.json lacks either entry."""
    key = f"{name}-{budget}"
    if budget == "cpu" or name not in summary or key not in summary:
        return []
    lines = ["## Budgets side by side", "",
             f"Relative L2 error, mean ± sample standard deviation over seeds (their number), under the `cpu` budget "
             f"(`summary.json` entry `{name}`, page {name}.md) and under `{budget}` (entry `{key}`, this page).", "",
             f"| protocol | component | model | `cpu` | `{budget}` |", "|---|---|---|---|---|"]
    for protocol in PROTOCOL_SCOPES:
        for component in components:
            for variant in VARIANTS:
                cells = [_l2_cell(summary[k].get(protocol, {}).get(variant, {}).get(component)) for k in (name, key)]
                lines.append(f"| {protocol} | {component} | {LABELS[variant]} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _l2_cell(s: dict[str, Any] | None) -> str:
    if not s:
        return ""
    spread = f" ± {s['l2_std']:.4f}" if s["seeds"] > 1 else ""
    return f"{s['l2_mean']:.4f}{spread} ({s['seeds']})"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
