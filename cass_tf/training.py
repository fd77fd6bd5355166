"""Owns training: the distributed step loop, checkpoints, resume, logs and curves (`cass-tf train`).

    cass-tf train --config configs/ecg.json [--set train.epochs=5 ...] [--model_dir runs/x]
    python -m cass_tf.train ...   (the same command; the arguments are cass_tf.cli's)

The loop is our own (`strategy.run(model.train_step)`), not `model.fit`, because Keras 3 `fit` fails under
MultiWorkerMirroredStrategy (keras-team/keras#20585); the same loop serves the default strategy, MirroredStrategy
(several GPUs) and MultiWorkerMirroredStrategy (TF_CONFIG set). What the model directory holds is
`cass_tf.rundir`'s to say. A rerun of the same command resumes from the latest intact checkpoint (a corrupt newer one
is skipped with a warning; `train.keep_checkpoints` are kept); the data position is the step itself (the pipeline's
crops are a function of (seed, step)), so a resume gives the same weights as an uninterrupted run.

While `train()` runs (in the main thread) SIGTERM and SIGINT stop it after the current step: it writes a checkpoint
there (mid-epoch too: `partial_epoch.json` keeps the epoch's loss sums, so its history row comes out the same) and
raises `Interrupted`; the previous handlers are back when train() returns. A second signal stops at once. Under
MultiWorkerMirroredStrategy each step also sums every worker's stop flag, so all workers stop after the same step and
each writes its checkpoint there. The model_dir is locked (`RunDir.lock`) by the training chief for the whole run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from typing import Any, Callable, Iterator

import keras
import numpy as np
import tensorflow as tf

from cass_tf import atomic, plots
from cass_tf.config import Config, ConfigError, completed, flatten, upgrade
from cass_tf.data import pipeline
from cass_tf.exporting import load_model
from cass_tf.models.cass import NON_FINITE_MIXTURE, CASSModel
from cass_tf.models.resnet9 import copy_autoencoder
from cass_tf.precision import CHOICES, policy_scope, resolve
from cass_tf.rundir import EVENT_SCORES, MAGNITUDE_L2, RESUMABLE_FIELDS, SIGNAL_L2, WAVEFORM_L2, RunDir
from cass_tf.scoring import event_scores, scored_recordings, signal_scores, waveform_l2
from cass_tf.spectral import Spectral
from cass_tf.windows import traced


STOP = "stop"  # the distributed step's extra output: how many replicas were asked to stop
EXAMPLE_SECONDS = 10.0  # example.png: how much of the first test recording is drawn (at least one patch)


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, a model_dir trained with another config, no intact checkpoint)."""


class Interrupted(Exception):
    """Training stopped on a signal after writing a checkpoint; `status` is the shell's 128 + signal number."""

    def __init__(self, signum: int, step: int, checkpoint: str, other_worker: bool = False):
        self.signum, self.step, self.checkpoint, self.status = signum, step, checkpoint, 128 + signum
        cause = "another worker was signalled" if other_worker else signal.Signals(signum).name
        super().__init__(f"stopped ({cause}) after step {step}, checkpoint {checkpoint} written; "
                         "run the same command again to resume from it")


class CheckpointWarning(UserWarning):
    """A corrupt checkpoint was skipped on resume."""


@dataclasses.dataclass
class TrainResult:
    model_dir: str
    epoch: int
    step: int
    history: list[dict[str, float]]
    checkpoint: str | None


@dataclasses.dataclass
class _Run:
    """What one training run carries from epoch to epoch."""

    config: Config
    run_dir: RunDir
    chief: bool
    verbose: bool
    model: Any  # CASSModel
    step: Any  # tf.Variable int64
    epoch: Any  # tf.Variable int64
    manager: Any  # tf.train.CheckpointManager
    checkpoint_dir: str
    data: Any  # Datasets without a training pipeline: the test crops and recordings
    batches: Any  # iterator over distributed training batches
    distributed_step: Callable
    test_step: Callable
    history: list[dict[str, float]]
    writer: Any  # tf.summary writer (a no-op one off the chief)
    signals: list[int]  # the stop signals received (`_stop_on_signals`)
    multi_worker: bool
    stopping: bool = False  # after the last step: stop (here, or on any worker, asked for it); on an epoch's last
    # step the epoch ends (test errors, history row, checkpoint) first


def train(config: Config, verbose: bool = True, on_epoch: Callable[[dict[str, float]], None] | None = None) -> TrainResult:
    """Trains (or resumes) the model described by `config` in `config.output.model_dir`.

    Raises Interrupted after checkpointing when SIGTERM or SIGINT arrives (see the module doc), TrainingError when
    it cannot go on, cass_tf.rundir.RunDirLocked when another live process uses the model_dir, and
    cass_tf.atomic.NoSpace when the disk is full (the previous checkpoint is kept)."""
    with contextlib.ExitStack() as stack:
        run = _setup(config, verbose, stack)
        signals = run.signals
        while int(run.epoch) < config.train.epochs:
            if run.stopping or (signals and not run.multi_worker):
                raise Interrupted(signals[0] if signals else signal.SIGTERM, int(run.step), _save(run), not signals)
            row = _end_epoch(run, _train_epoch(run))
            if on_epoch:
                on_epoch(row)
        result = _finish(run)
    if signals:  # arrived while finishing: training is complete, so the signal gets its usual effect now
        signal.raise_signal(signals[0])
    return result


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[list[int]]:
    """Records SIGTERM/SIGINT into the yielded list instead of their usual effect; a second one restores the previous
    handlers and re-raises itself. The previous handlers are restored on exit. Outside the main thread (where
    Python allows no handlers) nothing is installed."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    stops = (signal.SIGTERM, signal.SIGINT)

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)  # None: not installed from Python

    def handler(signum: int, frame: Any) -> None:
        if received:
            restore()
            signal.raise_signal(signum)
        received.append(signum)

    previous = {number: signal.signal(number, handler) for number in stops}
    try:
        yield received
    finally:
        restore()


def _setup(config: Config, verbose: bool, stack: contextlib.ExitStack) -> _Run:
    """Model, optimizers, checkpoint (restored if there is one), data and the compiled steps; the model_dir's lock and
    the stop signals' handlers, both held until `stack` closes."""
    run_dir = RunDir(config.output.model_dir)
    strategy = _strategy()
    # After the strategy: under MultiWorkerMirroredStrategy TensorFlow's coordination service installs its own
    # SIGTERM handler (in C++), which would otherwise take the signal.
    signals = stack.enter_context(_stop_on_signals())
    chief = _is_chief(strategy)
    if chief:
        run_dir.create()
        stack.enter_context(run_dir.lock("train"))
    _check_model_dir(config, run_dir)
    keras.utils.set_random_seed(config.training_seed)  # the initial weights (a resumed run restores its own)
    with strategy.scope():
        model = build_model(config)
    # Plain (non-distributed) counters, read on the host: int() of a MirroredVariable fails under MWMS.
    step = tf.Variable(0, dtype=tf.int64, name="step", trainable=False)
    epoch = tf.Variable(0, dtype=tf.int64, name="epoch", trainable=False)
    checkpoint = tf.train.Checkpoint(model=model, ae_optimizer=model.ae_optimizer, d_optimizer=model.d_optimizer,
                                     step=step, epoch=epoch)
    checkpoint_dir = run_dir.checkpoints if chief else run_dir.worker_checkpoints(strategy.cluster_resolver.task_id)
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=config.train.keep_checkpoints)
    restored = _restore(checkpoint, manager, checkpoint_dir)
    if restored and verbose and chief:
        print(f"resuming from {restored} (epoch {int(epoch)}, step {int(step)})")
    if not restored and config.train.init_from:
        start_from(model, config.train.init_from)
        if verbose and chief:
            print(f"autoencoders initialised from {config.train.init_from}")

    data = pipeline.make_datasets(config, train=False)
    recordings, global_batch, start = data.recordings["train"], config.train.batch_size, int(step)

    def shard(context: tf.distribute.InputContext) -> tf.data.Dataset:
        return pipeline.train_dataset(config, recordings, context.get_per_replica_batch_size(global_batch), start,
                                      context.input_pipeline_id, context.num_input_pipelines)

    # reduce_retracing: with train.leads_kept the batches' lead count varies, which must not trace a step per count
    # autograph=False: the steps branch on the config, never on a tensor; AutoGraph would rewrite every Keras call's
    # source (about 2.5 s of a tiny run's first step) and re-read the source files whenever a function is traced
    replica_step = tf.function(model.train_step, jit_compile=config.train.jit_compile or None, reduce_retracing=True,
                               autograph=False)

    @tf.function(reduce_retracing=True, autograph=False)
    def distributed_step(batch, stop):
        results = strategy.run(replica_step, args=(batch,))  # (not wrapped: a nested tf.function fails under MWMS)
        results[STOP] = strategy.run(tf.identity, args=(stop,))
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in results.items()}

    history = [r for r in run_dir.read_history() if r["epoch"] <= int(epoch)]  # later rows: killed before saving
    writer = tf.summary.create_file_writer(run_dir.logs) if chief else tf.summary.create_noop_writer()
    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    return _Run(config, run_dir, chief, verbose, model, step, epoch, manager, checkpoint_dir, data,
                iter(strategy.distribute_datasets_from_function(shard)), distributed_step,
                tf.function(model.test_step, autograph=False), history, writer, signals, multi_worker)


def _restore(checkpoint: Any, manager: Any, directory: str) -> str | None:
    """Restores the newest intact checkpoint (one `CheckpointWarning` names those skipped); returns its path, or
    None when there is none. A TrainingError when checkpoints exist but none can be read (never a silent restart)."""
    candidates = list(reversed(manager.checkpoints)) or sorted(
        (p[:-len(".index")] for p in glob.glob(os.path.join(directory, "ckpt-*.index"))),
        key=lambda p: int(p.rsplit("-", 1)[1]) if p.rsplit("-", 1)[1].isdigit() else -1, reverse=True)
    skipped = []
    for path in candidates:
        problem = _unreadable(path)
        if problem is None:
            checkpoint.restore(path).assert_existing_objects_matched()
            if skipped:
                warnings.warn(f"skipped corrupt checkpoint{'s' * (len(skipped) > 1)} {'; '.join(skipped)}; "
                              f"resuming from {path}", CheckpointWarning, stacklevel=2)
            return path
        skipped.append(f"{path} ({problem})")
    if skipped:
        raise TrainingError(f"no intact checkpoint in {directory}: {'; '.join(skipped)}. Restore them from a backup, "
                            "or delete the directory to start over")
    return None


def _unreadable(path: str) -> str | None:
    """Why the checkpoint at prefix `path` cannot be restored (every tensor is read), or None when it is intact."""
    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as e:  # noqa: BLE001 (truncated, empty and missing files raise several kinds)
        text = str(e).strip()
        return (text.splitlines()[0] if text else type(e).__name__)[:200]
    return None


def _train_epoch(run: _Run) -> dict[str, float]:
    """The epoch's remaining steps of `train.steps_per_epoch` (all, unless resuming mid-epoch); returns its history
    row so far: counters, time, mean losses. A stop asked for mid-epoch checkpoints and raises Interrupted."""
    started = time.time()
    steps = run.config.train.steps_per_epoch
    done = int(run.step) - int(run.epoch) * steps
    partial = (run.run_dir.read_partial(int(run.step)) if done else None) or {"seconds": 0.0, "totals": {}}
    totals: dict[str, float] = partial["totals"]
    counted = done if totals else 0
    show = run.verbose and run.chief
    bar = keras.utils.Progbar(steps, verbose=_progress_mode(show))
    if show:
        print(f"epoch {int(run.epoch) + 1}/{run.config.train.epochs}" + (f" (from step {done + 1})" if done else ""))
    for i in range(done, steps):
        logs = _step(run, tf.constant(1.0 if run.signals else 0.0))
        elsewhere = logs.pop(STOP) > 0  # some worker had been asked to stop before this step
        _check_finite(logs, int(run.step) + 1, int(run.epoch) + 1, run.manager.latest_checkpoint)
        run.step.assign_add(1)
        totals = {k: totals.get(k, 0.0) + v for k, v in logs.items()}
        counted += 1
        bar.update(i + 1, values=list(logs.items()))
        run.stopping = elsewhere or (bool(run.signals) and not run.multi_worker)
        if run.stopping and i + 1 < steps:
            if run.chief:
                run.run_dir.write_partial(int(run.step), partial["seconds"] + time.time() - started, totals)
            raise Interrupted(run.signals[0] if run.signals else signal.SIGTERM, int(run.step), _save(run),
                              not run.signals)
    seconds = partial["seconds"] + time.time() - started
    row = {"epoch": int(run.epoch) + 1, "step": int(run.step), "seconds": round(seconds, 3)}
    return {**row, **{k: v / counted for k, v in totals.items()}}


def _save(run: _Run) -> str:
    """A checkpoint at the current step (unless the latest is there already); returns its path.
    On a full disk, the half-written files are removed and NoSpace names the path (the previous one is kept)."""
    prefix = os.path.join(run.checkpoint_dir, f"ckpt-{int(run.step)}")
    if run.manager.latest_checkpoint != prefix:
        previous = run.manager.latest_checkpoint or "none"
        try:
            with atomic.no_space(prefix, f"; the previous checkpoint is intact: {previous}"):
                run.manager.save(checkpoint_number=int(run.step))
        except atomic.NoSpace:
            if prefix not in run.manager.checkpoints:
                for leftover in glob.glob(glob.escape(prefix) + "[._]*"):
                    shutil.rmtree(leftover, ignore_errors=True) if os.path.isdir(leftover) else os.remove(leftover)
            raise
    return prefix


def _step(run: _Run, asked) -> dict[str, float]:
    """One distributed training step's losses and the workers' summed stop flag (`STOP`; `asked`: this worker's);
    {"mixture": nan} when the batch's mixture is not finite."""
    try:
        return {k: float(v) for k, v in run.distributed_step(next(run.batches), asked).items()}
    except tf.errors.InvalidArgumentError as e:
        if NON_FINITE_MIXTURE not in str(e):
            raise
        return {"mixture": math.nan, STOP: float(asked)}


def _end_epoch(run: _Run, row: dict[str, float]) -> dict[str, float]:
    """Adds the test errors to the epoch's row, appends it to history, writes logs and a checkpoint; returns it."""
    row.update({f"test_{k}": v for k, v in evaluate_batches(run.test_step, run.data.test).items()})
    if run.config.model.multilead:  # crops of several leads have no waveform protocol: whole test recordings
        scores = signal_scores(run.model, scored_recordings(run.data, run.config), run.config)
        row.update({f"{SIGNAL_L2}{c}": per.pop("l2") for c, per in scores.items()})
        row.update({f"{EVENT_SCORES}{k}/{c}": v for c, per in scores.items() for k, v in per.items()
                    if math.isfinite(v)})
    else:
        row.update({f"{WAVEFORM_L2}{c}": v for c, v in waveform_l2(run.model, run.data, run.config).items()})
        row.update({f"{EVENT_SCORES}{k}/{c}": v for c, scores in event_scores(run.model, run.data, run.config).items()
                    for k, v in scores.items()})
    _check_finite(row, int(run.step), int(run.epoch) + 1, run.manager.latest_checkpoint)
    run.epoch.assign_add(1)
    run.history.append(row)
    if run.chief:  # history first: a kill between the two leaves a row past the checkpoint, which resume drops
        _write_epoch(run, row)
    _save(run)
    if run.verbose and run.chief:
        print("  " + "  ".join(f"{k}={v:.4g}" for k, v in row.items() if k.startswith((WAVEFORM_L2, SIGNAL_L2, MAGNITUDE_L2))))
    return row


def _finish(run: _Run) -> TrainResult:
    """Draws the first test recording's separation (example.png) and the training curves; removes a
    worker's scratch checkpoints. Every worker runs the example's model calls (under MultiWorkerMirroredStrategy they take part
    in cross-worker collectives: the chief alone hung in the two-worker test); a worker draws into its scratch dir."""
    if run.history:
        scratch = os.path.join(run.checkpoint_dir, os.path.basename(run.run_dir.example))
        draw_example(run.model, run.data.recordings["test"][0], run.run_dir.example if run.chief else scratch)
    if not run.chief:
        shutil.rmtree(run.checkpoint_dir, ignore_errors=True)
    elif run.history:
        plots.training_curves(run.history, run.run_dir.curves)
    return TrainResult(run.run_dir.path, int(run.epoch), int(run.step), run.history,
                       run.manager.latest_checkpoint if run.chief else None)


def train_to_the_end(config: Config, log: Callable[[str], None] = print, **kwargs: Any) -> list[dict[str, float]]:
    """`train(config, **kwargs)` for scripts that train many runs; returns the run's history. A failure after the last
    epoch (the end-of-run figures) is passed to `log` as one `warning: ...` line and the run counts as trained; a
    failure before it is raised."""
    try:
        return train(config, **kwargs).history
    except Exception as e:  # noqa: BLE001 - only a failure after the last epoch is let pass
        history = RunDir(config.output.model_dir).read_history()
        if len(history) < config.train.epochs:
            raise
        log(f"warning: trained, but the end of the run failed: {type(e).__name__}: {e}"[:290])
        return history


def draw_example(model: CASSModel, recording: Any, path: str) -> dict[str, np.ndarray]:
    """The start of a test `recording` (a cass_tf.data.Recording: EXAMPLE_SECONDS, or one patch if that is longer)
    separated by `model` as its export would separate it (`windows.traced`; a multi-lead recording with all its
    leads, its first lead drawn), drawn beside the truth -> PNG at `path` (cass_tf.plots.separation); returns the
    estimates (of every lead)."""
    config = model.config
    samples = min(len(recording), max(round(EXAMPLE_SECONDS * config.data.sample_rate),
                                      config.stft.samples_for(config.patch.frames)))
    mixture = recording.mixture[..., :samples]
    own_level, _ = traced(Spectral.from_config(config), lambda f: model(f, training=False), config.components,
                          config.model.input_rms, leads=config.model.multilead, remove_dc=config.model.remove_dc)
    outputs = own_level(tf.constant(mixture[np.newaxis], tf.float32))
    estimates = {n: outputs[n].numpy()[0] for n in config.components}
    truth = {n: recording.components[n][..., :samples] for n in config.components}
    lead = (0,) if mixture.ndim == 2 else ()  # the first lead of a multi-lead recording, else all of it
    title = recording.name + (f" (lead 1 of {mixture.shape[0]})" if lead else "")
    plots.separation(path, mixture[lead], {n: v[lead] for n, v in estimates.items()}, config.data.sample_rate,
                     config.stft.window, config.stft.hop, {n: v[lead] for n, v in truth.items()}, title)
    return estimates


def evaluate_batches(step_fn: Callable, dataset) -> dict[str, float]:
    """Example-weighted means of `step_fn`'s scalar results over a finite dataset."""
    sums: dict[str, float] = {}
    count = 0
    for batch in dataset:
        size = int(batch[0].shape[0])
        for k, v in step_fn(batch).items():
            sums[k] = sums.get(k, 0.0) + float(v) * size
        count += size
    return {k: v / count for k, v in sums.items()}


def _progress_mode(show: bool) -> int:
    """Keras Progbar verbosity: a live bar on a terminal, one line per epoch in logs, nothing when quiet."""
    if not show:
        return 0
    return 1 if sys.stdout.isatty() else 2


def start_from(model: CASSModel, version_dir: str) -> None:
    """Sets the autoencoders of a fresh `model` from a one-lead export's (`train.init_from`,
    cass_tf.models.resnet9.copy_autoencoder); a ConfigError naming train.init_from when it cannot."""
    what = f"train.init_from {version_dir!r}"
    try:
        source = load_model(version_dir)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{what}: not a loadable cass_tf export ({e})") from None
    mine, theirs = model.config, source.config
    fields = {"stft": (mine.stft, theirs.stft), "patch": (mine.patch, theirs.patch),
              "components": (mine.components, theirs.components), "model.input": (mine.model.input, theirs.model.input),
              "model.output": (mine.model.output, theirs.model.output), "model.direct": ((), theirs.model.direct),
              "model.borrowed_phase": ((), theirs.model.borrowed_phase),
              "model.multilead": (False, theirs.model.multilead), "scaling": (mine.scaling, theirs.scaling),
              "model.cancellation": (mine.model.cancellation, theirs.model.cancellation)}
    if mine.train.wise_ft is not None:  # its weights are mixed with the trained ones: the same network throughout
        fields["model"] = (mine.model, theirs.model)
    for name, (want, got) in fields.items():
        if want != got:
            raise ConfigError(f"{what}: its {name} is {got!r}, this run needs {want!r}")
    for name in mine.components:
        try:
            copy_autoencoder(source.autoencoders[name], model.autoencoders[name])
        except ValueError as e:
            raise ConfigError(f"{what}: {e}") from None


def build_model(config: Config):
    """CASSModel with both Adam optimizers, built under `train.precision`'s dtype policy (cass_tf.precision); the
    optimizers are wrapped in LossScaleOptimizers where the policy needs loss scaling (float16)."""
    precision = resolve(config.train.precision)
    with policy_scope(precision.policy):
        model = CASSModel(config)

    def optimizer(learning_rate: float):
        adam = keras.optimizers.Adam(learning_rate)
        return keras.optimizers.LossScaleOptimizer(adam) if precision.loss_scaling else adam

    model.set_optimizers(optimizer(config.train.ae_learning_rate), optimizer(config.train.d_learning_rate))
    return model


def _strategy():
    """MultiWorkerMirroredStrategy when TF_CONFIG names a cluster, MirroredStrategy on >1 GPU, else the default."""
    if json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and "chief" not in resolver.cluster_spec().as_dict())


def _check_model_dir(config: Config, run_dir: RunDir) -> None:
    """Writes config.json into a new model_dir; in an existing one, insists the config is the same but for
    `rundir.RESUMABLE_FIELDS` (how long, how many checkpoints, where things go; the blessing bounds are frozen with
    the run) and train.precision between settings without loss scaling (the checkpoint holds float32 weights and
    plain Adam slots under all of them)."""
    run_dir.create()
    current = config.to_dict()
    if os.path.exists(run_dir.config):
        try:
            with open(run_dir.config, encoding="utf-8") as f:
                saved = json.load(f)
            if not isinstance(saved, dict):
                raise ValueError("not a JSON object")
            saved = completed(saved)  # fields added since the run started are at their defaults there
        except (OSError, ValueError) as e:
            raise TrainingError(f"{run_dir.config} cannot be read ({e}); choose another --model_dir") from None
        differing = sorted(set(flatten(saved).items()) ^ set(flatten(current).items()))
        free = set(RESUMABLE_FIELDS) | ({"train.precision"} if _plain_slots(saved, config) else set())
        fields = sorted({k for k, _ in differing} - free)
        if fields:
            raise TrainingError(f"{run_dir.path} holds a run with a different config (fields {fields}); "
                                "resume with the same config or choose another --model_dir")
    atomic.write_text(run_dir.config, config.to_json())


def _plain_slots(saved: dict[str, Any], config: Config) -> bool:
    """Whether neither the saved run nor `config` trains with loss scaling (whose optimizer state differs)."""
    settings = {upgrade(saved).get("train", {}).get("precision", "float32"), config.train.precision}
    return not any(resolve(s).loss_scaling for s in settings if s in CHOICES)


def _check_finite(values: dict[str, float], step: int, epoch: int, last_checkpoint: str | None) -> None:
    bad = {k: v for k, v in values.items() if isinstance(v, float) and not math.isfinite(v)}
    if bad:
        kept = last_checkpoint or "none (no epoch had finished)"
        raise TrainingError(f"non-finite loss or input at epoch {epoch}, step {step}: {bad}; training stopped, "
                            f"last good checkpoint kept: {kept}. Lower train.ae_learning_rate/d_learning_rate "
                            "or check the data.")


def _write_epoch(run: _Run, row: dict[str, float]) -> None:
    run.run_dir.write_history(run.history)
    with atomic.no_space(run.run_dir.logs), run.writer.as_default(step=int(row["step"])):
        for key, value in row.items():
            if key not in ("epoch", "step"):
                tf.summary.scalar(key, value)
        run.writer.flush()


def summary(result: TrainResult) -> str:
    """What `cass-tf train` prints at the end: epochs and steps, where the outputs are, the final test errors."""
    lines = [f"trained {result.epoch} epochs ({result.step} steps). Outputs in {result.model_dir}/:"]
    lines += [f"  {path}" for path in RunDir(result.model_dir).outputs()]
    if result.history:
        last = result.history[-1]
        for prefix, what in ((WAVEFORM_L2, "waveform, eq. 6"), (SIGNAL_L2, "whole recordings, mean over leads"),
                             (MAGNITUDE_L2, "magnitude")):
            if any(k.startswith(prefix) for k in last):
                lines.append(f"final test relative L2 ({what}): " + ", ".join(
                    f"{k[len(prefix):]}={v:.4f}" for k, v in last.items() if k.startswith(prefix)))
    return "\n".join(lines)
