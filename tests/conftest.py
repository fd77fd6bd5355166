"""Shared fixtures and helpers: a tiny trained PPG model (width 2, 16x16 patches, 64 Hz), trained, restored and
exported once per test session; a PPG-like test signal; the Keras reference separation and its tolerance; the one
way tests run the command line (`run_cli` in a subprocess, `run_here` in this process) and build a subprocess's
environment (`env`).

TensorFlow's C++ logs are set to level 2 here, before any test module imports TensorFlow (pytest imports this file
first), so test modules do not set it again."""

import os
import pathlib
import re
import struct
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = ["data.sample_rate=64", "data.ppg.train_recordings=2", "data.ppg.test_recordings=1", "data.ppg.seconds=10",
        "data.cache_dir=null", "model.width=2", "patch.frequency_bins=16", "patch.frames=16", "stft.n_fft=32",
        "stft.window=32", "stft.hop=8", "train.epochs=2", "train.steps_per_epoch=3", "train.batch_size=4",
        "train.ae_learning_rate=1e-3"]
# What TensorFlow writes to stderr while loading and starting (absl-style C++ lines such as "I0000 00:00:... ]").
TF_LOG = re.compile(r"^[IWEF]\d{4} |cpu_feature_guard|absl::InitializeLog|oneDNN custom operations|cuInit", re.M)


def env(**extra: str | None) -> dict[str, str]:
    """A subprocess's environment: this checkout first on PYTHONPATH, no GPU, no TF_CONFIG, TensorFlow's C++ logs at
    level 2; then `extra` (a value of None removes that variable)."""
    result = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    result.update(PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), CUDA_VISIBLE_DEVICES="",
                  TF_CPP_MIN_LOG_LEVEL="2")
    result.update(extra)
    return {k: v for k, v in result.items() if v is not None}


ENV = env()


def run_cli(*args, module: str = "cass_tf", timeout: float = 300,
            **extra_env: str | None) -> subprocess.CompletedProcess:
    """`python -m <module> args` in a real subprocess from the repository root, as a user runs it: without
    TF_CPP_MIN_LOG_LEVEL (the command line must quiet TensorFlow itself); stdout and stderr captured as text."""
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          env=env(TF_CPP_MIN_LOG_LEVEL=None, **extra_env), timeout=timeout)


def run_here(capsys, *args) -> subprocess.CompletedProcess:
    """`python -m cass_tf args` in this process (cass_tf.cli.main: the same parsing, output and error contract,
    without a TensorFlow import to wait for), stdout and stderr from `capsys`. A test whose point is the process
    (TensorFlow's logs quieted, signals, kills, a second process, the `python -m cass_tf.<module>` entry points) runs
    `run_cli`; a test that runs several commands runs one of them with `run_cli` and the others here."""
    from cass_tf import cli

    argv = list(map(str, args))
    capsys.readouterr()
    try:
        status = cli.main(argv)
    except SystemExit as e:  # a usage error (argparse exits)
        status = e.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["cass-tf", *argv], status, out, err)


def error_lines(stderr: str) -> list[str]:
    """The `error: ...` lines of a command's stderr."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]
RATE = 64  # the tiny PPG model's sample rate
NAMES = ("heart", "respiratory")

# Property-based tests (tests/test_properties.py): "ci", bounded and reproducible, unless HYPOTHESIS_PROFILE says
# "thorough" (many more random examples, e.g. `HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_properties.py`).
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=2000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def tiny_training(tmp_path_factory):
    """(config, TrainResult) of the tiny PPG model's training, in `<basetemp>/tiny_ppg_run` (read it, never write
    into it: copy it to a test's tmp_path first)."""
    from cass_tf.config import load_config
    from cass_tf.train import train

    model_dir = tmp_path_factory.getbasetemp() / "tiny_ppg_run"
    config = load_config(REPO / "configs" / "paper" / "ppg.json", [*TINY, f"output.model_dir={model_dir}"])
    return config, train(config, verbose=False)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_training) -> pathlib.Path:
    """A training model_dir (config.json + checkpoints/) of the tiny PPG model."""
    return pathlib.Path(tiny_training[1].model_dir)


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    """The tiny model restored from its model_dir (a CASSModel)."""
    from cass_tf.models.cass import restore

    return restore(str(tiny_model_dir))


@pytest.fixture(scope="session")
def tiny_export(tiny_model_dir, tmp_path_factory) -> pathlib.Path:
    """`<base>/1`: the tiny model exported as version 1 of a TF Serving base directory (do not add versions)."""
    from cass_tf.export import export

    return pathlib.Path(export(str(tiny_model_dir), tmp_path_factory.mktemp("tiny_export") / "tiny"))


@pytest.fixture(scope="session")
def tiny_separator(tiny_export):
    """A Separator loaded from `tiny_export`."""
    from cass_tf.separation import Separator

    return Separator(tiny_export)


def signal(samples, seed=0, rate=RATE):
    """A PPG-like mixture: a pulse-ish harmonic series, slow respiration and a little noise (float32)."""
    t = np.arange(samples) / rate
    x = sum(np.sin(2 * np.pi * 1.2 * k * t + k) / k for k in range(1, 5)) + 0.5 * np.sin(2 * np.pi * 0.25 * t)
    return (x + 0.05 * np.random.default_rng(seed).normal(size=samples)).astype(np.float32)


def reference(model, x):
    """`windows.separate_at_level` on a CASSModel (each row at its own level), outside any SavedModel: [samples] or
    [batch, samples] in, the same shape per component out (NumPy)."""
    from cass_tf.spectral import Spectral
    from cass_tf.windows import separate_at_level

    batch = np.asarray(x, np.float32)
    spectral = Spectral.from_config(model.config)
    out = separate_at_level(spectral, lambda f: model(f, training=False), model.config.components,
                            batch if batch.ndim == 2 else batch[np.newaxis], model.config.model.input_rms)
    return {n: v.numpy() if batch.ndim == 2 else v.numpy()[0] for n, v in out.items()}


def assert_close(actual, expected, tolerance=1e-5):
    """Equal to `tolerance` of the expected signal's peak (float32 round-off of the same computation)."""
    scale = max(1e-3, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tolerance * scale)


def png_size(path):
    """(width, height) of a PNG, from its IHDR chunk; fails unless the file is a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


# The session's trained tiny model: a test that needs it waits for a training and an export.
TRAINED_FIXTURES = {"tiny_training", "tiny_model_dir", "tiny_model", "tiny_export", "tiny_separator"}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a test that trains, exports, runs a real subprocess or takes more than a "
                                       "few seconds (every test that takes a TRAINED_FIXTURES fixture is one); CI runs "
                                       "them too, `python -m pytest -m 'not slow' tests` (the fast subset) leaves them "
                                       "out")


def pytest_collection_modifyitems(items):
    """Marks `slow` every test that takes the session's trained model (TRAINED_FIXTURES)."""
    for item in items:
        if TRAINED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
