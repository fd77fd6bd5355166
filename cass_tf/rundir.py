"""Owns the layout of a training run directory (model_dir): where each file lives, and reading what training wrote.

    <model_dir>/config.json          the resolved config (a rerun must match it but for RESUMABLE_FIELDS)
    <model_dir>/blessing_record.jsonl  pipelines/train_export.py's append-only blessing record (cass_tf.blessing):
                                     the bounds and blessing set frozen at the start, every evaluation and push
    <model_dir>/checkpoints/         tf.train.CheckpointManager: model, both optimizers, step and epoch
    <model_dir>/history.csv          one row per epoch: training losses and test errors per component
    <model_dir>/logs/                TensorBoard scalars
    <model_dir>/training_curves.png  test errors per component and the losses, per epoch
    <model_dir>/example.png          one test recording: mixture, components and estimates
"""

from __future__ import annotations

import csv
import os

from cass_tf import atomic
from cass_tf.config import Config, load_config

CONFIG = "config.json"
CHECKPOINTS = "checkpoints"
HISTORY = "history.csv"
LOGS = "logs"
CURVES = "training_curves.png"
EXAMPLE = "example.png"
BLESSING_RECORD = "blessing_record.jsonl"
# config fields a resumed run may change: how long it trains and where things go. Not the blessing bounds
# (output.bless_*): those are frozen when a run starts.
RESUMABLE_FIELDS = ("train.epochs", "output.model_dir", "output.export_dir")
# history.csv test-error columns, one per component: relative L2 of waveforms (eq. 6) and of linear magnitudes.
WAVEFORM_L2 = "test_l2_waveform/"
MAGNITUDE_L2 = "test_l2_magnitude/"
# history.csv event-level columns, f"{EVENT_SCORES}{score}/{component}" (cass_tf.evaluate.event_scores), e.g.
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
        import tensorflow as tf

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


def _current_name(column: str) -> str:
    for old, new in LEGACY_COLUMNS.items():
        if column.startswith(old):
            return new + column[len(old):]
    return column
