"""Tests for cass_tf.atomic: publishing files and directories in one step, cleaning up after killed writers, and
the error when a file stands where a directory must go."""

import os
import subprocess
import sys

import pytest

from cass_tf import atomic
from cass_tf.rundir import RunDir


def dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_write_text_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a" / "b.txt"
    atomic.write_text(path, "one")
    atomic.write_text(path, "two")
    assert path.read_text() == "two"
    assert os.listdir(path.parent) == ["b.txt"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.writing(path) as f:
            f.write("half")
            raise RuntimeError("boom")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["x.json"]


def test_temporary_carries_the_pid_and_is_hidden(tmp_path):
    path = tmp_path / "out.wav"
    with atomic.writing(path, "wb") as f:
        temp = os.path.basename(f.name)
        assert temp.startswith(f".out.wav.{os.getpid()}.") and temp.endswith(".tmp")
        f.write(b"data")
    assert path.read_bytes() == b"data"


def test_stale_file_temporaries_of_dead_writers_are_removed(tmp_path):
    """A kill -9 mid-write leaves `.<name>.<pid>.<hex>.tmp`; the next write of that file removes it if the pid is
    dead, and leaves a live writer's temporary, another target's, and names it cannot prove are its own."""
    hexa = "0" * 32
    dead = tmp_path / f".out.wav.{dead_pid()}.{hexa}.tmp"
    live = tmp_path / f".out.wav.{os.getppid()}.{hexa}.tmp"
    other = tmp_path / f".other.wav.{dead_pid()}.{hexa}.tmp"
    foreign = tmp_path / f".out.wav.{hexa}.tmp"  # no pid: not provably ours
    for leftover in (dead, live, other, foreign):
        leftover.write_text("partial")
    atomic.write_text(tmp_path / "out.wav", "complete")
    assert sorted(os.listdir(tmp_path)) == sorted(["out.wav", live.name, other.name, foreign.name])


def test_directory_appears_complete_in_one_rename(tmp_path):
    final = tmp_path / "base" / "3"
    with atomic.directory(final) as temp:
        assert os.path.basename(temp).startswith(f".tmp-3-{os.getpid()}-")
        (open(os.path.join(temp, "saved_model.pb"), "w")).close()
        assert not final.exists()
    assert os.listdir(final) == ["saved_model.pb"] and os.listdir(final.parent) == ["3"]


def test_directory_refuses_an_existing_target_and_cleans_up(tmp_path):
    (tmp_path / "1").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        with atomic.directory(tmp_path / "1"):
            pytest.fail("an existing target must be refused before the body runs")
    with pytest.raises(RuntimeError):
        with atomic.directory(tmp_path / "2") as temp:
            open(os.path.join(temp, "x"), "w").close()
            raise RuntimeError("crash")
    assert os.listdir(tmp_path) == ["1"]


def test_stale_directory_of_a_dead_export_is_removed(tmp_path):
    hexa = "f" * 32
    dead = tmp_path / f".tmp-1-{dead_pid()}-{hexa}"
    live = tmp_path / f".tmp-1-{os.getppid()}-{hexa}"
    for leftover in (dead, live):
        (leftover / "variables").mkdir(parents=True)
    with atomic.directory(tmp_path / "1") as temp:
        open(os.path.join(temp, "saved_model.pb"), "w").close()
    assert sorted(os.listdir(tmp_path)) == sorted(["1", live.name])
    assert os.listdir(tmp_path / "1") == ["saved_model.pb"]


@pytest.mark.parametrize("where", ["itself", "parent"])
def test_a_file_in_the_way_of_a_directory_is_a_clear_error(tmp_path, where):
    blocker = tmp_path / "taken"
    blocker.write_text("a regular file")
    path = blocker if where == "itself" else blocker / "run"
    with pytest.raises(ValueError, match=rf"model_dir '{path}'.*'{blocker}' is a file"):
        RunDir(str(path)).create()
    with pytest.raises(ValueError, match="is a file"):
        atomic.write_text(blocker / "x.txt", "")


def test_write_audio_publishes_atomically_and_cleans_a_killed_writers_leftover(tmp_path):
    import numpy as np

    from cass_tf import audio

    stale = tmp_path / f".heart.wav.{dead_pid()}.{'c' * 32}.tmp"
    stale.write_bytes(b"RIFF half a file")
    x = np.linspace(-0.5, 0.5, 100, dtype=np.float32)
    audio.write_audio(tmp_path / "heart.wav", x, 64)
    assert os.listdir(tmp_path) == ["heart.wav"]
    y, rate = audio.read_audio(tmp_path / "heart.wav")
    assert rate == 64 and np.array_equal(y, x)
