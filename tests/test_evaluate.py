"""Tests for cass_tf.evaluate: crop and whole-signal scores against oracles and NumPy, the CLI, history's test_l2_waveform."""

import csv
import json
import math
import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from cass_tf import cli, evaluate, metrics
from cass_tf.config import ConfigError, load_config
from cass_tf.data.pipeline import make_datasets
from cass_tf.spectral import Spectral
from conftest import REPO, run_cli, run_here

pytestmark = pytest.mark.slow  # trainings, exports and real subprocesses throughout

PPG_SMALL = ["data.sample_rate=64", "stft.n_fft=128", "stft.window=128", "stft.hop=16",
             "data.ppg.train_recordings=3", "data.ppg.test_recordings=2", "data.ppg.seconds=20", "data.cache_dir=null"]
# n_fft 30 has 16 bins: a 16-bin patch covers the whole spectrum, so no lowpass.
FULL_BAND = ["stft.n_fft=30", "stft.window=30", "stft.hop=8", "patch.frequency_bins=16", "patch.frames=16",
             "train.batch_size=5"]
METRICS = {"l1", "l2", "linf", "si_sdr", "sdr"}


def ppg_config(*overrides):
    return load_config(REPO / "configs" / "paper" / "ppg.json", overrides=[*PPG_SMALL, *overrides])


class Oracle:
    """Returns the true component features of each test batch (crop_errors calls once per batch, in order)."""

    def __init__(self, data):
        self.batches = iter(data.test)

    def __call__(self, mixture):
        expected_mixture, targets = next(self.batches)
        np.testing.assert_array_equal(mixture.numpy(), expected_mixture.numpy())
        return targets


def zeros(names):
    return lambda mixture: {n: tf.zeros_like(mixture) for n in names}


def identity(names):
    """Every component estimate is the mixture itself."""
    return lambda mixture: {n: tf.identity(mixture) for n in names}


@pytest.fixture(scope="module")
def full_band():
    config = ppg_config(*FULL_BAND)
    data = make_datasets(config)
    list(data.test)  # fill the test cache, so an Oracle can iterate it beside crop_errors
    return config, data


@pytest.fixture(scope="module")
def trained(tiny_training):
    """The session's tiny PPG training (tests/conftest.py: 2 epochs of 3 steps, one 10 s test recording at 64 Hz):
    (config, model_dir, TrainResult)."""
    config, result = tiny_training
    return config, result.model_dir, result


@pytest.fixture(scope="module")
def heart_only():
    """No respiration: the mixture IS the heart component, so the mixture's phase is the component's own."""
    config = ppg_config(*FULL_BAND, 'data.components=["heart"]', "loss.cross=[]", "data.ppg.respiratory_depth=[0, 0]")
    data = make_datasets(config)
    np.testing.assert_array_equal(data.test_waveforms["mixture"], data.test_waveforms["heart"])
    list(data.test)  # fill the test cache, so an Oracle can iterate it beside crop_errors
    return config, data


def test_oracle_crops_have_zero_error(heart_only):
    config, data = heart_only
    errors = evaluate.crop_errors(Oracle(data), data, config)
    margin = Spectral.from_config(config).margin
    assert 0 < margin < config.crop_length // 4
    assert errors.samples_scored == config.crop_length - 2 * margin
    assert len(errors.examples) == len(data.test_waveforms["mixture"]) == 2 * (20 * 64 // config.crop_length)
    for p in ("l1", "l2", "linf"):
        assert np.all(errors.scores["heart"][p] < 1e-4), (p, errors.scores["heart"][p].max())
    assert np.all(errors.scores["heart"]["si_sdr"] > 70)
    assert np.all(errors.scores["heart"]["sdr"] > 70)


def test_oracle_without_margin_would_fail(heart_only):
    """The margin matters: the crop's first samples are not reconstructed (so skipping them is needed)."""
    config, data = heart_only
    estimates = evaluate.crop_estimates(Oracle(data), data, config)
    reference = data.test_waveforms["heart"]
    edge = np.abs(estimates["heart"][:, :1] - reference[:, :1]).max()
    assert edge > 1e-3 * np.abs(reference).max()


def test_oracle_with_mixture_phase_is_not_perfect(full_band):
    """With two overlapping components the true magnitudes still carry the mixture's phase: error > 0."""
    config, data = full_band
    errors = evaluate.crop_errors(Oracle(data), data, config)
    assert errors.summary()["heart"]["l2"]["mean"] > 0.01


def test_oracle_with_component_phase_is_perfect(full_band):
    """True magnitudes with the true component phase reconstruct each component, even when they overlap."""
    config, data = full_band
    errors = evaluate.crop_errors(Oracle(data), data, config, phase="component")
    assert errors.scope == "crops_component_phase"
    for name in config.components:
        for p in ("l1", "l2", "linf"):
            assert np.all(errors.scores[name][p] < 1e-4), (name, p, errors.scores[name][p].max())
    packaged = evaluate.oracle_errors(data, config)
    assert packaged["crops_component_phase"]["summary"]["heart"]["l2"]["mean"] < 1e-4
    assert packaged["crops"]["summary"]["heart"]["l2"]["mean"] == pytest.approx(
        evaluate.crop_errors(Oracle(data), data, config).summary()["heart"]["l2"]["mean"], rel=1e-9)


def test_zero_model_has_relative_error_one(full_band):
    config, data = full_band
    names = config.components
    crops, signals = evaluate.crop_errors(zeros(names), data, config), evaluate.signal_errors(zeros(names), data, config)
    for errors in (crops, signals):
        summary = errors.summary()
        for name in names:
            for p in ("l1", "l2", "linf"):
                np.testing.assert_array_equal(errors.scores[name][p], 1.0)
                assert summary[name][p]["mean"] == 1.0
            np.testing.assert_array_equal(errors.scores[name]["sdr"], 0.0)
            assert np.all(np.isneginf(errors.scores[name]["si_sdr"]))
    assert evaluate.waveform_l2(zeros(names), data, config) == {n: 1.0 for n in names}


def test_identity_model_matches_numpy(full_band):
    """Estimate = mixture: the error of component c is ||mixture - c|| / ||c||, computed here in NumPy."""
    config, data = full_band
    names = config.components
    margin = Spectral.from_config(config).margin
    crops = evaluate.crop_errors(identity(names), data, config)
    signals = evaluate.signal_errors(identity(names), data, config)
    inner = slice(margin, config.crop_length - margin)
    for name in names:
        other = data.test_waveforms["mixture"][:, inner].astype(np.float64) - data.test_waveforms[name][:, inner]
        reference = data.test_waveforms[name][:, inner].astype(np.float64)
        for p, order in (("l1", 1), ("l2", 2), ("linf", np.inf)):
            expected = np.linalg.norm(other, order, axis=1) / np.linalg.norm(reference, order, axis=1)
            np.testing.assert_allclose(crops.scores[name][p], expected, rtol=2e-3)
            assert crops.summary()[name][p]["mean"] == pytest.approx(np.mean(crops.scores[name][p]), rel=1e-12)
            assert crops.summary()[name][p]["median"] == pytest.approx(np.median(crops.scores[name][p]), rel=1e-12)
        for i, recording in enumerate(data.recordings["test"]):
            reference = recording.components[name].astype(np.float64)
            expected = np.linalg.norm(recording.mixture - reference) / np.linalg.norm(reference)
            assert signals.scores[name]["l2"][i] == pytest.approx(expected, rel=2e-3)
            assert signals.scores[name]["sdr"][i] == pytest.approx(-20 * np.log10(expected), abs=0.02)
    assert signals.examples == [r.name for r in data.recordings["test"]]
    assert signals.samples_scored == [len(r) for r in data.recordings["test"]]
    waveform = evaluate.waveform_l2(identity(names), data, config)
    for name in names:
        assert waveform[name] == pytest.approx(crops.summary()[name]["l2"]["mean"], rel=1e-9)


def test_event_scores_of_the_identity_model_are_those_of_the_mixture(full_band):
    """Estimate = mixture: each component's event score is metrics.component_event_scores on the mixture itself."""
    config, data = full_band
    scores = evaluate.event_scores(identity(config.components), data, config)
    assert set(scores) == set(config.components)
    for name in config.components:
        expected = np.mean([metrics.component_event_scores(name, r.mixture, r.events[name], config.data.sample_rate)
                            ["rate_error"] for r in data.recordings["test"]])
        assert scores[name]["rate_error"] == pytest.approx(expected, abs=0.2)  # mixture vs its reconstruction
    assert scores["heart"]["rate_error"] < 1.0  # the pulse dominates the mixture: its rate is the heart's


def test_silent_reference_left_out_of_summary(full_band):
    config, data = full_band
    waveforms = dict(data.test_waveforms)
    waveforms["heart"] = waveforms["heart"].copy()
    waveforms["heart"][0] = 0.0
    silenced = type(data)(data.train, data.test, waveforms, data.recordings)
    errors = evaluate.crop_errors(zeros(config.components), silenced, config)
    assert errors.scores["heart"]["l2"][0] == 0.0  # 0/0 is 0 (metrics.relative_error), yet not a score
    summary = errors.summary()["heart"]["l2"]
    assert summary["silent_excluded"] == 1 and summary["count"] == len(errors.examples) - 1
    assert summary["mean"] == 1.0


def test_trained_model_scores(trained):
    config, model_dir, _ = trained
    from cass_tf.models.cass import restore

    model = restore(model_dir)
    data = make_datasets(config)
    estimates = evaluate.crop_estimates(model, data, config)
    errors = evaluate.crop_errors(model, data, config)
    margin = Spectral.from_config(config).margin
    inner = slice(margin, config.crop_length - margin)
    for name in config.components:
        difference = estimates[name][:, inner].astype(np.float64) - data.test_waveforms[name][:, inner]
        expected = np.linalg.norm(difference, axis=1) / np.linalg.norm(data.test_waveforms[name][:, inner], axis=1)
        np.testing.assert_allclose(errors.scores[name]["l2"], expected, rtol=1e-5)
        assert np.all(np.isfinite(errors.scores[name]["si_sdr"]))
    outputs = evaluate.discriminator_outputs(model, data)
    assert set(outputs) == set(config.components)
    assert set(outputs["heart"]) == {"respiratory", "real"}
    for per in outputs.values():
        for p in per.values():
            assert p.shape == (len(errors.examples),) and np.all((p >= 0) & (p <= 1))


def test_history_has_waveform_test_l2(trained):
    """history.csv logs test_l2_waveform/<component> every epoch; the restored model reproduces the last value."""
    config, model_dir, result = trained
    from cass_tf.models.cass import restore

    with open(os.path.join(model_dir, "history.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for name in config.components:
        values = [float(r[f"test_l2_waveform/{name}"]) for r in rows]
        assert all(math.isfinite(v) and 0 < v < 10 for v in values)
    restored = evaluate.waveform_l2(restore(model_dir), make_datasets(config), config)
    for name in config.components:
        assert restored[name] == pytest.approx(float(rows[-1][f"test_l2_waveform/{name}"]), rel=1e-4)
        assert result.history[-1][f"test_l2_waveform/{name}"] == pytest.approx(restored[name], rel=1e-4)


def test_incompatible_config_is_refused(trained):
    config, model_dir, _ = trained
    other = config.replace(["patch.frames=32"])
    with pytest.raises(ConfigError, match="patch.frames"):
        evaluate.evaluate_run(model_dir, other)
    # a magnitude model's outputs read as complex masks, or its inputs levelled, would be scored wrongly
    for override in ("model.output=complex_mask", "model.input_rms=1.0"):
        with pytest.raises(ConfigError, match=override.split("=")[0]):
            evaluate.evaluate_run(model_dir, config.replace([override]))


def test_cli_writes_json_and_markdown(trained, tmp_path, capsys):
    """The command in this process (test_cli_subprocess_error_has_no_traceback runs `python -m cass_tf.evaluate`)."""
    config, model_dir, _ = trained
    out = tmp_path / "eval"
    done = run_here(capsys, "evaluate", "--model_dir", model_dir, "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Test crops" in done.stdout and "Whole test signals" in done.stdout
    document = json.loads((out / "evaluation.json").read_text())
    assert document["components"] == list(config.components)
    run = document["runs"]["tiny_ppg_run"]  # the model_dir's name
    assert run["mode"] == "cass_cross" and run["checkpoint"].endswith("ckpt-6")
    # crops of 32 + 15 * 8 = 152 samples (16 frames), 640 // 152 = 4 of the one 10 s test recording at 64 Hz
    for scope, count in (("crops", 4), ("signals", 1), ("crops_component_phase", 4)):
        assert len(run[scope]["examples"]) == count
        for name in config.components:
            summary = run[scope]["summary"][name]
            assert set(summary) == METRICS
            for metric in METRICS:
                assert set(summary[metric]) == {"mean", "median", "count", "silent_excluded"}
                assert math.isfinite(summary[metric]["mean"]) and summary[metric]["count"] == count
    markdown = (out / "evaluation.md").read_text()
    assert markdown.count("| model | L1 | L2 | L∞ | SI-SDR (dB) | SDR (dB) |") == 6  # 3 test sets x 2 components
    assert markdown.count("| tiny_ppg_run |") == 8  # 3 test sets x 2 components, one event table per component
    assert markdown.count("| model | rate error (/min) |") == 2
    assert set(run["events"]) == set(config.components)
    assert all(math.isfinite(scores["rate_error"]) for scores in run["events"].values())
    assert markdown.count("| ideal magnitude (oracle) |") == 6  # every table
    assert markdown.count("| ideal complex mask (oracle) |") == 4  # crops and whole signals
    assert set(document["oracle"]) == {"crops", "crops_component_phase", "signals", "complex_mask"}
    assert set(document["oracle"]["complex_mask"]) == {"crops", "signals"}


def test_cli_missing_model_dir(tmp_path, capsys):
    assert cli.main(["evaluate", "--model_dir", str(tmp_path / "nope")]) == 1
    assert "model_dir not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["evaluate", "--model_dir", str(tmp_path / "empty")]) == 1
    assert "no config.json" in capsys.readouterr().err


def test_cli_missing_checkpoint(trained, tmp_path, capsys):
    _, model_dir, _ = trained
    (tmp_path / "untrained").mkdir()
    (tmp_path / "untrained" / "config.json").write_text(pathlib.Path(model_dir, "config.json").read_text())
    assert cli.main(["evaluate", "--model_dir", str(tmp_path / "untrained")]) == 1
    assert "no checkpoint" in capsys.readouterr().err


def test_cli_subprocess_error_has_no_traceback(tmp_path):
    done = run_cli("--model_dir", tmp_path / "nope", module="cass_tf.evaluate", timeout=120)
    assert done.returncode == 1
    assert "error: model_dir not found" in done.stderr and "Traceback" not in done.stderr
