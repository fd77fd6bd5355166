"""Unit tests for cass_tf.rundir: the run directory's layout, its history and partial-epoch files (round trips), its
config errors, and the advisory lock (live, dead and foreign holders)."""

import json
import os
import subprocess
import sys

import pytest

from cass_tf.rundir import RunDir, RunDirLocked
from conftest import REPO


def test_run_dir_layout(tmp_path):
    run = RunDir(str(tmp_path))
    assert [os.path.relpath(p, tmp_path) for p in (run.config, run.checkpoints, run.history, run.logs, run.curves,
                                                      run.example)] == [
        "config.json", "checkpoints", "history.csv", "logs", "training_curves.png", "example.png"]
    assert run.outputs() == [run.config, run.checkpoints + os.sep, run.history, run.logs + os.sep, run.curves,
                             run.example]
    assert [os.path.relpath(p, tmp_path) for p in (run.wall_time, run.scores, run.ablation, run.precision_scores)] == [
        "wall_time.json", "scores.json", "ablation.json", "precision_scores.json"]  # the pipelines' files
    assert run.worker_checkpoints(3) == os.path.join(str(tmp_path), ".worker_3")
    assert repr(run) == f"RunDir({str(tmp_path)!r})"


def test_load_config_errors_and_round_trip(tmp_path):
    with pytest.raises(FileNotFoundError, match="model_dir not found"):
        RunDir(tmp_path / "nope").load_config()
    run = RunDir(tmp_path)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        run.load_config()
    with open(REPO / "configs" / "paper" / "ppg.json") as f:
        plain = json.load(f)
    (tmp_path / "config.json").write_text(json.dumps(plain))
    assert run.load_config().name == plain["name"]


def test_history_round_trip_and_legacy_columns(tmp_path):
    run = RunDir(str(tmp_path))
    assert run.read_history() == []
    rows = [{"epoch": 1, "step": 3, "ae_loss/a": 0.5, "test_l2_waveform/a": 0.25}]
    run.write_history(rows)
    assert run.read_history() == rows and type(run.read_history()[0]["epoch"]) is int
    (tmp_path / "history.csv").write_text("epoch,step,test_l2/a,test_rel_l2/a\n1,3,0.5,0.75\n")
    assert run.read_history() == [{"epoch": 1, "step": 3, "test_l2_waveform/a": 0.5, "test_l2_magnitude/a": 0.75}]


def test_history_columns_added_later_read_back_without_the_empty_cells(tmp_path):
    run = RunDir(tmp_path)
    rows = [{"epoch": 1, "step": 2, "ae_loss/a": 1.5}, {"epoch": 2, "step": 4, "ae_loss/a": 1.25, "new/a": 0.5}]
    run.write_history(rows)  # the columns of the last row: the first row's "new/a" cell is empty
    assert run.read_history() == rows


def test_partial_epoch_is_read_only_for_its_step(tmp_path):
    run = RunDir(tmp_path)
    assert run.read_partial(5) is None
    run.write_partial(5, 1.5, {"ae_loss/a": 2.0})
    assert run.read_partial(5) == {"step": 5, "seconds": 1.5, "totals": {"ae_loss/a": 2.0}}
    assert run.read_partial(6) is None  # saved with another checkpoint
    (tmp_path / "partial_epoch.json").write_text("{torn")
    assert run.read_partial(5) is None


def test_create_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="model_dir .*is a file, not a directory"):
        RunDir(tmp_path / "file" / "run").create()
    RunDir(tmp_path / "a" / "run").create()
    assert (tmp_path / "a" / "run").is_dir()


def test_lock_is_released_on_an_exception(tmp_path):
    run_dir = RunDir(tmp_path)
    with pytest.raises(KeyError):
        with run_dir.lock("train"):
            raise KeyError("boom")
    assert not os.path.exists(run_dir.lock_file)
    with pytest.raises(FileNotFoundError, match="model_dir not found"):
        with RunDir(tmp_path / "nope").lock("train"):
            pass


def test_lock_refuses_a_live_holder_and_takes_over_a_dead_ones(tmp_path):
    run_dir = RunDir(tmp_path)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open(run_dir.lock_file, "w") as f:
            f.write(f"{sleeper.pid} {os.uname().nodename} train\n")
        with pytest.raises(RunDirLocked, match=f"{tmp_path} is in use by process {sleeper.pid} \\(train"):
            with run_dir.lock("export"):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()
    with run_dir.lock("export"):  # the holder is dead now: taken over
        assert run_dir.lock_holder() == (os.getpid(), os.uname().nodename, "export")
        with pytest.raises(RunDirLocked, match=f"in use by process {os.getpid()}"):
            with run_dir.lock("evaluate"):  # not re-entrant, not even in the same process
                pass
    assert not os.path.exists(run_dir.lock_file)
    with open(run_dir.lock_file, "w") as f:  # another host's process cannot be checked from here: refused
        f.write("1 some-other-host train\n")
    with pytest.raises(RunDirLocked, match="process 1 \\(train on some-other-host\\)"):
        with run_dir.lock("train"):
            pass
    assert sorted(os.listdir(tmp_path)) == ["lock"]  # and no temporary left behind
