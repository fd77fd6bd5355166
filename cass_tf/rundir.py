"""Owns the layout of a training run directory (model_dir): where each file lives, and reading what training wrote.

    <model_dir>/config.json          the resolved config (a rerun must match it but for RESUMABLE_FIELDS)
    <model_dir>/blessing_record.jsonl  pipelines/train_export.py's append-only blessing record (cass_tf.blessing):
                                     the bounds and blessing set frozen at the start, every evaluation and push
    <model_dir>/checkpoints/         tf.train.CheckpointManager: model, both optimizers, step and epoch
    <model_dir>/history.csv          one row per epoch: training losses and test errors per component
    <model_dir>/logs/                TensorBoard scalars
    <model_dir>/training_curves.png  test errors per component and the losses, per epoch
    <model_dir>/example.png          one test recording: mixture, components and estimates
    <model_dir>/partial_epoch.json   the unfinished epoch's loss sums at a mid-epoch checkpoint (a stopped training)
    <model_dir>/lock                 "<pid> <host> <command>" of the process using the directory (`RunDir.lock`)

and what the pipelines' scripts keep beside a run they trained (so a rerun skips what is done):

    <model_dir>/wall_time.json       pipelines/reproduce.py: training wall time over all resumes, epochs, steps
    <model_dir>/scores.json          pipelines/reproduce.py: the finished run's scores
    <model_dir>/ablation.json        pipelines/ablate.py: the finished run's validation scores
    <model_dir>/precision_scores.json  pipelines/precision.py: the finished run's scores and speed
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import socket
import uuid
from typing import Any, Iterator

import tensorflow as tf

from cass_tf import atomic
from cass_tf.config import Config, load_config

CONFIG = "config.json"
CHECKPOINTS = "checkpoints"
HISTORY = "history.csv"
LOGS = "logs"
CURVES = "training_curves.png"
EXAMPLE = "example.png"
BLESSING_RECORD = "blessing_record.jsonl"
# config fields a resumed run may change: how long it trains, how many checkpoints it keeps and where things go.
# Not the blessing bounds (output.bless_*): those are frozen when a run starts.
RESUMABLE_FIELDS = ("train.epochs", "train.keep_checkpoints", "output.model_dir", "output.export_dir")
PARTIAL = "partial_epoch.json"
LOCK = "lock"
WALL_TIME = "wall_time.json"
SCORES = "scores.json"
ABLATION = "ablation.json"
PRECISION_SCORES = "precision_scores.json"
# history.csv test-error columns, one per component: relative L2 of waveforms (eq. 6) and of linear magnitudes.
WAVEFORM_L2 = "test_l2_waveform/"
MAGNITUDE_L2 = "test_l2_magnitude/"
# multi-lead runs (model.multilead) score whole test recordings instead of crops: relative L2 of waveforms, the mean
# over each recording's leads (cass_tf.scoring.signal_scores).
SIGNAL_L2 = "test_l2_signal/"
# history.csv event-level columns, f"{EVENT_SCORES}{score}/{component}" (cass_tf.scoring.event_scores), e.g.
# test_events_qrs_f1/fetal, test_events_rate_error/respiratory.
EVENT_SCORES = "test_events_"
# history.csv columns written before the waveform/magnitude names (read so older runs resume and plot).
LEGACY_COLUMNS = {"test_l2/": WAVEFORM_L2, "test_rel_l2/": MAGNITUDE_L2}


class RunDir:
    """One training run directory; `RunDir(model_dir).history` etc. are the paths of its parts."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.config = os.path.join(self.path, CONFIG)
        self.checkpoints = os.path.join(self.path, CHECKPOINTS)
        self.history = os.path.join(self.path, HISTORY)
        self.logs = os.path.join(self.path, LOGS)
        self.curves = os.path.join(self.path, CURVES)
        self.example = os.path.join(self.path, EXAMPLE)
        self.blessing_record = os.path.join(self.path, BLESSING_RECORD)
        self.partial = os.path.join(self.path, PARTIAL)
        self.lock_file = os.path.join(self.path, LOCK)
        self.wall_time = os.path.join(self.path, WALL_TIME)
        self.scores = os.path.join(self.path, SCORES)
        self.ablation = os.path.join(self.path, ABLATION)
        self.precision_scores = os.path.join(self.path, PRECISION_SCORES)

    def __repr__(self) -> str:
        return f"RunDir({self.path!r})"

    def worker_checkpoints(self, task_id: int) -> str:
        """A non-chief worker's scratch checkpoint directory (MultiWorkerMirroredStrategy saves on every worker)."""
        return os.path.join(self.path, f".worker_{task_id}")

    def outputs(self) -> list[str]:
        """What a finished run holds, for telling the user."""
        return [self.config, self.checkpoints + os.sep, self.history, self.logs + os.sep, self.curves, self.example]

    def create(self) -> None:
        """Creates the directory; a ValueError if the path (or a parent) is a regular file."""
        atomic.make_dirs(self.path, "model_dir")

    def load_config(self) -> Config:
        """The run's config.json, validated; FileNotFoundError if this is not a run directory."""
        if not os.path.isdir(self.path):
            raise FileNotFoundError(f"model_dir not found: {self.path!r}")
        if not os.path.exists(self.config):
            raise FileNotFoundError(f"{self.path}: not a cass_tf model directory (no {CONFIG})")
        return load_config(self.config)

    def latest_checkpoint(self) -> str | None:
        """The newest checkpoint's prefix in checkpoints/, or None."""
        return tf.train.latest_checkpoint(self.checkpoints)

    def read_history(self) -> list[dict[str, float]]:
        """history.csv's rows: epoch and step as int, the rest float; empty cells (columns added later) left out."""
        if not os.path.exists(self.history):
            return []
        with open(self.history, newline="", encoding="utf-8") as f:
            return [{_current_name(k): int(float(v)) if k in ("epoch", "step") else float(v)
                     for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]

    def write_history(self, rows: list[dict[str, float]]) -> None:
        """Publishes history.csv atomically, columns of the last row."""
        with atomic.writing(self.history, newline="") as f:
            out = csv.DictWriter(f, fieldnames=list(rows[-1]), restval="")
            out.writeheader()
            out.writerows(rows)


    @contextlib.contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """Holds the directory's advisory lock while `command` ("train", "export", "evaluate") uses it.

        The lock file holds "<pid> <host> <command>" and appears in one step (a hard link of a complete temporary).
        A lock of a process that no longer runs on this host is taken over; one of a live process (or of another
        host, whose processes cannot be checked from here) raises RunDirLocked naming the directory and the pid.
        The lock is released (removed) when the block ends, also on an exception.
        """
        if not os.path.isdir(self.path):
            raise FileNotFoundError(f"model_dir not found: {self.path!r}")
        atomic.remove_stale(self.path, LOCK)
        host = socket.gethostname()
        temp = os.path.join(self.path, f".{LOCK}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        with open(temp, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()} {host} {command}\n")
        try:
            while not _link(temp, self.lock_file):
                holder = self.lock_holder()
                if holder and (holder[1] != host or atomic.running(holder[0])):
                    raise RunDirLocked(f"{self.path} is in use by process {holder[0]} ({holder[2]} on {holder[1]}); "
                                       f"wait for it to finish, or remove {self.lock_file} if that process is gone")
                with contextlib.suppress(FileNotFoundError):  # a dead process's lock (or a torn one): take it over
                    os.remove(self.lock_file)
        finally:
            os.remove(temp)
        try:
            yield
        finally:
            if (self.lock_holder() or (None,))[0] == os.getpid():
                os.remove(self.lock_file)

    def lock_holder(self) -> tuple[int, str, str] | None:
        """(pid, host, command) from the lock file, or None when there is none (or it cannot be read)."""
        try:
            with open(self.lock_file, encoding="utf-8") as f:
                pid, host, command = f.read().split()
            return int(pid), host, command
        except (OSError, ValueError):
            return None

    def read_partial(self, step: int) -> dict[str, Any] | None:
        """The unfinished epoch's state saved with the checkpoint at `step` ({"step", "seconds", "totals"}), or None."""
        try:
            with open(self.partial, encoding="utf-8") as f:
                partial = json.load(f)
        except (OSError, ValueError):
            return None
        return partial if isinstance(partial, dict) and partial.get("step") == step else None

    def write_partial(self, step: int, seconds: float, totals: dict[str, float]) -> None:
        """Publishes the unfinished epoch's loss sums over its steps so far, for a resume from `step`."""
        atomic.write_text(self.partial, json.dumps({"step": step, "seconds": seconds, "totals": totals}))


class RunDirLocked(RuntimeError):
    """Another live process is using the run directory."""


def _link(source: str, target: str) -> bool:
    """Hard-links `source` to `target`; False if `target` exists."""
    try:
        os.link(source, target)
    except FileExistsError:
        return False
    return True


def _current_name(column: str) -> str:
    for old, new in LEGACY_COLUMNS.items():
        if column.startswith(old):
            return new + column[len(old):]
    return column
