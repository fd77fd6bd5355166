"""Owns the float32-vs-bfloat16 quality check: does `train.precision` cost accuracy per step?

    python pipelines/precision.py [--configs configs/ecg.json configs/ppg.json] [--budget cpu] [--seeds 0 1 2]
                                  [--precisions float32 mixed_bfloat16] [--out_dir runs/precision]
                                  [--results docs/results/precision.json] [--set dotted.path=value ...]

Trains every config under `pipelines/reproduce.py`'s budget (its RECIPE and BUDGETS: the same step count whatever the
precision) once per precision and seed (`train.seed`), in `<out_dir>/<name>-<budget>/<precision>/seed<k>/`;
rerunning the same command resumes and skips finished runs. Each finished run is scored once on the whole validation
recordings (`evaluate.signal_errors`: waveform relative L2 per component, the recordings separated in one piece) and
the per-epoch crop L2 of its last epoch; both precisions of a config are compared per component with Welch's test
over the seeds (`reproduce.compare`). Writes every per-seed figure, the wall time and samples/s of each run, and the
verdicts to `--results` (JSON; docs/results/training.md quotes it).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from typing import Any, Sequence

if __package__ in (None, ""):  # run as a script from a checkout: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cass_tf import atomic, cli  # noqa: E402
from cass_tf.config import Config, load_config  # noqa: E402
from cass_tf.rundir import WAVEFORM_L2, RunDir  # noqa: E402
from pipelines.reproduce import budget_overrides, compare, finished, train_variant  # noqa: E402

PROG = "python pipelines/precision.py"


def run_config(config: Config, precision: str, seed: int, root: str) -> Config:
    return config.replace([f"train.precision={precision}", f"train.seed={seed}",
                           f"output.model_dir={os.path.join(root, precision, f'seed{seed}')}"])


def score(config: Config, data) -> dict[str, Any]:
    """Whole-signal waveform L2 per component (mean over the validation recordings), the last epoch's crop L2, the
    training wall time and samples/s of a finished run; cached in its precision_scores.json."""
    from cass_tf import evaluate
    from cass_tf.models.cass import restore

    model_dir = config.output.model_dir
    path = RunDir(model_dir).precision_scores
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    errors = evaluate.signal_errors(restore(model_dir), data, config)
    history = RunDir(model_dir).read_history()
    with open(RunDir(model_dir).wall_time, encoding="utf-8") as f:
        seconds = json.load(f)["train_seconds"]
    train_seconds = sum(row["seconds"] for row in history)
    steps = int(history[-1]["step"])
    result = {"signal_l2": {n: float(errors.scores[n]["l2"][~errors.silent[n]].mean()) for n in config.components},
              "crop_l2": {k[len(WAVEFORM_L2):]: v for k, v in history[-1].items() if k.startswith(WAVEFORM_L2)},
              "steps": steps, "wall_seconds": seconds,
              "samples_per_second": steps * config.train.batch_size / train_seconds}
    atomic.write_text(path, json.dumps(result, indent=1))
    return result


def run(paths: Sequence[str], budget: str, seeds: Sequence[int], precisions: Sequence[str], out_dir: str,
        overrides: Sequence[str]) -> dict[str, Any]:
    """Trains what is missing, scores every run; {config name: {precision: {seed: scores}, "verdicts": ...}}."""
    from cass_tf.data.pipeline import make_datasets

    configs = []
    for path in paths:
        source = load_config(path).data.source
        configs.append(load_config(path, [*budget_overrides(budget, source), *overrides]))
    for seed in seeds:  # seeds outermost: an interrupted run leaves every config and precision with as many seeds
        for config in configs:
            for precision in precisions:
                run = run_config(config, precision, seed, os.path.join(out_dir, f"{config.name}-{budget}"))
                if not finished(run):
                    print(f"== {config.name} {precision} seed {seed} in {run.output.model_dir}", flush=True)
                train_variant(run, f"{config.name} {precision} seed {seed}")
    results: dict[str, Any] = {}
    for config in configs:
        data = make_datasets(config, train=False)
        root = os.path.join(out_dir, f"{config.name}-{budget}")
        per = {p: {str(s): score(run_config(config, p, s, root), data) for s in seeds} for p in precisions}
        verdicts = {}
        for name in config.components:
            values = {p: [per[p][str(s)]["signal_l2"][name] for s in seeds] for p in precisions}
            base, *others = precisions
            verdicts[name] = {p: {"mean": _mean(values[p]), "std": _std(values[p]),
                                  "p_value": _welch(values[p], values[base]),
                                  f"versus {base}": _direction(compare(values[p], values[base]))} for p in others}
            verdicts[name][base] = {"mean": _mean(values[base]), "std": _std(values[base])}
        results[config.name] = {"runs": per, "signal_l2": verdicts}
    return results


def _direction(verdict: str) -> str:
    """`reproduce.compare(x, base)` said as a difference of x from base: lower, higher, or within the spread."""
    return verdict.replace("holds", "lower").replace("contradicted", "higher")


def _welch(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Welch's t-test p-value of a against b (None with fewer than two values on a side)."""
    from scipy import stats

    return float(stats.ttest_ind(a, b, equal_var=False).pvalue) if min(len(a), len(b)) > 1 else None


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _std(values: Sequence[float]) -> float:
    import numpy as np

    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["configs/ecg.json", "configs/ppg.json"])
    parser.add_argument("--budget", default="cpu")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--out_dir", default="runs/precision")
    parser.add_argument("--results", default="docs/results/precision.json")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    args = parser.parse_args(argv)
    cli.quiet_logs()
    cli.show_device()
    results = run(args.configs, args.budget, args.seeds, args.precisions, args.out_dir, args.set)
    results["command"] = f"{PROG} {shlex.join(sys.argv[1:] if argv is None else argv)}"
    atomic.write_text(args.results, json.dumps(results, indent=1))
    for name, result in results.items():
        if name != "command":
            for component, verdict in result["signal_l2"].items():
                print(f"{name} {component}: " + "; ".join(
                    f"{p} {v['mean']:.4f} ± {v['std']:.4f}"
                    + "".join(f", {k}: {v[k]}" for k in v if k.startswith("versus")) for p, v in verdict.items()))
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
