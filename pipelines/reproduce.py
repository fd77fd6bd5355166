"""Reproduces the paper's Tables 1-3 and Figures 4-6 for one task: baseline vs CASS vs CASS with cross training.

    python pipelines/reproduce.py --config configs/ppg.json [--budget cpu|paper] [--set dotted.path=value ...]
                                  [--out_dir runs/reproduce] [--results docs/results]

For the config's task (bach10, ecg or ppg) this trains the three variants of the paper, `loss.mode` = baseline,
cass and cass_cross, with one config otherwise: the same data, seed, model, optimiser settings and step budget
(`--budget` overrides, then `--set` overrides, applied to all three alike; nothing is tuned per variant). Each
variant trains in `<out_dir>/<task>-<budget>/<variant>/`; rerunning the same command resumes unfinished variants
and skips finished ones. Then every variant is evaluated (cass_tf.evaluate: test crops and whole test signals) and
the results go to:

    <results>/<task>.md                the three-row tables per component, the paper's values beside ours,
                                       the command, the budget, the wall times
    <results>/<task>_test_l2.png       Figs. 4/5: log test relative L2 (waveform) per epoch, per variant
    <results>/<task>_discriminator.png Fig. 6: each component's AE outputs fed to the other components'
                                       discriminators (probability "real" per test crop), cass vs cass_cross
    <out_dir>/<task>-<budget>/evaluation.json, evaluation.md   the full scores (means, medians, per example)

Budgets (`BUDGETS`):
    paper  the paper's settings: 500 epochs, batch 50, learning rates 1e-5 (AEs) / 1e-6 (discriminators),
           ResNet-9 width 32 (a GPU job).
    cpu    a scaled-down run that finishes well under an hour per task (all three variants) on 2 CPU cores:
           narrower networks, fewer steps, smaller batches, and learning rates 1e-3 / 1e-4 (same 10:1 ratio as
           the paper) so that so few steps get somewhere. Its numbers are not the paper's setting.
    tiny   for the test suite only: seconds per variant, meaningless numbers.
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

VARIANTS = ("baseline", "cass", "cass_cross")
LABELS = {"baseline": "Baseline AE", "cass": "CASS", "cass_cross": "CASS with Cross Training"}

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
    """The overrides a budget applies to a task (data source), common ones first."""
    if budget not in BUDGETS:
        raise ConfigError(f"--budget: unknown budget {budget!r} (choose from {sorted(BUDGETS)})")
    return [*BUDGETS[budget].get("common", []), *BUDGETS[budget].get(source, [])]


def variant_config(config: Config, variant: str, root: str) -> Config:
    """`config` with loss.mode = variant, training in `<root>/<variant>`."""
    return config.replace([f"loss.mode={variant}", f"output.model_dir={os.path.join(root, variant)}"])


def train_variant(config: Config, label: str) -> float:
    """Trains (or resumes, or skips if finished) one variant; returns the wall time accumulated over all runs."""
    from cass_tf.train import train

    model_dir = config.output.model_dir
    timing_path = os.path.join(model_dir, "wall_time.json")
    before = _read_json(timing_path).get("train_seconds", 0.0)
    epochs = config.train.epochs

    def progress(row: dict[str, float]) -> None:
        errors = "  ".join(f"{k.split('/', 1)[1]}={v:.4g}" for k, v in row.items() if k.startswith(WAVEFORM_L2))
        print(f"[{label}] epoch {int(row['epoch'])}/{epochs}  test L2 {errors}  ({row['seconds']:.1f} s)", flush=True)

    started = time.time()
    result = train(config, verbose=False, on_epoch=progress)
    total = before + time.time() - started
    _write_json(timing_path, {"train_seconds": total, "epochs": result.epoch, "steps": result.step})
    print(f"[{label}] done: {result.epoch} epochs, {result.step} steps, {total:.0f} s of training wall time",
          flush=True)
    return total


def reproduce(config: Config, budget: str, out_dir: str, results_dir: str, command: str,
              overrides: Sequence[str]) -> dict[str, Any]:
    """Trains and evaluates the three variants and writes the report and figures; returns the evaluation."""
    from cass_tf import evaluate, plots
    from cass_tf.data.pipeline import make_datasets
    from cass_tf.models.cass import restore

    task = config.name
    root = os.path.join(out_dir, f"{task}-{budget}")
    configs = {v: variant_config(config, v, root) for v in VARIANTS}
    times = {}
    for variant in VARIANTS:
        print(f"== {task}: training {variant} in {configs[variant].output.model_dir}", flush=True)
        times[variant] = train_variant(configs[variant], f"{task} {variant}")

    print(f"== {task}: evaluating", flush=True)
    data = make_datasets(config)
    results, discriminators, histories = {}, {}, {}
    for variant in VARIANTS:
        model_dir = configs[variant].output.model_dir
        started = time.time()
        model = restore(model_dir)
        results[variant] = evaluate.evaluate_run(model_dir, configs[variant], data, model=model)
        if variant != "baseline":
            discriminators[variant] = evaluate.discriminator_outputs(model, data)
        histories[variant] = RunDir(model_dir).read_history()
        print(f"[{task} {variant}] evaluated in {time.time() - started:.0f} s", flush=True)
    oracle = evaluate.oracle_errors(data, config)
    evaluate.write_outputs(results, config.components, root, config, oracle)

    atomic.make_dirs(results_dir, "--results")
    figures = {
        "test_l2": plots.test_l2_curves(histories, config.components, os.path.join(results_dir, f"{task}_test_l2.png")),
        "discriminator": plots.discriminator_outputs(discriminators,
                                                     os.path.join(results_dir, f"{task}_discriminator.png")),
    }
    report = results_markdown(config, budget, results, oracle, times, command, overrides, root, figures)
    path = atomic.write_text(os.path.join(results_dir, f"{task}.md"), report)
    print(f"== {task}: wrote {path}, {figures['test_l2']}, {figures['discriminator']}", flush=True)
    return results


def results_markdown(config: Config, budget: str, results: dict[str, Any], oracle: dict[str, Any],
                     times: dict[str, float], command: str, overrides: Sequence[str], root: str,
                     figures: dict[str, str]) -> str:
    """The results page: tables (ours beside the paper's), command, budget, wall times, figures."""
    from cass_tf.evaluate import NOTES, ORACLE_LABEL, ORACLE_NOTE, table

    source = config.data.source
    lines = [
        f"# Reproduction: {config.name} (budget `{budget}`)",
        "",
        "Baseline AE vs CASS vs CASS with cross adversarial training, trained with identical data, seed, model "
        "and step budget (only `loss.mode` differs). Relative errors are eq. 6 of the paper, "
        "||x̂ - x||_p / ||x||_p (lower is better); SI-SDR in dB (higher is better). The `paper` columns are "
        "Tables 1-3 of the paper, for reference only"
        + ("" if budget == "paper" else f"; this run used the `{budget}` budget, far smaller than the paper's, "
           "so its numbers are not expected to match them") + ".",
        "",
        "Command:",
        "",
        f"    {command}",
        "",
        f"Budget `{budget}` overrides (applied to all three variants): "
        + (", ".join(f"`{o}`" for o in overrides) if overrides else "none"),
        "",
        "| variant | model_dir | epochs | steps | training wall time |",
        "|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        model_dir = os.path.join(root, variant)
        timing = _read_json(os.path.join(model_dir, "wall_time.json"))
        lines.append(f"| {LABELS[variant]} | `{model_dir}` | {timing.get('epochs', '')} | {timing.get('steps', '')} "
                     f"| {_duration(times[variant])} |")
    lines += ["", f"Training config: {config.train.epochs} epochs x {config.train.steps_per_epoch} steps, batch "
              f"{config.train.batch_size}, learning rates {config.train.ae_learning_rate:g} (AEs) / "
              f"{config.train.d_learning_rate:g} (discriminators), ResNet-9 width {config.model.width}, patch "
              f"{config.patch.frequency_bins}x{config.patch.frames}, {config.data.sample_rate} Hz, n_fft "
              f"{config.stft.n_fft}, hop {config.stft.hop}.", ""]
    lines += ordering_section(config, results) + [""]
    sections = (("crops", "Test crops (the paper's setting)"), ("signals", "Whole test signals"),
                ("crops_component_phase", "Diagnostic: test crops with the true component phase"))
    for scope, title in sections:
        lines += [f"## {title}", "", f"Values: {NOTES[scope]}.", ""]
        for name in config.components:
            rows = {LABELS[v]: {m: results[v][scope]["summary"][name][m]["mean"] for m in TABLE_METRICS}
                    for v in VARIANTS}
            if scope in oracle:
                rows[ORACLE_LABEL] = {m: oracle[scope]["summary"][name][m]["mean"] for m in TABLE_METRICS}
            paper = {LABELS[v]: PAPER.get(source, {}).get(name, {}).get(v, {}) for v in VARIANTS}
            lines += [f"**{name}**", "", table(rows, TABLE_METRICS, paper if scope != "signals" else None), ""]
        if scope in oracle:
            lines += [f"`{ORACLE_LABEL}`: {ORACLE_NOTE}.", ""]
    lines += [
        "## Figures",
        "",
        f"![test L2 per epoch]({os.path.basename(figures['test_l2'])})",
        "",
        "Log test relative L2 error of the waveforms (test crops, as above) after every epoch (paper Figs. 4/5).",
        "",
        f"![discriminator outputs]({os.path.basename(figures['discriminator'])})",
        "",
        "Each component's autoencoder output on the test mixtures, fed to the *other* components' discriminators: "
        "probability of 'real' per test crop, CASS vs CASS with cross training (paper Fig. 6); dotted: the same "
        "discriminator on the true component.",
        "",
        f"Full scores (means, medians, per example): `{os.path.join(root, 'evaluation.json')}`.",
        "",
    ]
    return "\n".join(lines)


def ordering_section(config: Config, results: dict[str, Any]) -> list[str]:
    """Plain sentences: does the paper's ordering of the three variants hold here (mean L2 of the test crops and of
    the whole test signals)? The paper's claims: the baseline is worst; and per component, which of CASS and CASS
    with cross training is better (its Tables 1-3)."""
    paper = PAPER.get(config.data.source, {})
    lines = ["## Does the paper's ordering hold at this budget?", "",
             "Computed from the mean L2 errors below (crops; whole signals in brackets); lower is better.", ""]
    for name in config.components:
        for scope in ("crops", "signals"):
            l2 = {v: results[v][scope]["summary"][name]["l2"]["mean"] for v in VARIANTS}
            worst = max(VARIANTS, key=l2.get)
            cross_better = l2["cass_cross"] < l2["cass"]
            if scope == "crops":
                crops, crops_worst, crops_cross = l2, worst, cross_better
        values = ", ".join(f"{LABELS[v]} {crops[v]:.3f} [{l2[v]:.3f}]" for v in VARIANTS)
        claims = [f"baseline worst: {_verdict(crops_worst == 'baseline', worst == 'baseline')}"]
        if name in paper:
            paper_cross = paper[name]["cass_cross"]["l2"] < paper[name]["cass"]["l2"]
            which = "cross training better than plain CASS" if paper_cross else "plain CASS better than cross training"
            claims.append(f"{which} (as in the paper): "
                          f"{_verdict(crops_cross == paper_cross, cross_better == paper_cross)}")
        lines.append(f"- **{name}** ({values}): " + "; ".join(claims) + ".")
    return lines


def _verdict(on_crops: bool, on_signals: bool) -> str:
    if on_crops and on_signals:
        return "holds"
    if not on_crops and not on_signals:
        return "does not hold"
    return "holds on the " + ("crops" if on_crops else "whole signals") + " only"


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (cass_tf.cli's conventions: quiet, one `error:` line, exit 2 on usage errors, --verbose)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = cli.Command("reproduce", __doc__.split("\n\n")[0], _arguments, lambda args: _run(args, argv))
    return cli.run_command(command, argv, prog=PROG)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="configs/<task>.json")
    parser.add_argument("--budget", default="cpu", choices=sorted(BUDGETS),
                        help="cpu (default), paper, or tiny (tests only)")
    parser.add_argument("--set", action="append", default=[], help="extra override for all variants: dotted.path=json")
    parser.add_argument("--out_dir", default="runs/reproduce", help="where the three runs train")
    parser.add_argument("--results", default="docs/results", help="where <task>.md and the figures go")


def _run(args: argparse.Namespace, argv: Sequence[str]) -> None:
    source = load_config(args.config).data.source
    overrides = budget_overrides(args.budget, source)
    config = load_config(args.config, overrides + args.set)
    cli.show_device()
    reproduce(config, args.budget, args.out_dir, args.results, f"{PROG} {shlex.join(argv)}", overrides + args.set)


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
