"""Train -> evaluate -> bless -> push, TFX-style, for one config: how `saved_models/<name>/<version>` are made.

    python pipelines/train_export.py --config configs/ecg.json [--set dotted.path=value ...] [--train_steps N]
                                     [--work_dir runs/pipeline/ecg] [--push_dir saved_models/ecg] [--version N]
                                     [--fresh N]

Steps (TFX's components, by convention; TFX itself cannot be installed here, see cass_tf/tfx.py):
    Trainer    cass_tf.tfx.run_fn: trains in <work_dir>/Trainer/model_run (resumes), writes the SavedModel to
               <work_dir>/Trainer/serving_model. SIGTERM/SIGINT while training: a checkpoint at that step, one
               line saying how to resume, exit 143/130 (cass_tf.train); the same command again goes on from there
    Blessing   before training, the run's bounds (`output.bless_threshold`, `bless_qrs_f1`, `bless_rate_error`)
               and blessing set (what the Evaluator will score) are frozen in the run's append-only blessing record
               <work_dir>/Trainer/model_run/blessing_record.jsonl (cass_tf.blessing), with a hash of the config and
               of the blessing set; a rerun in the same --work_dir that changes either is refused.
    Evaluator  scores that SavedModel through its serving_default signature (waveform in, waveform out: exactly
               what is served) on whole recordings: `--fresh N` new synthetic recordings drawn with another data
               seed (ECG, PPG: a large sample costs nothing), else the validation split when the config holds one
               out (`data.validation_recordings`), else the test split. Per component: relative L2 error (eq. 6)
               and the event scores (QRS F1 for ECG, rate error for PPG; `cass_tf.evaluate.recording_scores`).
               The currently pushed version (highest in --push_dir) is scored the same way on the same recordings
               when it separates the same components at the same rate. Blessed only if every bounded score is
               present, finite, on the right side of its bound and not worse than the pushed version's (fails
               closed: `cass_tf.tfx.bless`). A PPG model (heart, respiratory) must also pass cass_tf.bidmc's rule
               on real BIDMC 01-26 (`--real_data`, default ../shared/data): its breathing and pulse errors under
               every rate estimator no worse than the band-passed PLETH's and the pushed version's; without BIDMC
               it is not pushed. Those scores go into the record too (BIDMC chooses between models, never trains). Every evaluation and verdict is appended to the blessing record (never
               overwritten); <work_dir>/Evaluator/BLESSED|NOT_BLESSED is the latest verdict (TFX's marker).
    Pusher     if blessed: copies the SavedModel to <push_dir>/<next version> (saved_model.pb last) with the
               blessing record (every evaluation of the run so far) in its assets/, and appends the push, naming
               the evaluation it rests on; skips if that version exists. Published versions are never rewritten.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence

if __package__ in (None, ""):  # run as a script from a checkout: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cass_tf import blessing, cli, contract  # noqa: E402
from cass_tf.config import Config, ConfigError, load_config  # noqa: E402
from cass_tf.data import fresh_config  # noqa: E402
from cass_tf.rundir import RunDir  # noqa: E402

REAL_DATA = "../shared/data"  # the folder holding BIDMC/ (the PPG push rule)


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


def blessing_set(config: Config, fresh: int = 0) -> tuple[Config, dict[str, Any]]:
    """The config that draws the blessing recordings and what it draws, as frozen in the blessing record: with
    `fresh` > 0 that many new synthetic recordings with data seed `seed + 1` (independent of every training,
    validation and test recording); else the config's validation split, or its test split when it holds none out."""
    check_fresh(config, fresh)
    if not fresh:
        split = "validation" if config.data.validation_recordings else "test"
        return config, {"split": split, "data_seed": config.seed, "data": config.to_dict()["data"]}
    seed = config.seed + 1
    drawn = fresh_config(config, seed, fresh)
    return drawn, {"split": "fresh", "count": fresh, "data_seed": seed, "data": drawn.to_dict()["data"]}


def evaluation_recordings(config: Config, fresh: int = 0) -> tuple[str, list[Any]]:
    """What the Evaluator scores (`blessing_set`), described, and its recordings (as recorded: a cancellation
    model's Separator cancels them itself)."""
    from cass_tf.data import as_recorded, load_recordings
    from cass_tf.data.pipeline import make_datasets

    drawn, frozen = blessing_set(config, fresh)
    if not fresh:
        recordings = make_datasets(as_recorded(config), train=False).recordings["test"]
        return f"the {len(recordings)} {frozen['split']} recordings", recordings
    recordings = load_recordings(as_recorded(drawn))["test"]
    leads = "" if len(recordings) == fresh else f" x {len(recordings) // fresh} leads, each lead a recording"
    return f"{fresh} fresh recordings{leads} (data seed {frozen['data_seed']})", recordings


def freeze(config: Config, fresh: int) -> str:
    """Freezes the run's bounds and blessing set in its blessing record before training (a rerun that changes
    them is refused, cass_tf.blessing.BlessingError); returns the record's path."""
    run_dir = RunDir(config.output.model_dir)
    if os.path.exists(run_dir.config) and not os.path.exists(run_dir.blessing_record):
        raise blessing.BlessingError(f"{run_dir.path} holds a run without a blessing record (its bounds were not "
                                     "frozen when it started); choose another --work_dir")
    run_dir.create()
    blessing.freeze(run_dir.blessing_record, config, blessing_set(config, fresh)[1])
    return run_dir.blessing_record


def real_check(config: Config, candidate_dir: str, pushed_dir: str | None, real_data: str
               ) -> tuple[dict[str, Any] | None, list[str]]:
    """cass_tf.bidmc.check for a PPG model (heart and respiratory components); (None, []) for any other."""
    from cass_tf import bidmc

    components = {component for component, _ in bidmc.QUANTITIES.values()}
    if not components <= set(config.components):
        return None, []
    print(f"[Evaluator] scoring the candidate{' and ' + pushed_dir if pushed_dir else ''} on BIDMC under {real_data}")
    return bidmc.check(real_data, candidate_dir, pushed_dir)


def run(config_path: str, overrides: Sequence[str], work_dir: str | None, push_dir: str | None,
        train_steps: int | None, version: int | None, fresh: int = 0, real_data: str = REAL_DATA) -> dict[str, Any]:
    """The whole pipeline; returns what happened (the evaluation also appended to the run's blessing record)."""
    from cass_tf.tfx import FnArgs, bless, push, run_fn, trainer_config

    config = load_config(config_path, overrides)
    check_fresh(config, fresh)
    work_dir = work_dir or os.path.join("runs", "pipeline", config.name)
    push_dir = push_dir or config.output.export_dir
    fn_args = FnArgs(serving_model_dir=os.path.join(work_dir, "Trainer", "serving_model"),
                     model_run_dir=os.path.join(work_dir, "Trainer", "model_run"),
                     custom_config={"config": config_path, "overrides": list(overrides)}, train_steps=train_steps)
    config = trainer_config(fn_args)
    record = freeze(config, fresh)
    print(f"[Trainer] {fn_args.model_run_dir} (blessing record: {record})")
    run_fn(fn_args)
    split, recordings = evaluation_recordings(config, fresh)
    scored = blessing.recordings_sha256([r.mixture for r in recordings])
    earlier = blessing.evaluations(record)
    if earlier and earlier[0]["recordings_sha256"] != scored:
        raise blessing.BlessingError(f"{record}: the frozen blessing set no longer draws the recordings this run "
                                     "scored first (the data generator changed); choose another --work_dir")
    print(f"[Evaluator] scoring the exported model on {split}")
    candidate = saved_model_scores(fn_args.serving_model_dir, recordings)
    pushed = contract.versions(push_dir)
    current_dir = os.path.join(push_dir, str(pushed[-1])) if pushed else None
    current = None
    if current_dir and comparable(current_dir, config):
        current = saved_model_scores(current_dir, recordings)
    bounds = config.output.bless_bounds()
    real, real_reasons = real_check(config, fn_args.serving_model_dir, current_dir if current else None, real_data)
    blessed, reasons = bless(candidate, bounds, current, os.path.join(work_dir, "Evaluator"), also=real_reasons)
    last = (RunDir(config.output.model_dir).read_history() or [{}])[-1]
    result = {"model": {"epoch": last.get("epoch"), "step": last.get("step")}, "recordings": split,
              "recordings_sha256": scored, "candidate": candidate, "bounds": bounds, "pushed_version": current_dir,
              "pushed": current, "bidmc": real, "blessed": blessed, "reasons": reasons}
    line = blessing.append(record, blessing.EVALUATION, result)
    result.update({"record": record, "evaluation": line, "pushed_to": None})
    if blessed:
        result["pushed_to"] = push(fn_args.serving_model_dir, push_dir, version, record)
        blessing.append(record, blessing.PUSH, {"version_dir": result["pushed_to"], "rests_on": line})
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
    parser.add_argument("--real_data", default=REAL_DATA,
                        help=f"folder holding BIDMC/, for the PPG push rule (default {REAL_DATA})")
    parser.add_argument("--fresh", type=int, default=0,
                        help="score N fresh synthetic recordings instead of the validation split (default 0: the split)")


def _run(args: argparse.Namespace) -> None:
    cli.show_device(load_config(args.config, args.set).train.precision)
    result = run(args.config, args.set, args.work_dir, args.push_dir, args.train_steps, args.version, args.fresh,
                 args.real_data)
    print(f"[Evaluator] {result['recordings']}: {_scores(result['candidate'])} (bounds: {result['bounds']})")
    if result["pushed"]:
        print(f"[Evaluator] pushed {result['pushed_version']}: {_scores(result['pushed'])}")
    for quantity, sources in (result["bidmc"] or {}).get("summary", {}).items():
        print(f"[Evaluator] BIDMC {quantity} MAE, mean of records: " + "; ".join(
            f"{s} " + ", ".join(f"{e}={v['record_mean']:.3f}" for e, v in per.items()) for s, per in sources.items()))
    if not result["blessed"]:
        print("[Evaluator] NOT_BLESSED: " + "; ".join(result["reasons"]))
    elif result["pushed_to"]:
        print(f"[Pusher] pushed {result['pushed_to']} (resting on {result['record']}, line {result['evaluation']})")
    else:
        print("[Pusher] blessed, but that version already exists: nothing pushed")


def _scores(scores: dict[str, dict[str, float]]) -> str:
    return "; ".join(f"{c} " + ", ".join(f"{k}={v:.4g}" for k, v in per.items()) for c, per in scores.items())


if __name__ == "__main__":
    sys.exit(main())
