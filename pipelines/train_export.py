"""Train -> evaluate -> bless -> push, TFX-style, for one config: how `saved_models/<name>/<version>` are made.

    python pipelines/train_export.py --config configs/ecg.json [--set dotted.path=value ...] [--train_steps N]
                                     [--work_dir runs/pipeline/ecg] [--push_dir saved_models/ecg] [--version N]

Steps (TFX's components, by convention; TFX itself cannot be installed here, see cass_tf/tfx.py):
    Trainer    cass_tf.tfx.run_fn: trains in <work_dir>/Trainer/model_run (resumes), writes the SavedModel to
               <work_dir>/Trainer/serving_model
    Evaluator  scores that SavedModel (its `features` signature, i.e. exactly what is served) on the config's
               fixed test crops: relative L2 error per component after the inverse STFT (eq. 6); the currently
               pushed version (highest in --push_dir) is scored the same way when it has the same STFT, patch,
               scaling, rate and components. Blessed only if every component is below output.bless_threshold and
               not worse than the pushed version. Writes <work_dir>/Evaluator/{evaluation.json, BLESSED|NOT_BLESSED}.
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


def saved_model_l2(version_dir: str, data: Any, config: Config) -> dict[str, float]:
    """{component: mean test-crop relative L2} of an exported SavedModel, through its features signature."""
    import tensorflow as tf

    from cass_tf.evaluate import crop_errors

    asset = contract.read_asset(version_dir)
    loaded = tf.saved_model.load(contract.check_version_dir(version_dir))  # must outlive the calls (its variables)
    signature = loaded.signatures[asset.features_signature]

    def networks(features: tf.Tensor) -> dict[str, tf.Tensor]:
        return signature(**{asset.features_input: features})

    return {c: m["l2"] for c, m in crop_errors(networks, data, config).means().items()}


def comparable(version_dir: str, config: Config) -> bool:
    """Whether a pushed version takes the same inputs and gives the same outputs as `config`'s models."""
    from cass_tf.evaluate import check_compatible

    try:
        check_compatible(contract.read_asset(version_dir).config, config, version_dir)
    except ConfigError:
        return False
    return True


def run(config_path: str, overrides: Sequence[str], work_dir: str | None, push_dir: str | None,
        train_steps: int | None, version: int | None) -> dict[str, Any]:
    """The whole pipeline; returns what happened (also written to <work_dir>/Evaluator/evaluation.json)."""
    from cass_tf.data.pipeline import make_datasets
    from cass_tf.tfx import FnArgs, bless, push, run_fn, trainer_config

    config = load_config(config_path, overrides)
    work_dir = work_dir or os.path.join("runs", "pipeline", config.name)
    push_dir = push_dir or config.output.export_dir
    fn_args = FnArgs(serving_model_dir=os.path.join(work_dir, "Trainer", "serving_model"),
                     model_run_dir=os.path.join(work_dir, "Trainer", "model_run"),
                     custom_config={"config": config_path, "overrides": list(overrides)}, train_steps=train_steps)
    print(f"[Trainer] {fn_args.model_run_dir}")
    run_fn(fn_args)
    config = trainer_config(fn_args)
    print("[Evaluator] scoring the exported model on the test crops")
    data = make_datasets(config)
    candidate = saved_model_l2(fn_args.serving_model_dir, data, config)
    pushed = contract.versions(push_dir)
    current_dir = os.path.join(push_dir, str(pushed[-1])) if pushed else None
    current = None
    if current_dir and comparable(current_dir, config):
        current = saved_model_l2(current_dir, data, config)
    blessed, reasons = bless(candidate, config.output.bless_threshold, current, os.path.join(work_dir, "Evaluator"))
    result = {"candidate_l2": candidate, "threshold": config.output.bless_threshold, "pushed_version": current_dir,
              "pushed_l2": current, "blessed": blessed, "reasons": reasons, "pushed_to": None}
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


def _run(args: argparse.Namespace) -> None:
    cli.show_device()
    result = run(args.config, args.set, args.work_dir, args.push_dir, args.train_steps, args.version)
    scores = ", ".join(f"{c}={v:.4f}" for c, v in result["candidate_l2"].items())
    print(f"[Evaluator] test L2: {scores} (threshold {result['threshold']})")
    if result["pushed_l2"]:
        print(f"[Evaluator] pushed {result['pushed_version']}: " +
              ", ".join(f"{c}={v:.4f}" for c, v in result["pushed_l2"].items()))
    if not result["blessed"]:
        print("[Evaluator] NOT_BLESSED: " + "; ".join(result["reasons"]))
    elif result["pushed_to"]:
        print(f"[Pusher] pushed {result['pushed_to']}")
    else:
        print("[Pusher] blessed, but that version already exists: nothing pushed")


if __name__ == "__main__":
    sys.exit(main())
