"""Tests for the multi-lead CASS model (model.multilead): lead-permutation equivariance for any number of leads, the
one-lead model unchanged (parameters counted by hand), the per-lead losses against hand-derived values, multi-lead
crops and lead dropout, config checks, and a tiny end-to-end training on 4-lead synthetic recordings."""

import json
import math
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from cass_tf import losses
from cass_tf.config import ConfigError, completed, load_config
from cass_tf.data import load_recordings, pipeline
from cass_tf.models.cass import CASSModel, restore
from cass_tf.models.resnet9 import build_multilead_autoencoder
from cass_tf.separator import Separator

REPO = pathlib.Path(__file__).resolve().parents[1]
F = T = 16
TINY = ["data.ecg.train_recordings=3", "data.ecg.test_recordings=1", "data.ecg.seconds=4", "data.cache_dir=null",
        "data.validation_recordings=0", "model.width=2", "patch.frequency_bins=16", "patch.frames=16",
        "stft.n_fft=32", "stft.window=32", "stft.hop=8", "train.batch_size=4", "train.leads_kept=null",
        "train.init_from=null"]


def tiny(*overrides):
    return load_config(REPO / "configs/ecg_leads.json", TINY + list(overrides))


@pytest.fixture(scope="module")
def autoencoder():
    keras.utils.set_random_seed(0)
    return build_multilead_autoencoder((F, T), 2, "ae")


@pytest.mark.parametrize("leads", [1, 3, 4, 8])
def test_permuting_the_leads_permutes_the_outputs_exactly(autoencoder, leads):
    x = np.random.default_rng(leads).normal(size=(2, leads, F, T, 2)).astype(np.float32)
    order = np.random.default_rng(leads + 10).permutation(leads)
    y = autoencoder(x, training=False).numpy()
    assert y.shape == x.shape
    permuted = autoencoder(x[:, order], training=False).numpy()
    np.testing.assert_allclose(permuted, y[:, order], rtol=0, atol=1e-5 * np.abs(y).max())


def test_each_lead_sees_the_others(autoencoder):
    """The context is used: changing lead 1 changes lead 0's output; a lead alone differs from it among others."""
    x = np.random.default_rng(0).normal(size=(1, 3, F, T, 2)).astype(np.float32)
    changed = x.copy()
    changed[:, 1] *= 3.0
    first = autoencoder(x, training=False).numpy()[:, 0]
    assert np.abs(autoencoder(changed, training=False).numpy()[:, 0] - first).max() > 1e-3 * np.abs(first).max()
    alone = autoencoder(x[:, :1], training=False).numpy()[:, 0]
    assert np.abs(alone - first).max() > 1e-3 * np.abs(first).max()


def _resnet9_autoencoder_weights(width: int, inputs: int) -> int:
    """Weights of build_autoencoder's complex path, counted by hand: 3x3 convolutions without bias, 4 BatchNorm
    numbers per channel (gamma, beta, moving mean and variance), the output conv with bias."""
    w = width

    def conv(a, b):  # 3x3 conv a -> b channels and its BatchNorm
        return 9 * a * b + 4 * b

    encoder = conv(inputs, w) + conv(w, 2 * w) + 2 * conv(2 * w, 2 * w) + conv(2 * w, 4 * w) + conv(4 * w, 8 * w) \
        + 2 * conv(8 * w, 8 * w)
    decoder = 2 * conv(8 * w, 8 * w) + conv(8 * w, 4 * w) + conv(4 * w, 2 * w) + 2 * conv(2 * w, 2 * w) \
        + conv(2 * w, w) + 9 * w * 2 + 2
    return encoder + decoder


def test_one_lead_configs_build_todays_model_and_multilead_adds_only_the_context():
    single = load_config(REPO / "configs/ecg.json", ["model.width=4"])
    assert not single.model.multilead  # the shipped one-lead config keeps the default
    model = CASSModel(single)
    ae = model.autoencoders["fetal"]
    assert ae.count_params() == _resnet9_autoencoder_weights(4, 2)  # "complex" input: 2 channels
    x = np.random.default_rng(1).normal(size=(3, 64, 64, 2)).astype(np.float32)
    assert ae(x).shape == x.shape  # [B, F, T, 2]: one lead at a time, as before
    multi = CASSModel(load_config(REPO / "configs/ecg_leads.json", ["model.width=4"]))
    extra = 9 * 2 * 4 + (16 * 4) * (8 * 4) + 4 * (8 * 4)  # 2 more input channels (the mean), the 1x1 context conv + BN
    assert multi.autoencoders["fetal"].count_params() == _resnet9_autoencoder_weights(4, 2) + extra
    assert multi.discriminators["fetal"].count_params() == model.discriminators["fetal"].count_params()


def test_multilead_losses_are_the_mean_over_leads_of_the_one_lead_loss():
    # lead 0: estimate [1, 1] of target [1, 0]: SDR 10 log10(1 / 1) = 0 dB; lead 1: [1, 0] of [2, 0]: 10 log10(4)
    estimate = tf.constant([[[1.0, 1.0], [1.0, 0.0]]])
    target = tf.constant([[[1.0, 0.0], [2.0, 0.0]]])
    neg_sdr = losses.waveform_error(estimate, target, "neg_sdr").numpy()
    np.testing.assert_allclose(neg_sdr, [-(0.0 + 10 * math.log10(4.0)) / 2], rtol=1e-5)
    np.testing.assert_allclose(losses.waveform_error(estimate, target, "l1").numpy(), [(0 + 1 + 1 + 0) / 4])
    # one lead as [B, 1, L] gives the one-lead value of [B, L]
    for kind in ("l1", "l2", "neg_sdr", "neg_si_sdr"):
        np.testing.assert_allclose(losses.waveform_error(estimate[:, 1:], target[:, 1:], kind).numpy(),
                                   losses.waveform_error(estimate[:, 1], target[:, 1], kind).numpy(), rtol=1e-6)
    # BCE per lead, averaged over leads: logits 0 and ln 3 judged real: ln 2 and ln(1 + 1/3)
    logits = tf.constant([[0.0, math.log(3.0)], [0.0, 0.0]])
    expected = ((math.log(2) + math.log(4 / 3)) / 2 + math.log(2)) / 2
    np.testing.assert_allclose(losses.adversarial_loss(logits).numpy(), expected, rtol=1e-6)


def test_lead_dropout_keeps_each_examples_own_leads_together():
    rng = np.random.default_rng(0)
    waveforms = rng.normal(size=(3, 5, 4, 32)).astype(np.float32)  # [1+K, B, C, L]
    counts = set()
    for step in range(12):
        kept = pipeline.keep_leads(tf.constant(waveforms), (2, 4), tf.constant([7, step], tf.int64)).numpy()
        counts.add(kept.shape[2])
        assert kept.shape[:2] == (3, 5) and kept.shape[3] == 32
        for b in range(5):
            for lead in range(kept.shape[2]):  # each kept lead is one of this example's leads, mixture and parts alike
                matches = [c for c in range(4) if np.array_equal(kept[:, b, lead], waveforms[:, b, c])]
                assert len(matches) == 1
            assert len({tuple(kept[0, b, lead, :2]) for lead in range(kept.shape[2])}) == kept.shape[2]
    assert counts == {2, 3, 4}
    np.testing.assert_array_equal(pipeline.keep_leads(tf.constant(waveforms), None, tf.constant([7, 0], tf.int64)),
                                  waveforms)


def test_multilead_crops_share_one_gain_per_crop():
    config = tiny()
    data = pipeline.make_datasets(config)
    mixture, parts = next(iter(data.train))
    assert mixture.shape == (4, 4, F, T, 2) and parts["fetal"].shape == mixture.shape
    assert data.test_waveforms["mixture"].shape[1:] == (4, config.crop_length)
    # the test features are the STFT of the fixed crops, all leads scaled by the crop's RMS over its leads
    crops = data.test_waveforms["mixture"][:4]
    gain = config.model.input_rms / np.sqrt(np.mean(crops.reshape(len(crops), -1) ** 2, axis=1))
    frames = np.lib.stride_tricks.sliding_window_view(crops * gain[:, None, None], 32, axis=-1)[..., ::8, :]
    periodic_hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(32) / 32)
    spectrum = np.fft.rfft(frames * periodic_hann, axis=-1)[..., :F]  # [N, C, T, F]
    expected = np.stack([spectrum.real, spectrum.imag], axis=-1).transpose(0, 1, 3, 2, 4)
    test_mixture, _ = next(iter(data.test))
    np.testing.assert_allclose(test_mixture.numpy(), expected, atol=2e-4 * np.abs(expected).max())


def test_config_checks_for_leads(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.multilead: needs multi-lead"):
        tiny("data.ecg.leads=1")
    with pytest.raises(ConfigError, match=r"model\.multilead: needs model\.output"):
        tiny("model.output=mask", "model.input=magnitude", "loss.reconstruction.waveform=0",
             "loss.reconstruction.spectrum=1")
    with pytest.raises(ConfigError, match=r"train\.leads_kept"):
        tiny("train.leads_kept=[2, 5]")
    with pytest.raises(ConfigError, match=r"train\.leads_kept"):
        tiny("train.leads_kept=[0, 2]")
    # a config saved before these fields existed reads as today's with their defaults
    old = load_config(REPO / "configs/ecg.json").to_dict()
    del old["model"]["multilead"], old["train"]["leads_kept"]
    assert completed(old) == load_config(REPO / "configs/ecg.json").to_dict()


def test_a_one_lead_model_takes_each_lead_of_a_multilead_source_as_a_recording():
    """Its splits are the multi-lead splits' leads, one recording each, a recording's leads in the same split; its
    batches are one-lead features of those leads."""
    multi = load_recordings(tiny("data.validation_recordings=1"))
    config = tiny("data.validation_recordings=1", "model.multilead=false")
    single = load_recordings(config)
    for split in ("train", "test"):
        assert len(single[split]) == 4 * len(multi[split])
        for i, recording in enumerate(multi[split]):
            for k in range(4):
                lead = single[split][4 * i + k]
                assert lead.name == f"{recording.name}/lead{k}" and lead.mixture.shape == (len(recording),)
                np.testing.assert_array_equal(lead.mixture, recording.mixture[k])
                for n in config.components:
                    np.testing.assert_array_equal(lead.components[n], recording.components[n][k])
                    np.testing.assert_array_equal(lead.events[n], recording.events[n])
    data = pipeline.make_datasets(config)
    mixture, parts = next(iter(data.train))
    assert mixture.shape == (4, F, T, 2) and parts["fetal"].shape == mixture.shape
    crops_per_lead = len(multi["test"][0]) // config.crop_length
    np.testing.assert_array_equal(data.test_waveforms["fetal"][crops_per_lead:2 * crops_per_lead].ravel(),
                                  multi["test"][0].components["fetal"][1, :crops_per_lead * config.crop_length])


def test_one_lead_recordings_add_the_one_lead_generators_first_recordings_to_training_only():
    """data.ecg.one_lead_recordings 2: the leads as before, then exactly the first two training recordings a
    one-lead config of the same settings and seed draws (of its three); the validation split stays the leads."""
    config = tiny("data.validation_recordings=1", "model.multilead=false", "data.ecg.one_lead_recordings=2")
    leads_only = load_recordings(tiny("data.validation_recordings=1", "model.multilead=false"))
    both = load_recordings(config)
    one_lead = load_recordings(tiny("data.ecg.leads=1", "model.multilead=false", "train.leads_kept=null"))["train"]
    assert len(one_lead) == 3 and len(both["train"]) == len(leads_only["train"]) + 2
    for got, want in zip(both["train"], leads_only["train"] + one_lead[:2]):
        assert got.name == want.name and got.mixture.shape == want.mixture.shape
        np.testing.assert_array_equal(got.mixture, want.mixture)
        for n in config.components:
            np.testing.assert_array_equal(got.components[n], want.components[n])
    assert [r.name for r in both["test"]] == [r.name for r in leads_only["test"]]
    for bad in (["model.multilead=true"], ["data.ecg.leads=1", "model.multilead=false"]):
        with pytest.raises(ConfigError, match=r"data\.ecg\.one_lead_recordings: needs a one-lead model"):
            tiny("data.ecg.one_lead_recordings=2", *bad)
    with pytest.raises(ConfigError, match=r"data\.ecg\.one_lead_recordings: must be a whole number"):
        tiny("model.multilead=false", "data.ecg.one_lead_recordings=-1")


@pytest.mark.slow
def test_tiny_four_lead_training_runs_and_restores(tmp_path):
    """Two steps on 4-lead synthetic recordings end to end (cass_tf.training), then restored: it takes 3 leads, and
    permuting its input leads permutes its outputs."""
    from cass_tf import training

    config = tiny("train.epochs=1", "train.steps_per_epoch=2", f"output.model_dir={tmp_path / 'run'}")
    result = training.train(config, verbose=False)
    assert result.step == 2 and len(result.history) == 1
    row = result.history[0]
    assert all(math.isfinite(row[f"test_l2_magnitude/{n}"]) for n in config.components)
    recording = load_recordings(config)["test"][0]  # whole-recording L2, mean over its leads, by hand
    parts = Separator(str(tmp_path / "run"))(recording.mixture)
    for n in config.components:
        by_lead = np.linalg.norm(parts[n] - recording.components[n], axis=1) / np.linalg.norm(recording.components[n],
                                                                                            axis=1)
        assert row[f"test_l2_signal/{n}"] == pytest.approx(by_lead.mean(), rel=1e-3)
    assert "test_events_qrs_f1/fetal" in row or "test_events_qrs_f1/maternal" in row
    assert (tmp_path / "run" / "example.png").stat().st_size > 1000
    model = restore(str(tmp_path / "run"))
    mixture, _ = next(iter(pipeline.make_datasets(config, train=False).test))
    estimates = model(mixture[:, :3])  # three of the four leads
    assert estimates["fetal"].shape == (mixture.shape[0], 3, F, T, 2)
    order = [2, 0, 3, 1]  # the trained model too: permuted leads in, the same permutation out
    full, permuted = model(mixture)["fetal"].numpy(), model(tf.gather(mixture, order, axis=1))["fetal"].numpy()
    np.testing.assert_allclose(permuted, full[:, order], rtol=0, atol=1e-5 * np.abs(full).max())
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["multilead"] is True
