"""Tests for the separation figures: what `plots.separation` is handed (training's example.png, drawn from the model
training holds, and `separate --plot`) equals `separate()`'s outputs, and the PNG it writes has a row per signal."""

import numpy as np
import pytest
import soundfile as sf
from conftest import png_size

from cass_tf import plots
from cass_tf.config import load_config
from cass_tf.separation import Separator, run_files, separate
from cass_tf.training import draw_example


@pytest.fixture
def captured(monkeypatch):
    """Replaces plots.separation with a recorder of its arguments (and still draws, so the PNG is checked too)."""
    calls = []
    real = plots.separation

    def record(path, mixture, estimates, sample_rate, window, hop, truth=None, title=None, traces=None):
        calls.append(dict(path=path, mixture=mixture, estimates=estimates, rate=sample_rate, window=window, hop=hop,
                          truth=truth, title=title, traces=traces))
        return real(path, mixture, estimates, sample_rate, window, hop, truth, title, traces)

    monkeypatch.setattr(plots, "separation", record)
    return calls


def test_training_writes_example_png(tiny_model_dir):
    width, height = png_size(tiny_model_dir / "example.png")
    assert width > 800 and height > 600


def test_example_draws_separate_outputs_beside_the_truth(tiny_model, tiny_model_dir, captured, tmp_path):
    from cass_tf.data.pipeline import make_datasets

    separator = Separator(tiny_model_dir)  # the same weights, loaded the way a user loads them
    config = load_config(tiny_model_dir / "config.json")
    recording = make_datasets(config, train=False).recordings["test"][0]
    estimates = draw_example(tiny_model, recording, str(tmp_path / "example.png"))
    (call,) = captured
    samples = min(len(recording), max(10 * 64, config.stft.samples_for(config.patch.frames)))  # 10 s at 64 Hz
    assert len(call["mixture"]) == samples
    np.testing.assert_array_equal(call["mixture"], recording.mixture[:samples])
    expected = separate(recording.mixture[:samples], separator)
    assert list(call["estimates"]) == list(config.components) == list(call["truth"])
    for name in config.components:
        np.testing.assert_array_equal(call["estimates"][name], expected[name])
        np.testing.assert_array_equal(estimates[name], expected[name])
        np.testing.assert_array_equal(call["truth"][name], recording.components[name][:samples])
    assert (call["rate"], call["window"], call["hop"]) == (64, config.stft.window, config.stft.hop)
    assert call["title"] == recording.name
    assert png_size(tmp_path / "example.png")[1] > png_size(_plot_without_truth(call, tmp_path))[1]


def _plot_without_truth(call, tmp_path):
    path = str(tmp_path / "no_truth.png")
    plots.separation(path, call["mixture"], call["estimates"], call["rate"], call["window"], call["hop"])
    return path


def test_separate_plot_draws_what_was_written(tiny_model_dir, captured, tmp_path):
    """run_files(plot=True): separation.png beside the WAVs, drawn from the separated signals at the file's rate."""
    separator = Separator(tiny_model_dir)
    path = tmp_path / "take.wav"
    rng = np.random.default_rng(3)
    sf.write(path, rng.standard_normal(128 * 15).astype(np.float32), 128, subtype="FLOAT")  # twice the model's rate
    written = run_files([str(path)], separator, str(tmp_path / "out"), show_progress=False, plot=True)
    assert sorted(p.rsplit("/", 1)[1] for p in written) == ["heart.wav", "respiratory.wav", "separation.png"]
    (call,) = captured
    expected = separate(str(path), separator)
    for name in separator.components:
        np.testing.assert_array_equal(call["estimates"][name], expected[name])
    assert call["truth"] is None and call["rate"] == 128
    config = load_config(tiny_model_dir / "config.json")
    assert (call["window"], call["hop"]) == (2 * config.stft.window, 2 * config.stft.hop)  # the model's, in seconds
    assert png_size(tmp_path / "out" / "take" / "separation.png")[0] > 800


def test_long_signals_are_drawn_in_bounded_points(tmp_path):
    """Ten minutes at 8 kHz: the spectrogram hop grows and the waveform becomes a min/max envelope."""
    rate = 8000
    x = np.sin(np.arange(rate * 600, dtype=np.float64) * 0.01).astype(np.float32)
    times, low, high = plots._envelope(x, rate)
    assert len(times) == plots.MAX_POINTS and np.all(low <= high) and low.min() == x.min() and high.max() == x.max()
    path = plots.separation(str(tmp_path / "long.png"), x, {"a": x}, rate, 512, 128)
    assert png_size(path)[0] > 800


def test_separation_draws_rate_traces_under_the_waveforms(tmp_path):
    """`traces` add one row each: the figure grows by that many rows' height."""
    x = np.sin(np.arange(640) / 5.0)
    plain = plots.separation(str(tmp_path / "a.png"), x, {"heart": x}, 64, 32, 8)
    traced = plots.separation(str(tmp_path / "b.png"), x, {"heart": x}, 64, 32, 8,
                              traces={"pulse rate (/min)": (np.array([2.0, 7.0]), np.array([70.0, 72.0]))})
    (width, height), (width2, height2) = png_size(plain), png_size(traced)
    assert width == width2 and height2 - height == pytest.approx(1.8 * 110, abs=3)
