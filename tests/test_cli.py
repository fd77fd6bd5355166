"""Tests for the command line (cass_tf.cli): `cass-tf` and `python -m cass_tf[.module]` as real subprocesses.

The contract: `--help` for the tool and each command; quiet by default (no TensorFlow C++ log lines) with one line
naming the device; every failure ends in one `error: ...` line, exit status 2 for usage errors and 1 otherwise;
`--verbose` adds the traceback.
"""

import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, TF_LOG, TINY, png_size, run_cli, run_here, signal

pytestmark = pytest.mark.slow  # trainings, exports and real subprocesses throughout

CONFIG = str(REPO / "configs" / "paper" / "ppg.json")
COMMANDS = ("train", "evaluate", "export", "separate")


def last_line(stderr):
    return stderr.strip().splitlines()[-1]


def assert_quiet(proc):
    noise = [line for line in proc.stderr.splitlines() if TF_LOG.search(line)]
    assert not noise, noise
    assert "device: CPU" in proc.stderr, proc.stderr[-2000:]


# ---- help ----

def test_help_lists_every_command():
    for argv in ([sys.executable, "-m", "cass_tf", "--help"], [shutil.which("cass-tf") or "cass-tf", "--help"]):
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert all(re.search(rf"^\s+{c}\s", proc.stdout, re.M) for c in COMMANDS), proc.stdout
        assert "tensorflow" not in proc.stderr.lower()


@pytest.mark.parametrize("command, flags", [
    ("train", ["--config", "--set", "--model_dir", "--verbose"]),
    ("evaluate", ["--model_dir", "--config", "--set", "--out", "--no_signals", "--verbose"]),
    ("export", ["--model_dir", "--export_dir", "--version", "--verbose"]),
    ("separate", ["--model", "--out_dir", "--block_seconds", "--plot", "--quiet", "--verbose"]),
])
def test_each_command_has_help(command, flags):
    proc = run_cli(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: python -m cass_tf {command}")
    assert all(flag in proc.stdout for flag in flags), proc.stdout
    module = "separation" if command == "separate" else command
    alone = run_cli("--help", module=f"cass_tf.{module}")
    assert alone.returncode == 0 and alone.stdout.startswith(f"usage: python -m cass_tf.{module}")


# ---- errors ----

@pytest.mark.parametrize("argv, message", [
    (["train"], "the following arguments are required: --config"),
    (["export", "--model_dir", "m", "--export_dir", "e", "--version", "0"], "--version: must be a positive integer"),
    (["separate", "a.wav", "--model", "m", "--out_dir", "o", "--block_seconds", "nan"], "--block_seconds"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: <command>"),
])
def test_usage_errors_exit_2_with_one_error_line(argv, message):
    proc = run_cli(*argv)
    assert proc.returncode == 2, proc.stderr
    assert last_line(proc.stderr).startswith("error: ") and message in last_line(proc.stderr), proc.stderr
    assert sum(line.startswith("error:") for line in proc.stderr.splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_module_without_config_is_a_usage_error():
    proc = run_cli(module="cass_tf.train")
    assert proc.returncode == 2
    assert last_line(proc.stderr) == ("error: the following arguments are required: --config "
                                      "(see python -m cass_tf.train --help)")
    assert "FATAL" not in proc.stderr and "helpshort" not in proc.stderr


def test_model_dir_that_is_a_file_exits_1_and_verbose_adds_the_traceback(tmp_path, capsys):
    """Quiet, one error line, exit 1 (a subprocess); with --verbose the traceback before the same line (the same
    command in this process)."""
    target = tmp_path / "taken"
    target.write_text("a file")
    argv = ["train", "--config", CONFIG, *[a for o in TINY for a in ("--set", o)], "--model_dir", target]
    proc = run_cli(*argv)
    assert proc.returncode == 1
    assert last_line(proc.stderr).startswith("error: model_dir") and "is a file" in last_line(proc.stderr)
    assert "Traceback" not in proc.stderr
    assert_quiet(proc)
    assert target.read_text() == "a file"

    verbose = run_here(capsys, *argv, "--verbose")
    assert verbose.returncode == 1
    assert "Traceback (most recent call last)" in verbose.stderr
    assert last_line(verbose.stderr) == last_line(proc.stderr)


def test_error_line_is_one_line_and_names_unexpected_types():
    from cass_tf.cli import error_line

    assert error_line(ValueError("bad value\nsecond line")) == (
        "error: bad value [...] (--verbose shows the whole message)")
    assert error_line(FileNotFoundError("model not found: 'x'")) == "error: model not found: 'x'"
    assert error_line(KeyError("sample_rate")) == "error: KeyError: 'sample_rate'"
    assert error_line(AssertionError()) == "error: AssertionError"


# ---- a working command (train: tests/test_train.py runs `python -m cass_tf train` and `python -m cass_tf.train`;
# export: tests/test_export.py) ----

def test_separate_with_plot(tiny_export, tmp_path):
    """`cass-tf separate --plot` writes the WAVs and separation.png, quietly, with the device line."""
    from cass_tf import audio

    wav = tmp_path / "take.wav"
    audio.write_audio(wav, signal(64 * 12, rate=64), 64)
    out = tmp_path / "out"
    proc = run_cli("separate", wav, "--model", tiny_export, "--out_dir", out, "--plot")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_quiet(proc)
    assert sorted(p.name for p in (out / "take").iterdir()) == ["heart.wav", "respiratory.wav", "separation.png"]
    width, height = png_size(out / "take" / "separation.png")
    assert width > 800 and height > 400  # three rows: mixture, two estimates
    assert "wrote 3 files" in proc.stdout
