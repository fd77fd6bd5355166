"""Train -> evaluate -> bless -> push, TFX-style, for one config: how `saved_models/<name>/<version>` are made.

    python pipelines/train_export.py --config configs/ecg.json [--set dotted.path=value ...] [--train_steps N]
                                     [--work_dir runs/pipeline/ecg] [--push_dir saved_models/ecg] [--version N]
                                     [--fresh N]

Steps (TFX's components, by convention; TFX itself cannot be installed here, see cass_tf/tfx.py):
    Trainer    cass_tf.tfx.run_fn: trains in <work_dir>/Trainer/model_run (resumes), writes the SavedModel to
               <work_dir>/Trainer/serving_model. SIGTERM/SIGINT while training: a checkpoint at that step, one
               line saying how to resume, exit 143/130 (cass_tf.train); the same command again goes on from there
    Evaluator  scores that SavedModel through its serving_default signature (waveform in, waveform out: exactly
               what is served) on whole recordings: `--fresh N` new synthetic recordings drawn with another data
               seed (ECG, PPG: a large sample costs nothing), else the validation split when the config holds one
               out (`data.validation_recordings`), else the test split. Per component: relative L2 error (eq. 6)
               and the event scores (QRS F1 for ECG, rate error for PPG; `cass_tf.evaluate.recording_scores`).
               The currently pushed version (highest in --push_dir) is scored the same way on the same recordings
               when it separates the same components at the same rate. Blessed only if every bounded score is on
               the right side of its bound (`output.bless_threshold`, `bless_qrs_f1`, `bless_rate_error`) and not
               worse than the pushed version's. Writes <work_dir>/Evaluator/{evaluation.json, BLESSED|NOT_BLESSED}.
    Pusher     if blessed: copies the SavedModel to <push_dir>/<next version> (saved_model.pb last); skips if
               that version exists.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence

if __package__ in (None, ""):  # run as a script from a checkout: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cass_tf import atomic, cli, contract  # noqa: E402
from cass_tf.config import Config, ConfigError, load_config  # noqa: E402


def saved_model_scores(version_dir: str, recordings: Sequence[Any]) -> dict[str, dict[str, float]]:
    """{component: {score: mean}} of an exported SavedModel on whole recordings, through its serving_default
    signature (exactly what is served, whatever its output kind): relative L2 error and the event scores
    (`cass_tf.evaluate.recording_scores`)."""
    from cass_tf.evaluate import recording_scores
    from cass_tf.separation import Separator

    separator = Separator(version_dir)
    return recording_scores(separator, recordings, separator.components, separator.sample_rate)


def comparable(version_dir: str, config: Config) -> bool:
    """Whether a pushed version separates the same components at the same rate as `config`'s models."""
    pushed = contract.read_asset(version_dir).config
    return (pushed.data.sample_rate, pushed.components) == (config.data.sample_rate, config.components)


def check_fresh(config: Config, fresh: int) -> None:
    """Refuses a --fresh that cannot be drawn (checked before training, so a long run never ends on it)."""
    if fresh < 0:
        raise ConfigError(f"--fresh: must be >= 0, got {fresh}")
    if fresh and config.data.source == "bach10":
        raise ConfigError("--fresh: Bach10 is a fixed dataset, there are no fresh recordings to draw")


def evaluation_recordings(config: Config, fresh: int = 0) -> tuple[str, list[Any]]:
    """What the Evaluator scores, described, and its recordings: with `fresh` > 0 that many new synthetic
    recordings drawn with data seed `seed + 1` (independent of every training, validation and test recording);
    else the config's validation split, or its test split when it holds none out."""
    from cass_tf.data import load_recordings
    from cass_tf.data.pipeline import make_datasets

    check_fresh(config, fresh)
    if not fresh:
        split = "validation" if config.data.validation_recordings else "test"
        recordings = make_datasets(config, train=False).recordings["test"]
        return f"the {len(recordings)} {split} recordings", recordings
    source = config.data.source
    seed = config.seed + 1
    drawn = config.replace([f"seed={seed}", "data.validation_recordings=0", f"data.{source}.train_recordings=1",
                            f"data.{source}.test_recordings={fresh}"])
    return f"{fresh} fresh recordings (data seed {seed})", load_recordings(drawn)["test"]


def run(config_path: str, overrides: Sequence[str], work_dir: str | None, push_dir: str | None,
        train_steps: int | None, version: int | None, fresh: int = 0) -> dict[str, Any]:
    """The whole pipeline; returns what happened (also written to <work_dir>/Evaluator/evaluation.json)."""
    from cass_tf.tfx import FnArgs, bless, push, run_fn, trainer_config

    config = load_config(config_path, overrides)
    check_fresh(config, fresh)
    work_dir = work_dir or os.path.join("runs", "pipeline", config.name)
    push_dir = push_dir or config.output.export_dir
    fn_args = FnArgs(serving_model_dir=os.path.join(work_dir, "Trainer", "serving_model"),
                     model_run_dir=os.path.join(work_dir, "Trainer", "model_run"),
                     custom_config={"config": config_path, "overrides": list(overrides)}, train_steps=train_steps)
    print(f"[Trainer] {fn_args.model_run_dir}")
    run_fn(fn_args)
    config = trainer_config(fn_args)
    split, recordings = evaluation_recordings(config, fresh)
    print(f"[Evaluator] scoring the exported model on {split}")
    candidate = saved_model_scores(fn_args.serving_model_dir, recordings)
    pushed = contract.versions(push_dir)
    current_dir = os.path.join(push_dir, str(pushed[-1])) if pushed else None
    current = None
    if current_dir and comparable(current_dir, config):
        current = saved_model_scores(current_dir, recordings)
    bounds = config.output.bless_bounds()
    blessed, reasons = bless(candidate, bounds, current, os.path.join(work_dir, "Evaluator"))
    result = {"split": split, "candidate": candidate, "bounds": bounds, "pushed_version": current_dir,
              "pushed": current, "blessed": blessed, "reasons": reasons, "pushed_to": None}
    if blessed:
        result["pushed_to"] = push(fn_args.serving_model_dir, push_dir, version)
    atomic.write_text(os.path.join(work_dir, "Evaluator", "evaluation.json"), json.dumps(result, indent=2))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (cass_tf.cli's conventions: quiet, one `error:` line, exit 2 on usage errors, --verbose)."""
    command = cli.Command("train_export", __doc__.split("\n")[0], _arguments, _run)
    return cli.run_command(command, argv, prog="python pipelines/train_export.py")


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="configs/<task>.json")
    parser.add_argument("--set", action="append", default=[], help="dotted.path=value override (repeatable)")
    parser.add_argument("--work_dir", default=None, help="default: runs/pipeline/<config name>")
    parser.add_argument("--push_dir", default=None, help="TF Serving base directory (default: output.export_dir)")
    parser.add_argument("--train_steps", type=int, default=None, help="total steps (rounded up to whole epochs)")
    parser.add_argument("--version", type=int, default=None, help="version to push (default: the next free one)")
    parser.add_argument("--fresh", type=int, default=0,
                        help="score N fresh synthetic recordings instead of the validation split (default 0: the split)")


def _run(args: argparse.Namespace) -> None:
    cli.show_device()
    result = run(args.config, args.set, args.work_dir, args.push_dir, args.train_steps, args.version, args.fresh)
    print(f"[Evaluator] {result['split']}: {_scores(result['candidate'])} (bounds: {result['bounds']})")
    if result["pushed"]:
        print(f"[Evaluator] pushed {result['pushed_version']}: {_scores(result['pushed'])}")
    if not result["blessed"]:
        print("[Evaluator] NOT_BLESSED: " + "; ".join(result["reasons"]))
    elif result["pushed_to"]:
        print(f"[Pusher] pushed {result['pushed_to']}")
    else:
        print("[Pusher] blessed, but that version already exists: nothing pushed")


def _scores(scores: dict[str, dict[str, float]]) -> str:
    return "; ".join(f"{c} " + ", ".join(f"{k}={v:.4g}" for k, v in per.items()) for c, per in scores.items())


if __name__ == "__main__":
    sys.exit(main())
