"""Tests for the faults long trainings meet (issue 22): SIGTERM/SIGINT, a corrupt checkpoint, a second writer and a
full disk, each made to happen for real: signals to real subprocesses, real files, a real full tmpfs (as root).

Trainings use tests/test_train.py's tiny PPG config (width 2, 16x16 patches, batch 4) with one component.
"""

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from cass_tf import atomic
from cass_tf.config import load_config
from cass_tf.rundir import RunDir
from conftest import REPO, env, error_lines, run_here
from test_tfx import train_export  # (pipelines/train_export.py; test_tfx puts pipelines/ on sys.path)
from test_train import CONFIG, ONE, TINY, cli, read_history, train_args

pytestmark = pytest.mark.slow  # trainings, exports and real subprocesses throughout

BASE = TINY + ONE + ["train.steps_per_epoch=3"]
# The CLI (or pipeline script) in a real subprocess that sends itself `signal` when step `step` is being checked
# (cass_tf.train._check_finite runs after every step): the signal arrives mid-training, from the kernel, at a known
# step. argv: signal number, step, then the script (or "-m module") and its arguments.
SIGNALLER = textwrap.dedent("""
    import os, runpy, sys
    import cass_tf.train as training
    signum, at = int(sys.argv[1]), int(sys.argv[2])
    real = training._check_finite

    def check(values, step, *args):
        if step == at and "ae_loss/heart" in values and "test_l2_waveform/heart" not in values:  # the step's check
            os.kill(os.getpid(), signum)
        return real(values, step, *args)

    training._check_finite = check
    if sys.argv[3:5] == ["-m", "cass_tf.train"]:  # as `python -m cass_tf.train` (the module is imported already)
        from cass_tf.cli import run_module
        sys.argv = sys.argv[4:]
        sys.exit(run_module("train"))
    else:
        sys.argv = sys.argv[3:]
        runpy.run_path(sys.argv[0], run_name="__main__")
""")


def signalled(tmp_path, signum, step, argv, timeout=240):
    """Runs `argv` (python and its arguments) under SIGNALLER; the finished process."""
    script = tmp_path / "signaller.py"
    script.write_text(SIGNALLER)
    return subprocess.run([sys.executable, str(script), str(signum), str(step), *argv[1:]], cwd=REPO, env=env(),
                          capture_output=True, text=True, timeout=timeout)


def checkpoint_tensors(path):
    reader = tf.train.load_checkpoint(path)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "OBJECT_GRAPH" not in k and not k.startswith("save_counter")}  # how many saves, not what was trained


def assert_same_checkpoints(a, b):
    """Every tensor (weights, both optimizers' moments and counters, step, epoch) bit for bit; not TensorFlow's
    save counter (a stopped run saves once more)."""
    ta, tb = checkpoint_tensors(a), checkpoint_tensors(b)
    assert sorted(ta) == sorted(tb)
    for key in ta:
        np.testing.assert_array_equal(ta[key], tb[key], err_msg=key)


def train_here(model_dir, overrides):
    """train() in this process (no TensorFlow import to wait for); the result."""
    from cass_tf.train import train

    return train(load_config(CONFIG, [*overrides, f"output.model_dir={model_dir}"]), verbose=False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of 3 epochs x 3 steps (BASE), trained here."""
    model_dir = tmp_path_factory.mktemp("reference") / "run"
    train_here(model_dir, BASE + ["train.epochs=3"])
    return model_dir


# ---- 1. preemption ----

def test_sigterm_mid_epoch_checkpoints_and_resumes_to_identical_weights(tmp_path, reference, capsys):
    """SIGTERM during step 5 (epoch 2, step 2 of 3): step 5 is finished, ckpt-5 written, one line saying how to
    resume, exit 143; the same command again (here, in this process) ends bit for bit where the uninterrupted run
    does, history too."""
    model_dir = tmp_path / "run"
    argv = cli(model_dir, BASE + ["train.epochs=3"])
    proc = signalled(tmp_path, signal.SIGTERM, 5, argv)
    assert proc.returncode == 143, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and not error_lines(proc.stderr)
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("stopped")]
    checkpoints = model_dir / "checkpoints"
    assert line == (f"stopped (SIGTERM) after step 5, checkpoint {checkpoints / 'ckpt-5'} written; "
                    "run the same command again to resume from it")
    latest = tf.train.latest_checkpoint(str(checkpoints))
    assert latest.endswith("ckpt-5") and int(checkpoint_tensors(latest)["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 5
    assert [int(r["epoch"]) for r in read_history(model_dir)] == [1]  # epoch 2 is not finished

    resumed = run_here(capsys, "train", *train_args(model_dir, BASE + ["train.epochs=3"]))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {latest} (epoch 1, step 5)" in resumed.stdout
    assert_same_checkpoints(tf.train.latest_checkpoint(str(checkpoints)),
                            tf.train.latest_checkpoint(str(reference / "checkpoints")))
    rows, expected = read_history(model_dir), read_history(reference)
    assert len(rows) == len(expected) == 3
    for row, want in zip(rows, expected):  # the loss means of epoch 2 count all its steps, across the stop
        assert {k: v for k, v in row.items() if k != "seconds"} == {k: v for k, v in want.items() if k != "seconds"}


def test_sigint_during_the_pipeline_stops_at_an_epoch_end_and_resumes(tmp_path, reference, capsys, monkeypatch):
    """SIGINT during step 3 of pipelines/train_export.py (the last step of epoch 1): the epoch ends, its checkpoint
    ckpt-3 is the resume point, exit 130; rerunning the same command (its main(), in this process) trains on to the
    reference's weights, then evaluates, blesses and pushes as usual."""
    work = tmp_path / "work"
    script = os.path.join(REPO, "pipelines", "train_export.py")
    args = ["--config", CONFIG, *[a for o in BASE + ["output.bless_threshold=1e9"] for a in ("--set", o)],
            "--work_dir", str(work), "--push_dir", str(tmp_path / "pushed"), "--train_steps", "9"]
    proc = signalled(tmp_path, signal.SIGINT, 3, [sys.executable, script, *args])
    assert proc.returncode == 130, proc.stderr[-3000:]
    checkpoints = work / "Trainer" / "model_run" / "checkpoints"
    assert f"stopped (SIGINT) after step 3, checkpoint {checkpoints / 'ckpt-3'} written" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "pushed").exists()

    monkeypatch.chdir(REPO)  # where the subprocess ran (the pipeline's default paths are relative)
    capsys.readouterr()
    assert train_export.main(args) == 0, capsys.readouterr().err[-3000:]
    assert "[Pusher] pushed" in capsys.readouterr().out and (tmp_path / "pushed" / "1" / "saved_model.pb").exists()
    assert_same_checkpoints(tf.train.latest_checkpoint(str(checkpoints)),
                            tf.train.latest_checkpoint(str(reference / "checkpoints")))


# ---- 2. corrupt checkpoints ----

def corrupt(prefix, how):
    """Damages the checkpoint at `prefix` as a crash or a bad copy would."""
    data, index = prefix + ".data-00000-of-00001", prefix + ".index"
    if how == "truncated":
        with open(data, "r+b") as f:
            f.truncate(os.path.getsize(data) // 2)
    elif how == "zero-length":
        open(index, "wb").close()
    elif how == "missing":  # the `checkpoint` index file still names it
        os.remove(data)
        os.remove(index)


@pytest.fixture(scope="module")
def three_checkpoints(tmp_path_factory, reference):
    """A run stopped after 2 epochs (ckpt-3, ckpt-6): the reference's config, trained here."""
    model_dir = tmp_path_factory.mktemp("two") / "run"
    train_here(model_dir, BASE + ["train.epochs=2"])
    return model_dir


@pytest.mark.parametrize("how", ["truncated", "zero-length", "missing"])
def test_corrupt_latest_checkpoint_resumes_from_the_newest_intact_one(tmp_path, three_checkpoints, reference, how):
    from cass_tf.train import CheckpointWarning

    model_dir = tmp_path / "run"
    shutil.copytree(three_checkpoints, model_dir)
    checkpoints = model_dir / "checkpoints"
    corrupt(str(checkpoints / "ckpt-6"), how)
    with pytest.warns(CheckpointWarning) as caught:
        result = train_here(model_dir, BASE + ["train.epochs=3"])
    (warning,) = caught
    assert str(checkpoints / "ckpt-6") in str(warning.message) and f"resuming from {checkpoints / 'ckpt-3'}" in str(
        warning.message)
    assert result.step == 9 and [r["epoch"] for r in result.history] == [1, 2, 3]
    # From ckpt-3 the run retrains steps 4-6: it ends exactly where the uninterrupted one does.
    assert_same_checkpoints(result.checkpoint, tf.train.latest_checkpoint(str(reference / "checkpoints")))


def test_corrupt_checkpoints_on_the_command_line(tmp_path, three_checkpoints, capsys):
    """One `warning:` line when the latest is skipped (a real process: the CLI's warning display); one `error:` line,
    no traceback and nothing changed when no checkpoint is intact (never a silent restart from step 0): the same
    command in this process, while the other runs."""
    skip, broken = tmp_path / "skip", tmp_path / "broken"
    for model_dir in (skip, broken):
        shutil.copytree(three_checkpoints, model_dir)
    corrupt(str(skip / "checkpoints" / "ckpt-6"), "truncated")
    for prefix in ("ckpt-3", "ckpt-6"):
        corrupt(str(broken / "checkpoints" / prefix), "zero-length")
    before = sorted(os.listdir(broken / "checkpoints"))
    proc = subprocess.Popen(cli(skip, BASE + ["train.epochs=2"]), cwd=REPO, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        refused = run_here(capsys, "train", *train_args(broken, BASE + ["train.epochs=2"]))
        out, err = proc.communicate(timeout=240)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err[-3000:]
    (line,) = [x for x in err.splitlines() if x.startswith("warning:")]
    assert f"skipped corrupt checkpoint {skip / 'checkpoints' / 'ckpt-6'}" in line and "ckpt-3" in line
    assert "Traceback" not in err and "trained 2 epochs (6 steps)" in out

    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    (line,) = error_lines(refused.stderr)
    assert f"no intact checkpoint in {broken / 'checkpoints'}" in line and "ckpt-3" in line and "ckpt-6" in line
    assert sorted(os.listdir(broken / "checkpoints")) == before


def test_keep_checkpoints_is_how_many_are_kept(tmp_path):
    result = train_here(tmp_path / "run", BASE + ["train.epochs=3", "train.keep_checkpoints=2",
                                                  "train.steps_per_epoch=1"])
    kept = sorted(f for f in os.listdir(tmp_path / "run" / "checkpoints") if f.endswith(".index"))
    assert kept == ["ckpt-2.index", "ckpt-3.index"] and result.checkpoint.endswith("ckpt-3")
    with pytest.raises(ValueError, match="train.keep_checkpoints: must be"):
        load_config(CONFIG, ["train.keep_checkpoints=0"])


# ---- 3. two writers ----

def test_second_train_export_evaluate_into_a_training_run_are_refused(tmp_path, three_checkpoints, capsys):
    """While a training process holds the run: a second `train` process is refused; so are `export` and `evaluate`
    (run in this process, another one than the training's: the same command, without a TensorFlow import to wait
    for). Each: exit 1, one `error:` line naming the holder, no traceback, nothing written."""
    model_dir = tmp_path / "run"
    shutil.copytree(three_checkpoints, model_dir)
    first = subprocess.Popen(cli(model_dir, BASE + ["train.epochs=100000"]), cwd=REPO, env=env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while RunDir(model_dir).lock_holder() is None:
            assert first.poll() is None and time.time() < deadline, "the training did not take the lock"
            time.sleep(0.2)
        assert RunDir(model_dir).lock_holder()[0] == first.pid
        second = subprocess.Popen(cli(model_dir, BASE + ["train.epochs=100000"]), cwd=REPO, env=env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            here = {"export": ["export", "--model_dir", model_dir, "--export_dir", tmp_path / "export"],
                    "evaluate": ["evaluate", "--model_dir", model_dir]}
            results = {}
            for name, argv in here.items():
                proc = run_here(capsys, *argv)
                results[name] = proc.returncode, proc.stderr
            _, err = second.communicate(timeout=180)
            results["train"] = second.returncode, err
        finally:
            second.kill()
            second.wait()
        for name, (status, err) in results.items():
            assert status == 1 and "Traceback" not in err, (name, err[-2000:])
            (line,) = error_lines(err)
            assert line.startswith(f"error: {model_dir} is in use by process {first.pid} (train"), (name, line)
        assert first.poll() is None  # the first training goes on
        assert not (tmp_path / "export").exists() and not (model_dir / "evaluation.json").exists()
    finally:
        first.kill()
        first.wait()
    with RunDir(model_dir).lock("train"):  # killed (SIGKILL): its lock is stale and taken over
        assert RunDir(model_dir).lock_holder()[0] == os.getpid()


# ---- 4. a full disk ----

@pytest.fixture
def small_disk(tmp_path):
    """A real 16 MiB tmpfs (needs root); skipped where it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root); test_atomic_write_on_a_full_disk injects ENOSPC instead")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk, leave):
    """Fills `disk` but for about `leave` bytes."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def no_temporaries(root):
    return [os.path.join(d, n) for d, dirs, files in os.walk(root) for n in dirs + files
            if n.endswith(".tmp") or n.startswith(".tmp-") or n.endswith("_temp") or ".tmp" in n]


def test_atomic_write_on_a_full_disk(tmp_path, monkeypatch):
    """ENOSPC at the write (injected): NoSpace names the target and says so, the old file stays, no temporary."""
    target = tmp_path / "history.csv"
    target.write_text("old")
    real = open

    def full(path, *args, **kwargs):
        f = real(path, *args, **kwargs)
        f.write = lambda data: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device"))
        return f

    monkeypatch.setattr(atomic, "open", full, raising=False)
    with pytest.raises(atomic.NoSpace, match=f"no space left on device writing {tmp_path / 'history.csv'}"):
        atomic.write_text(target, "new")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["history.csv"]


def test_training_on_a_full_disk(tmp_path, small_disk, three_checkpoints, capsys):
    """The next epoch's checkpoint does not fit: one `error:` line naming it and 'no space left', the previous
    checkpoint intact and still the latest, nothing half-written under a final name; freeing space resumes (the same
    command, in this process)."""
    model_dir = small_disk / "run"
    shutil.copytree(three_checkpoints, model_dir)
    before = {f: (model_dir / "checkpoints" / f).read_bytes() for f in os.listdir(model_dir / "checkpoints")}
    fill(small_disk, 24 * 1024)  # room for history.csv and the logs, not for a checkpoint
    proc = subprocess.run(cli(model_dir, BASE + ["train.epochs=3"]), cwd=REPO, env=env(), capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    (line,) = error_lines(proc.stderr)
    assert "no space left on device" in line and str(model_dir) in line and "ckpt-6" in line, line
    after = {f: (model_dir / "checkpoints" / f).read_bytes() for f in os.listdir(model_dir / "checkpoints")}
    assert after == before and not no_temporaries(model_dir) and not os.path.exists(RunDir(model_dir).lock_file)
    os.remove(small_disk / "filler")
    proc = run_here(capsys, "train", *train_args(model_dir, BASE + ["train.epochs=3"]))
    assert proc.returncode == 0 and "resuming from" in proc.stdout and "ckpt-6" in proc.stdout, proc.stderr[-2000:]


def test_export_and_separate_on_a_full_disk(small_disk, tiny_model_dir, tiny_export):
    from cass_tf.export import export
    from cass_tf.separation import run_files
    from conftest import RATE, signal as mixture

    base = small_disk / "export"
    shutil.copytree(tiny_export, base / "1")
    fill(small_disk, 16 * 1024)
    with pytest.raises(atomic.NoSpace, match=f"no space left on device writing {base / '2'}"):
        export(str(tiny_model_dir), base)
    assert sorted(os.listdir(base)) == ["1"] and not no_temporaries(base)
    assert (base / "1" / "saved_model.pb").read_bytes() == (tiny_export / "saved_model.pb").read_bytes()

    import soundfile as sf

    out = small_disk / "out"
    inputs = [small_disk.parent / "short.wav", small_disk.parent / "long.wav"]
    sf.write(inputs[0], mixture(RATE * 10), RATE, subtype="FLOAT")  # 2 x 2.5 kB of outputs: they fit
    sf.write(inputs[1], mixture(RATE * 600, seed=1), RATE, subtype="FLOAT")  # 2 x 150 kB: they do not
    with pytest.raises(RuntimeError) as info:
        run_files([str(p) for p in inputs], str(tiny_export), str(out), show_progress=False)
    message = str(info.value)
    written = [str(out / "short" / "heart.wav"), str(out / "short" / "respiratory.wav")]
    assert message.startswith(f"no space left on device writing {out / 'long'}")
    assert message.endswith(f"stopped at input {str(inputs[1])!r}, having written 2 outputs: {', '.join(written)}")
    assert sorted(os.listdir(out / "short")) == ["heart.wav", "respiratory.wav"]
    assert (os.listdir(out / "long") if (out / "long").exists() else []) == []  # no WAV, whole or half, no temporary


# ---- 5. the rough edges of the hostile-input work ----

def test_non_callable_progress_is_refused_up_front(tiny_separator):
    from cass_tf.separation import separate
    from conftest import signal as mixture

    for call in (lambda: separate(mixture(640), tiny_separator, progress=5),
                 lambda: tiny_separator.process(mixture(640), progress="yes")):
        with pytest.raises(TypeError, match="^progress must be callable"):
            call()


# ---- 1b. MultiWorkerMirroredStrategy: identical weights, and preemption ----

WORKER = textwrap.dedent("""
    # The training CLI, plus: after train() returns, this worker's final model weights go to $CASS_WEIGHTS_OUT.
    import os
    import sys
    import numpy as np
    import tensorflow as tf
    import cass_tf.models.cass as cass
    import cass_tf.train as training
    from cass_tf.cli import main

    models = []

    class Recording(cass.CASSModel):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            models.append(self)

    training.CASSModel = Recording  # the class training builds (imported there by name)
    real_train, real_strategy, strategies = training.train, training._strategy, []

    def strategy():
        strategies.append(real_strategy())
        return strategies[-1]

    def train(*args, **kwargs):
        result = real_train(*args, **kwargs)
        np.savez(os.environ["CASS_WEIGHTS_OUT"], *[np.asarray(w.numpy()) for w in models[-1].weights],
                 multi_worker=isinstance(strategies[-1], tf.distribute.MultiWorkerMirroredStrategy),
                 replicas=strategies[-1].num_replicas_in_sync)
        return result

    training._strategy = strategy
    training.train = train
    raise SystemExit(main(["train", *sys.argv[1:]]))
""")


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_train_identical_weights_and_stop_together_when_one_is_preempted(tmp_path):
    """Two workers on localhost; worker 1 alone gets SIGTERM (during step 4). Its stop flag travels with step 5's
    all-reduce, so both finish step 5, both checkpoint it, both exit 143; the same two commands again resume both
    from step 5 and end with identical weights (one replica in each worker), which the chief's checkpoint holds;
    the other worker's scratch checkpoints are then gone."""
    signaller, worker_script = tmp_path / "signaller.py", tmp_path / "worker.py"
    signaller.write_text(SIGNALLER)
    worker_script.write_text(WORKER)
    cluster = [f"127.0.0.1:{p}" for p in free_ports(2)]
    overrides = BASE + ["train.epochs=2"]
    dirs = [tmp_path / "chief", tmp_path / "worker1"]

    def start(i, head):
        tf_config = json.dumps({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": i}})
        log = open(tmp_path / f"worker{i}.log", "w")
        proc = subprocess.Popen(head + cli(dirs[i], overrides)[3:], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                env=env(TF_CONFIG=tf_config, CASS_WEIGHTS_OUT=str(tmp_path / f"w{i}.npz")))
        return proc, log

    def finish(runs):
        try:
            for proc, _ in runs:
                proc.wait(timeout=240)
        finally:
            for proc, log in runs:
                proc.kill()
                proc.wait()
                log.close()
        return [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]

    at = {0: "0", 1: "4"}  # worker 0 is never signalled (no step 0)
    runs = [start(i, [sys.executable, str(signaller), str(signal.SIGTERM), at[i], "-m", "cass_tf.train"])
            for i in range(2)]
    logs = finish(runs)
    for (proc, _), log in zip(runs, logs):
        assert proc.returncode == 143, log[-3000:]
    assert "stopped (another worker was signalled) after step 5" in logs[0]
    assert "stopped (SIGTERM) after step 5" in logs[1]
    chief_ckpt = tf.train.latest_checkpoint(str(dirs[0] / "checkpoints"))
    worker_ckpt = tf.train.latest_checkpoint(str(dirs[1] / ".worker_1"))
    assert chief_ckpt.endswith("ckpt-5") and worker_ckpt.endswith("ckpt-5")
    assert_same_checkpoints(chief_ckpt, worker_ckpt)

    runs = [start(i, [sys.executable, str(worker_script)]) for i in range(2)]
    logs = finish(runs)
    for (proc, _), log in zip(runs, logs):
        assert proc.returncode == 0, log[-3000:]
    assert f"resuming from {chief_ckpt} (epoch 1, step 5)" in logs[0]
    chief, worker = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    for result in (chief, worker):  # really distributed: one replica in each of the 2 workers
        assert bool(result["multi_worker"]) and int(result["replicas"]) == 2
    weights = [k for k in chief.files if k.startswith("arr_")]
    assert len(weights) == len([k for k in worker.files if k.startswith("arr_")]) > 0
    for key in weights:
        np.testing.assert_array_equal(chief[key], worker[key], err_msg=key)

    latest = tf.train.latest_checkpoint(str(dirs[0] / "checkpoints"))
    assert int(checkpoint_tensors(latest)["step/.ATTRIBUTES/VARIABLE_VALUE"]) == 6
    from cass_tf.models.cass import CASSModel

    model = CASSModel(load_config(CONFIG, overrides))
    tf.train.Checkpoint(model=model).restore(latest).expect_partial().assert_existing_objects_matched()
    for i, w in enumerate(model.weights):
        np.testing.assert_array_equal(w.numpy(), worker[f"arr_{i}"], err_msg=w.path)
    assert not (dirs[1] / ".worker_1").exists()
    assert [int(r["step"]) for r in read_history(dirs[0])] == [3, 6]
