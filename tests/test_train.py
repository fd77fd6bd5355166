"""Tests for cass_tf.train: the CLI end to end, bad input, non-finite losses and resume after SIGKILL (two
MultiWorkerMirroredStrategy workers on localhost: tests/test_faults.py).

Each CLI run is a real subprocess (`python -m cass_tf.train`) on a tiny PPG config (width 2, 16x16 patches,
batch 4, two steps per epoch); most of their time is TensorFlow's import and tracing of the train step.
"""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from cass_tf.config import load_config
from conftest import REPO, TF_LOG, env, error_lines, png_size, run_cli, run_here

pytestmark = pytest.mark.slow  # trainings, exports and real subprocesses throughout

CONFIG = str(REPO / "configs" / "paper" / "ppg.json")
TINY = [
    "data.ppg.train_recordings=2", "data.ppg.test_recordings=1", "data.ppg.seconds=30", "data.cache_dir=null",
    "model.width=2", "patch.frequency_bins=16", "patch.frames=16",
    "stft.n_fft=32", "stft.window=32", "stft.hop=16", "train.batch_size=4", "train.steps_per_epoch=2",
]
# One component (and its 1x1 cross matrix) halves the graph to trace, for the tests about the loop, not the losses.
ONE = ['data.components=["heart"]', "loss.cross=[[0]]"]
STEPS = 2  # train.steps_per_epoch in TINY


def train_args(model_dir, overrides, config=CONFIG):
    """The training command's arguments: the config, one --set per override, the model_dir."""
    return ["--config", config, *[a for o in overrides for a in ("--set", o)], "--model_dir", str(model_dir)]


def cli(model_dir, overrides, config=CONFIG, script=None):
    """argv of a training process that runs in the background: `python -m cass_tf.train ...` (or `python script
    ...`, a script that runs the same command)."""
    head = [sys.executable, script] if script else [sys.executable, "-m", "cass_tf.train"]
    return head + train_args(model_dir, overrides, config)


def read_history(model_dir):
    with open(os.path.join(model_dir, "history.csv"), newline="") as f:
        return list(csv.DictReader(f))


def ckpt_value(path, name):
    return tf.train.load_checkpoint(path).get_tensor(f"{name}/.ATTRIBUTES/VARIABLE_VALUE")


# ---- end to end ----

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One CLI run, through the package's entry point (`python -m cass_tf train`; the other tests use
    `python -m cass_tf.train`): 2 epochs x 2 steps, both components, cass_cross."""
    model_dir = tmp_path_factory.mktemp("e2e") / "run"
    overrides = TINY + ["train.epochs=2"]
    proc = run_cli("train", *train_args(model_dir, overrides))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return model_dir, overrides, proc


def test_cli_writes_every_output(trained):
    model_dir, overrides, proc = trained
    assert "Traceback" not in proc.stderr
    assert "trained 2 epochs (4 steps)" in proc.stdout
    assert re.search(r"final test relative L2 \(waveform, eq. 6\): heart=[\d.]+, respiratory=[\d.]+", proc.stdout)
    assert proc.stderr.startswith("device: CPU")  # quiet: no TensorFlow log line before (or after) it
    assert not TF_LOG.search(proc.stderr), proc.stderr

    with open(model_dir / "config.json") as f:
        saved = json.load(f)
    assert saved == load_config(CONFIG, overrides + [f"output.model_dir={model_dir}"]).to_dict()

    latest = tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    assert latest is not None and latest.endswith("ckpt-4")
    assert int(ckpt_value(latest, "step")) == 4 and int(ckpt_value(latest, "epoch")) == 2

    rows = read_history(model_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert [int(r["step"]) for r in rows] == [2, 4]
    for c in ("heart", "respiratory"):
        for key in (f"ae_loss/{c}", f"d_loss/{c}", f"test_l2_magnitude/{c}", f"test_events_rate_error/{c}"):
            assert key in rows[0], sorted(rows[0])
            assert all(np.isfinite(float(r[key])) for r in rows)

    events = [f for f in os.listdir(model_dir / "logs") if f.startswith("events.out.tfevents")]
    assert events
    tags = set()
    for event in tf.compat.v1.train.summary_iterator(str(model_dir / "logs" / events[0])):
        tags.update(v.tag for v in event.summary.value)
    assert {"ae_loss/heart", "d_loss/respiratory", "test_l2_magnitude/heart"} <= tags, tags

    assert png_size(model_dir / "training_curves.png")[0] > 600
    width, height = png_size(model_dir / "example.png")
    assert width > 800 and height > 600  # five rows (mixture, 2 x (true, estimate)), two columns


# ---- bad input: one "error: ..." line, no traceback, non-zero exit (`python -m cass_tf.train` in a subprocess once,
# the same command in this process for the others) ----

def test_missing_config_file(tmp_path):
    proc = run_cli(*train_args(tmp_path / "run", TINY, config=str(tmp_path / "nope.json")),
                   module="cass_tf.train")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    (line,) = error_lines(proc.stderr)
    assert "not found" in line and "nope.json" in line


def test_unknown_set_key(tmp_path, capsys):
    proc = run_here(capsys, "train", *train_args(tmp_path / "run", TINY + ["model.depth=9"]))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    (line,) = error_lines(proc.stderr)
    assert "model.depth" in line and "unknown key" in line
    assert not (tmp_path / "run").exists()


def test_model_dir_of_another_config(trained, capsys):
    model_dir, overrides, _ = trained
    before = (model_dir / "config.json").read_text()
    proc = run_here(capsys, "train", *train_args(model_dir, overrides + ["model.width=4"]))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    (line,) = error_lines(proc.stderr)
    assert "model.width" in line and str(model_dir) in line
    assert (model_dir / "config.json").read_text() == before
    assert tf.train.latest_checkpoint(str(model_dir / "checkpoints")).endswith("ckpt-4")



def test_resume_refuses_changed_blessing_bounds_but_not_a_new_export_dir(tmp_path):
    """The blessing bounds are frozen with the run: a resume that changes output.bless_* is refused and leaves
    config.json as it was; where things go (output.export_dir, train.epochs) may change."""
    from cass_tf.rundir import RunDir
    from cass_tf.train import TrainingError, _check_model_dir

    model_dir = tmp_path / "run"
    base = TINY + ONE + [f"output.model_dir={model_dir}", "output.bless_threshold=0.9"]
    _check_model_dir(load_config(CONFIG, base), RunDir(model_dir))
    before = (model_dir / "config.json").read_text()
    for change in ("output.bless_threshold=1.5", "output.bless_rate_error=3.0"):
        with pytest.raises(TrainingError, match=re.escape(change.split("=")[0])):
            _check_model_dir(load_config(CONFIG, base + [change]), RunDir(model_dir))
        assert (model_dir / "config.json").read_text() == before
    _check_model_dir(load_config(CONFIG, base + ["output.export_dir=elsewhere", "train.epochs=9"]), RunDir(model_dir))
    saved = json.loads((model_dir / "config.json").read_text())
    assert saved["output"]["export_dir"] == "elsewhere" and saved["output"]["bless_threshold"] == 0.9

# ---- non-finite losses ----

def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    """Training batches from step 3 on carry a NaN: epoch 1 (steps 1-2) checkpoints, step 3 must stop training."""
    from cass_tf.data import pipeline
    from cass_tf.train import TrainingError, train

    real = pipeline.train_dataset

    def poisoned(config, recordings, batch_size, start_step=0, *args, **kwargs):
        ds = real(config, recordings, batch_size, start_step, *args, **kwargs)
        nan = float("nan")
        return ds.enumerate(start=start_step).map(
            lambda i, el: (tf.where(i >= 2, tf.fill(tf.shape(el[0]), nan), el[0]), el[1]))

    monkeypatch.setattr(pipeline, "train_dataset", poisoned)
    model_dir = tmp_path / "run"
    config = load_config(CONFIG, TINY + ONE + ["train.epochs=3", f"output.model_dir={model_dir}"])
    with pytest.raises(TrainingError) as info:
        train(config, verbose=False)
    message = str(info.value)
    assert "non-finite" in message and "step 3" in message and "ckpt-2" in message and "mixture" in message
    checkpoints = model_dir / "checkpoints"
    assert tf.train.latest_checkpoint(str(checkpoints)).endswith("ckpt-2")
    assert sorted(f for f in os.listdir(checkpoints) if f.endswith(".index")) == ["ckpt-2.index"]
    assert [int(r["epoch"]) for r in read_history(model_dir)] == [1]


# ---- resume after SIGKILL ----

def test_resume_after_sigkill_restores_step_and_optimizers(tmp_path, capsys):
    """A training process SIGKILLed after its first checkpoint: the checkpoint holds the optimizers' whole state, and
    the same command again (here, in this process: the kill needs a process, the resume does not) goes on from it."""
    model_dir = tmp_path / "run"
    overrides = TINY + ONE + ["train.epochs=50"]
    checkpoints = str(model_dir / "checkpoints")
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(cli(model_dir, overrides), cwd=REPO, env=env(), stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 180
            while tf.train.latest_checkpoint(checkpoints) is None:
                assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
                assert time.time() < deadline, "no checkpoint within 180 s"
                time.sleep(0.2)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed, not finished

    killed = tf.train.latest_checkpoint(checkpoints)
    step, epoch = int(ckpt_value(killed, "step")), int(ckpt_value(killed, "epoch"))
    assert epoch >= 1 and step == epoch * STEPS and killed.endswith(f"ckpt-{step}")
    for opt in ("ae_optimizer", "d_optimizer"):
        assert int(ckpt_value(killed, f"{opt}/_iterations")) == step

    # The checkpoint holds complete optimizer state: restored into a fresh model + optimizers exactly as train()
    # builds them, every Adam moment equals the stored tensor and is not the zero it starts as.
    import keras

    from cass_tf.models.cass import CASSModel

    config = load_config(CONFIG, overrides + [f"output.model_dir={model_dir}"])
    model = CASSModel(config)
    model.set_optimizers(keras.optimizers.Adam(1.0), keras.optimizers.Adam(1.0))
    counters = tf.Variable(0, dtype=tf.int64), tf.Variable(0, dtype=tf.int64)
    tf.train.Checkpoint(model=model, ae_optimizer=model.ae_optimizer, d_optimizer=model.d_optimizer,
                        step=counters[0], epoch=counters[1]).restore(killed).assert_consumed()
    reader = tf.train.load_checkpoint(killed)
    for opt_name, opt in (("ae_optimizer", model.ae_optimizer), ("d_optimizer", model.d_optimizer)):
        assert int(opt.iterations) == step
        # opt.variables: iterations, learning_rate, then Adam's m and v for each trainable variable.
        moments = opt.variables[2:]
        assert len(moments) == 2 * len(model.d_variables if opt_name == "d_optimizer" else model.ae_variables) > 0
        for i, v in enumerate(moments, start=2):
            stored = reader.get_tensor(f"{opt_name}/_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE")
            np.testing.assert_array_equal(v.numpy(), stored, err_msg=v.path)
            assert np.any(stored != 0), v.path  # Adam moments start at 0: these were trained

    proc = run_here(capsys, "train", *train_args(model_dir, TINY + ONE + [f"train.epochs={epoch + 1}"]))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resuming from {killed} (epoch {epoch}, step {step})" in proc.stdout, proc.stdout
    final = tf.train.latest_checkpoint(checkpoints)
    assert final.endswith(f"ckpt-{step + STEPS}")
    assert int(ckpt_value(final, "step")) == step + STEPS and int(ckpt_value(final, "epoch")) == epoch + 1
    # The optimizers went on counting from the checkpoint (a fresh optimizer would be at STEPS).
    for opt in ("ae_optimizer", "d_optimizer"):
        assert int(ckpt_value(final, f"{opt}/_iterations")) == step + STEPS
    rows = read_history(model_dir)
    assert [int(r["epoch"]) for r in rows] == list(range(1, epoch + 2))
    assert [int(r["step"]) for r in rows] == [STEPS * e for e in range(1, epoch + 2)]


def test_model_dir_that_is_a_file_is_one_clear_error(tmp_path):
    """Issue 13.7: --model_dir naming a regular file (or under one) is a ValueError naming it, nothing written."""
    from cass_tf.train import train

    blocker = tmp_path / "run"
    blocker.write_text("not a directory")
    for model_dir in (blocker, blocker / "sub"):
        with pytest.raises(ValueError, match=f"model_dir '{model_dir}': '{blocker}' is a file"):
            train(load_config(CONFIG, [*TINY, f"output.model_dir={model_dir}"]), verbose=False)
    assert os.listdir(tmp_path) == ["run"] and blocker.read_text() == "not a directory"


# ---- scripts that train many runs ----

def test_train_to_the_end_lets_only_a_failure_after_the_last_epoch_pass(tmp_path, monkeypatch):
    from cass_tf import training
    from cass_tf.rundir import RunDir

    config = load_config(CONFIG, TINY + ["train.epochs=2", f"output.model_dir={tmp_path}"])

    def fails_at_the_end(config, **kwargs):
        assert kwargs == {"verbose": False}
        raise OSError("disk full while drawing")

    monkeypatch.setattr(training, "train", fails_at_the_end)
    rows = [{"epoch": 1, "step": 2, "ae_loss/heart": 0.5}]
    RunDir(tmp_path).write_history(rows)
    with pytest.raises(OSError, match="disk full"):  # one epoch of two: not trained
        training.train_to_the_end(config, verbose=False)
    rows.append({"epoch": 2, "step": 4, "ae_loss/heart": 0.25})
    RunDir(tmp_path).write_history(rows)
    lines = []
    assert training.train_to_the_end(config, lines.append, verbose=False) == rows
    assert lines == ["warning: trained, but the end of the run failed: OSError: disk full while drawing"]
