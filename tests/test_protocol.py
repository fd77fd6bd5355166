"""Tests for the paper-like-for-like parts (issue 10): the magnitude-sum mixture, the paper's evaluation protocol,
the validation split.

Tiny PPG data (conftest's); only the protocol labels use the session's tiny trained model.
"""


import numpy as np
import pytest
import tensorflow as tf

from cass_tf import evaluate
from cass_tf.config import load_config
from cass_tf.data import load_recordings
from cass_tf.data.pipeline import _features, make_datasets
from cass_tf.spectral import Spectral
from conftest import REPO, TINY


def tiny(*overrides):
    """The conftest's tiny PPG config (64 Hz, two 10-s training recordings, one test recording, 16x16 patches)."""
    return load_config(REPO / "configs" / "paper" / "ppg.json", overrides=TINY + list(overrides))


def magnitudes(x, config):
    """|STFT| of the lowest patch.frequency_bins bins, [..., F, T], straight from tf.signal (not cass_tf.spectral)."""
    stft = tf.signal.stft(tf.constant(x, tf.float32), config.stft.window, config.stft.hop, config.stft.n_fft,
                          window_fn=tf.signal.hann_window)
    return np.swapaxes(np.abs(stft.numpy())[..., : config.patch.frequency_bins], -1, -2)


@pytest.fixture(scope="module")
def data():
    return make_datasets(tiny(), train=False)


def test_magnitude_sum_mixture_is_the_sum_of_the_components_magnitudes():
    config = tiny("data.mixture_domain=magnitude_sum")
    data = make_datasets(config, train=False)
    mixture, targets = next(iter(data.test))
    waves = data.test_waveforms
    expected = magnitudes(waves["heart"][:4], config) + magnitudes(waves["respiratory"][:4], config)
    np.testing.assert_allclose(mixture.numpy()[..., 0], expected, rtol=1e-4, atol=1e-4)
    # ...which is not the magnitude of the summed waveform (the default domain): the test can fail
    assert np.abs(magnitudes(waves["mixture"][:4], config) - expected).max() > 1e-2
    np.testing.assert_allclose(targets["heart"].numpy()[..., 0], magnitudes(waves["heart"][:4], config),
                               rtol=1e-4, atol=1e-4)


def test_magnitude_sum_counts_what_is_not_a_component():
    """Sources in the mix that are no component (ECG's respiratory noise) add their own magnitude."""
    config = tiny()
    rng = np.random.default_rng(0)
    a, b, rest = (rng.normal(size=(3, config.crop_length)).astype(np.float32) for _ in range(3))
    waveforms = tf.constant(np.stack([a + b + rest, a, b]))  # [1+K, B, L]
    mixture, _ = _features(Spectral.from_config(config), waveforms, ("heart", "respiratory"), None, "magnitude_sum")
    expected = magnitudes(a, config) + magnitudes(b, config) + magnitudes(rest, config)
    np.testing.assert_allclose(mixture.numpy()[..., 0], expected, rtol=1e-4, atol=1e-4)


def test_paper_protocol_scores_the_ideal_magnitude_zero(data):
    config = tiny()
    errors = evaluate.paper_errors(evaluate.Oracle(data), data, config)
    assert errors.scope == "crops_paper"
    for name in config.components:
        for metric in ("l1", "l2", "linf"):
            np.testing.assert_allclose(errors.scores[name][metric], 0.0, atol=1e-5)
    # the waveform protocol does not: the mixture's phase is not the component's
    assert evaluate.crop_errors(evaluate.Oracle(data), data, config).means()["heart"]["l2"] > 1e-2


@pytest.mark.parametrize("factor", [0.5, 1.25])
def test_paper_protocol_of_a_scaled_magnitude_is_the_scale_error(data, factor):
    """An estimate of factor x the true magnitude, both with the mixture's phase: the inverse STFT is linear, so
    every relative error is |factor - 1| (0.5 and 0.25), by hand."""
    config = tiny()
    oracle = evaluate.Oracle(data)

    def scaled(mixture_features):
        return {n: factor * t for n, t in oracle(mixture_features).items()}

    errors = evaluate.paper_errors(scaled, data, config)
    for name in config.components:
        for metric in ("l1", "l2", "linf"):
            np.testing.assert_allclose(errors.scores[name][metric], abs(factor - 1), rtol=1e-4)


def test_evaluate_run_labels_each_protocol(tiny_model_dir, tiny_model):
    result = evaluate.evaluate_run(str(tiny_model_dir), signals=False, model=tiny_model, protocols=("paper",))
    assert result["protocols"] == ["paper"]
    assert "crops_paper" in result and "crops" not in result
    text = evaluate.report({"run": result}, tiny_model.config.components)
    assert evaluate.TITLES["crops_paper"] in text and "paper protocol" in text
    with pytest.raises(ValueError, match="protocol"):
        evaluate.evaluate_run(str(tiny_model_dir), model=tiny_model, protocols=("papers",))


def test_validation_split_is_held_out_training_recordings():
    config = tiny()
    plain = load_recordings(config)
    held = load_recordings(tiny("data.validation_recordings=1"))
    assert [r.name for r in held["train"]] == [plain["train"][0].name]
    assert [r.name for r in held["test"]] == [plain["train"][1].name]
    np.testing.assert_array_equal(held["test"][0].mixture, plain["train"][1].mixture)
    with pytest.raises(ValueError, match="data.validation_recordings"):
        load_recordings(tiny("data.validation_recordings=2"))


def test_cli_protocol_argument(tiny_model_dir, tmp_path, capsys):
    import json

    from cass_tf import cli

    out = tmp_path / "eval"
    assert cli.main(["evaluate", "--model_dir", str(tiny_model_dir), "--protocol", "paper", "--no_signals",
                     "--out", str(out)]) == 0
    run = json.loads((out / "evaluation.json").read_text())["runs"]["tiny_ppg_run"]
    assert run["protocols"] == ["paper"] and "crops_paper" in run and "crops" not in run
    assert "paper protocol" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:  # a usage error: argparse exits 2 naming the argument
        cli.main(["evaluate", "--model_dir", str(tiny_model_dir), "--protocol", "papers"])
    assert exit_info.value.code == 2 and "--protocol" in capsys.readouterr().err


def test_train_seed_draws_the_crops_and_keeps_the_data():
    from cass_tf.data.pipeline import train_dataset

    assert tiny().training_seed == tiny().seed == 0 and tiny("train.seed=5").training_seed == 5
    first = {}
    for seed in (1, 1, 2):
        config = tiny(f"train.seed={seed}")
        recordings = load_recordings(config)["train"]
        first.setdefault(seed, []).append(next(iter(train_dataset(config, recordings, 4)))[0].numpy())
        # the recordings themselves come from the top-level seed, whatever train.seed says
        np.testing.assert_array_equal(recordings[0].mixture, load_recordings(tiny())["train"][0].mixture)
    np.testing.assert_array_equal(first[1][0], first[1][1])
    assert np.abs(first[1][0] - first[2][0]).max() > 1e-3
