"""Owns the TFX conventions without TFX: the Trainer's `run_fn`, the Evaluator's blessing, the Pusher's copy.

TFX 1.21 cannot be installed here (ml-metadata ships only manylinux_2_39 wheels), so this module follows its
contracts instead, and `run_fn` can be named as a TFX Trainer's `module_file` function where TFX is available:

- Trainer: `run_fn(fn_args)` reads `fn_args.custom_config` ({"config": path, "overrides": [...]}) and
  `fn_args.train_steps`, trains into `fn_args.model_run_dir` (checkpoints, logs) and writes the serving
  SavedModel to `fn_args.serving_model_dir`.
- Evaluator: `bless()` writes an empty `BLESSED` or `NOT_BLESSED` file into its output directory.
- Pusher: `push()` copies a SavedModel into `<push_dir>/<integer version>/` through a hidden temporary renamed in
  one step (cass_tf.atomic), so a model server polling the base directory never loads a half-copied version; an
  existing version is never replaced (published versions are immutable). The blessing record the push rests on
  (`cass_tf.blessing`) travels in the version's assets/.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from typing import Any, Mapping, Sequence

from cass_tf import atomic, contract
from cass_tf.config import Config, load_config
from cass_tf.exporting import save, trained_model, write_models_config
from cass_tf.metrics import event_score_names, lower_is_better
from cass_tf.training import train

BLESSED, NOT_BLESSED = "BLESSED", "NOT_BLESSED"


@dataclasses.dataclass
class FnArgs:
    """The fields of TFX's `FnArgs` that `run_fn` reads."""

    serving_model_dir: str
    model_run_dir: str
    custom_config: Mapping[str, Any]
    train_steps: int | None = None
    eval_steps: int | None = None


def trainer_config(fn_args: Any) -> Config:
    """The cass_tf config a TFX Trainer asks for: custom_config's file and overrides, train_steps, model_run_dir."""
    custom = dict(fn_args.custom_config or {})
    if "config" not in custom:
        raise ValueError("custom_config must name a cass_tf config: {'config': 'configs/ecg.json', 'overrides': [...]}")
    overrides = list(custom.get("overrides", [])) + [f"output.model_dir={fn_args.model_run_dir}"]
    config = load_config(custom["config"], overrides)
    if fn_args.train_steps:
        epochs = math.ceil(fn_args.train_steps / config.train.steps_per_epoch)
        config = config.replace([f"train.epochs={epochs}"])
    return config


def run_fn(fn_args: Any) -> None:
    """TFX Trainer entry point: trains (resuming if possible) and writes the SavedModel to serving_model_dir
    (replacing the previous run's)."""
    config = trainer_config(fn_args)
    train(config)
    model = trained_model(config.output.model_dir)
    shutil.rmtree(fn_args.serving_model_dir, ignore_errors=True)
    with atomic.directory(fn_args.serving_model_dir) as staging:
        save(model, staging)


def bless(candidate: Mapping[str, Mapping[str, float]], bounds: Mapping[str, float],
          current: Mapping[str, Mapping[str, float]] | None, out_dir: str, also: Sequence[str] = ()
          ) -> tuple[bool, list[str]]:
    """Blessed when, for every component and every score in `bounds` ({score: bound}, e.g. {"l2": 0.9,
    "qrs_f1": 0.9}) that applies to it, the candidate's score is on the right side of the bound (below it for
    errors, at least it otherwise: `metrics.lower_is_better`) and not worse than `current`'s (the pushed model),
    where that has it. Fails closed: a bounded score that is missing or non-finite, a bound that applies to no
    component, or no scores at all are NOT_BLESSED.

    `candidate`/`current`: {component: {score: value}}. "l2" applies to every component, an event score to the
    components that have it (`metrics.event_score_names`: QRS scores for maternal/fetal, rate_error for
    heart/respiratory). `also`: reasons found elsewhere that refuse it too (the BIDMC rule of cass_tf.bidmc).
    Writes an empty BLESSED or NOT_BLESSED file into `out_dir` (the latest verdict, removing the other; the
    pipeline's blessing record keeps every verdict); returns (blessed, reasons).
    """
    reasons = [] if candidate else ["no scores: nothing was scored"]
    for score, bound in bounds.items():
        applies = [c for c in candidate if _bounded(c, score)]
        if candidate and not applies:
            reasons.append(f"{score}: bounded, but no component ({', '.join(candidate)}) has that score")
        for component in applies:
            reasons += _verdict(component, score, bound, candidate[component].get(score),
                                (current or {}).get(component, {}).get(score))
    reasons += list(also)
    blessed = not reasons
    atomic.make_dirs(out_dir, "Evaluator output directory")
    for name in (BLESSED, NOT_BLESSED):
        path = os.path.join(out_dir, name)
        if os.path.exists(path):
            os.remove(path)
    atomic.write_text(os.path.join(out_dir, BLESSED if blessed else NOT_BLESSED), "")
    return blessed, reasons


def _bounded(component: str, score: str) -> bool:
    return score == "l2" or score in event_score_names(component)


def _verdict(component: str, score: str, bound: float, value: float | None, pushed: float | None) -> list[str]:
    """Why one bounded score refuses the candidate (empty: it does not)."""
    if value is None:
        return [f"{component}: {score} missing (a bounded score must be measured)"]
    if not math.isfinite(value):
        return [f"{component}: {score} is {value} (a bounded score must be finite)"]
    lower = lower_is_better(score)
    reasons = []
    if not (value < bound if lower else value >= bound):
        reasons.append(f"{component}: {score} {value:.4g} {'>=' if lower else '<'} threshold {bound:.4g}")
    if pushed is not None and (value > pushed if lower else value < pushed):
        reasons.append(f"{component}: {score} {value:.4g} worse than the pushed model's {pushed:.4g}")
    return reasons


def push(saved_model_dir: str, push_dir: str, version: int | None = None, record: str | None = None) -> str | None:
    """Copies a SavedModel to `<push_dir>/<version>/` (next free by default), appearing in one rename; with
    `record` (the run's blessing record, `cass_tf.blessing`), a copy of it travels in the version's assets/.

    Returns the new version directory, or None when that version already exists (nothing is touched)."""
    if not os.path.exists(os.path.join(saved_model_dir, "saved_model.pb")):
        raise FileNotFoundError(f"{saved_model_dir}: no saved_model.pb to push")
    atomic.make_dirs(push_dir, "push_dir")
    existing = contract.versions(push_dir)
    version = version if version is not None else (existing[-1] + 1 if existing else 1)
    target = os.path.join(push_dir, str(version))
    try:
        with atomic.directory(target) as staging:
            shutil.copytree(saved_model_dir, staging, dirs_exist_ok=True)
            if record:
                os.makedirs(os.path.join(staging, "assets"), exist_ok=True)
                shutil.copyfile(record, os.path.join(staging, "assets", os.path.basename(record)))
    except FileExistsError:
        return None
    write_models_config(push_dir)
    return target
