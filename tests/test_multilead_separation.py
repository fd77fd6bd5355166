"""Tests for separating (leads, samples) recordings with a multi-lead model: the whole-signal windows against the
one-lead path (networks that act per lead, and networks that mix the leads), the level over all leads, blocks
against one shot, `separate()` with resampling, the export's signatures and contract, and the input checks."""

import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from cass_tf import contract, fusion, separate
from cass_tf.config import load_config
from cass_tf.exporting import export
from cass_tf.models.cass import CASSModel
from cass_tf.separator import Separator
from cass_tf.spectral import Spectral
from cass_tf.windows import separate_at_level, separate_waveform

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = ["data.ecg.train_recordings=3", "data.ecg.test_recordings=1", "data.ecg.seconds=4", "data.cache_dir=null",
        "data.validation_recordings=0", "model.width=2", "patch.frequency_bins=16", "patch.frames=16",
        "stft.n_fft=32", "stft.window=32", "stft.hop=8", "train.batch_size=4", "train.leads_kept=null",
        "train.init_from=null"]
NAMES = ("maternal", "fetal")


@pytest.fixture(scope="module")
def config():
    return load_config(REPO / "configs/ecg_leads.json", TINY)


@pytest.fixture(scope="module")
def model(config):
    keras.utils.set_random_seed(3)
    model = CASSModel(config)
    rng = np.random.default_rng(0)
    for ae in model.autoencoders.values():  # untrained but not trivial: random BatchNorm statistics too
        for v in ae.variables:
            if "moving_variance" in v.path:
                v.assign(rng.uniform(0.5, 2.0, v.shape).astype(np.float32))
            elif "moving_mean" in v.path:
                v.assign(rng.normal(0, 0.1, v.shape).astype(np.float32))
    return model


def leads(count=4, samples=700, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 256
    gains = rng.uniform(0.2, 3.0, (count, 1))
    return (gains * np.sin(2 * np.pi * 1.3 * t) + 0.3 * rng.normal(size=(count, samples))).astype(np.float32)


def per_lead(features):  # the networks applied to each lead alone: the identity
    return {n: features for n in NAMES}


def lead_mean(features):  # every lead's output is the mean over the recording's leads
    mean = tf.reduce_mean(features, axis=1, keepdims=True)
    return {n: tf.broadcast_to(mean, tf.shape(features)) for n in NAMES}


def test_leads_go_through_the_networks_together_at_the_same_patch(config):
    """Networks acting per lead give the one-lead path's result on every lead; networks that average the leads give
    the one-lead separation of the leads' mean on every lead: patches of the same frames of one recording are
    grouped, and no lead or patch position is mixed up."""
    spectral = Spectral.from_config(config)
    x = np.stack([leads(4, 700, 1), leads(4, 700, 2)])  # [2 recordings, 4 leads, 700]
    one_lead = separate_waveform(spectral, lambda f: {n: f for n in NAMES}, NAMES, x.reshape(8, 700))
    together = separate_waveform(spectral, per_lead, NAMES, x, max_patches=3, leads=True)
    assert together["fetal"].shape == (2, 4, 700)
    np.testing.assert_allclose(together["fetal"].numpy(), one_lead["fetal"].numpy().reshape(2, 4, 700), atol=1e-5)
    mixed = separate_waveform(spectral, lead_mean, NAMES, x, max_patches=2, leads=True)["maternal"].numpy()
    of_mean = separate_waveform(spectral, lambda f: {n: f for n in NAMES}, NAMES, x.mean(axis=1))["maternal"].numpy()
    np.testing.assert_allclose(mixed, np.repeat(of_mean[:, np.newaxis], 4, axis=1), atol=1e-5)
    assert np.abs(mixed[0] - mixed[1]).max() > 0.1  # the two recordings were not averaged together


def test_one_level_per_recording_over_all_its_leads(config, model):
    """The model sees the leads scaled by one gain, reference / RMS over all leads (NumPy), and the outputs are
    scaled back: the same as separating the hand-scaled leads at no level; and c x gives c times the outputs."""
    spectral = Spectral.from_config(config)
    x = leads(3, 600)
    networks = lambda f: model(f, training=False)  # noqa: E731
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    reference = config.model.input_rms
    by_hand = separate_waveform(spectral, networks, NAMES, (x * reference / rms)[np.newaxis], leads=True)
    at_level = separate_at_level(spectral, networks, NAMES, x[np.newaxis], reference, leads=True)
    for n in NAMES:
        np.testing.assert_allclose(at_level[n].numpy(), by_hand[n].numpy() * rms / reference, rtol=1e-4,
                                   atol=1e-5 * rms)
    separator = Separator(model)
    base, scaled = separator(x), separator(7.0 * x)
    np.testing.assert_allclose(scaled["fetal"], 7.0 * base["fetal"], rtol=1e-4, atol=1e-5 * np.abs(7 * x).max())


def test_separator_blocks_equal_one_shot_and_permutations_carry_through(model):
    separator = Separator(model)
    x = leads(4, 5000, 5)
    one_shot = separator(x)
    blocked = separator.process(x, block_seconds=4.0)
    assert len(separator.blocks(5000, 4.0)) > 2
    for n in NAMES:
        assert one_shot[n].shape == (4, 5000)
        np.testing.assert_allclose(blocked[n], one_shot[n], rtol=0, atol=1e-5 * np.abs(one_shot[n]).max())
    order = [3, 1, 0, 2]
    permuted = separator(x[order])["fetal"]
    np.testing.assert_allclose(permuted, one_shot["fetal"][order], rtol=0, atol=1e-5 * np.abs(permuted).max())
    batch = separator(np.stack([x, x[order]]))["maternal"]  # [batch, leads, samples]
    np.testing.assert_allclose(batch[0], one_shot["maternal"], rtol=0, atol=1e-5 * np.abs(batch).max())
    three = separator(x[:3])["fetal"]  # any lead count: three leads are one recording of three leads
    assert three.shape == (3, 5000) and np.abs(three - one_shot["fetal"][:3]).max() > 0


def test_separate_resamples_every_lead_and_keeps_the_shape(model):
    x = leads(4, 3000, 7)  # at 1000 Hz; the model runs at 256 Hz
    parts = separate(x, Separator(model), sample_rate=1000)
    assert set(parts) == set(NAMES) and parts["fetal"].shape == (4, 3000)
    from cass_tf import audio
    at_model = Separator(model)(audio.resample(x, 1000, 256))
    back = audio.fit_length(audio.resample(at_model["fetal"], 256, 1000), 3000)
    np.testing.assert_allclose(parts["fetal"], back, rtol=0, atol=1e-5 * np.abs(back).max())


@pytest.mark.slow
def test_export_serves_leads_together(model, tmp_path):
    """The SavedModel's signatures take [batch, leads, samples] (and [batch, leads, F, T, 2] features), give what the
    in-memory model gives, and its asset says so."""
    version = export(model, tmp_path / "ecg", version=3)
    asset = json.loads((pathlib.Path(version) / "assets" / contract.CONFIG_ASSET).read_text())
    assert asset["signatures"]["serving_default"]["inputs"]["waveform"].startswith("float32 [batch, leads, samples]")
    assert asset["config"]["model"]["multilead"] is True
    x = leads(4, 900, 9)
    served, direct = Separator(version), Separator(model)
    assert served.multilead and served.kind == "savedmodel"
    got, expected = served(x), direct(x)
    for n in NAMES:
        np.testing.assert_allclose(got[n], expected[n], rtol=0, atol=1e-5 * np.abs(expected[n]).max())
    loaded = tf.saved_model.load(version)
    features = np.random.default_rng(1).normal(size=(2, 5, 16, 16, 2)).astype(np.float32)
    out = loaded.signatures[contract.FEATURES_SIGNATURE](**{contract.FEATURES_INPUT: tf.constant(features)})
    expected = model(features, training=False)["fetal"].numpy()
    np.testing.assert_allclose(out["fetal"].numpy(), expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_bad_shapes_are_refused_with_the_argument_named(model, config):
    separator = Separator(model)
    with pytest.raises(ValueError, match=r"^waveform: expected \(samples,\), \(leads, samples\) or \(batch, leads"):
        separator(np.zeros((1, 2, 3, 400), np.float32))
    one_lead = Separator(CASSModel(load_config(REPO / "configs/ecg.json", TINY + ["model.multilead=false"])))
    with pytest.raises(ValueError, match=r"^waveform: expected \(samples,\) or \(batch, samples\), got a 3-D"):
        one_lead(np.zeros((1, 2, 400), np.float32))


def test_recording_scores_of_leads_average_the_leads_and_score_the_fused_beats(config):
    """On a synthetic 4-lead recording: the truth scores L2 0 and fetal F1 1 (its fused output's beats are the true
    ones); one lead's fetal estimate doubled gives that lead's error (1) over 4 leads, by hand."""
    from cass_tf.data import load_recordings
    from cass_tf.scoring import recording_scores

    recording = load_recordings(config.replace(["data.ecg.seconds=20"]))["test"][0]
    truth = dict(recording.components)
    scores = recording_scores(lambda x: truth, [recording], NAMES, config.data.sample_rate)
    assert scores["fetal"]["l2"] == 0.0 and scores["maternal"]["l2"] == 0.0
    assert scores["fetal"]["qrs_f1"] == 1.0 and scores["maternal"]["qrs_f1"] == 1.0
    doubled = {**truth, "fetal": truth["fetal"] * np.array([[2.0], [1.0], [1.0], [1.0]])}
    scores = recording_scores(lambda x: doubled, [recording], NAMES, config.data.sample_rate)
    assert scores["fetal"]["l2"] == pytest.approx(0.25, abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("multilead", [True, False])
def test_command_line_writes_the_fused_output_of_all_leads(model, config, multilead, tmp_path):
    """`cass-tf separate rec.npy --events` with a multi-lead export, and with a one-lead one (each lead separated on
    its own): every lead's components (rows = component x lead), and the fused fetal output of all leads: fused.csv
    equals its weights times the written fetal leads, and the .fqrs beats are the fused ones (channel 4)."""
    import wfdb
    from conftest import run_cli

    if not multilead:
        keras.utils.set_random_seed(3)
        model = CASSModel(load_config(REPO / "configs/ecg.json", TINY + ["model.multilead=false"]))
    version = export(model, tmp_path / "ecg")
    x = leads(4, 256 * 30, 11)
    np.save(tmp_path / "rec.npy", x)
    done = run_cli("separate", tmp_path / "rec.npy", "--model", version, "--out_dir", tmp_path / "out",
                   "--sample_rate", "256", "--channels", "0,1,2,3", "--events")
    assert done.returncode == 0, done.stderr
    rows = np.load(tmp_path / "out" / "rec" / "rec.npy")
    assert rows.shape == (8, x.shape[1])
    expected = Separator(version)(x - np.median(x, axis=1, keepdims=True))
    np.testing.assert_allclose(rows[4:], expected["fetal"], rtol=0, atol=1e-4 * np.abs(expected["fetal"]).max())
    choice = json.loads((tmp_path / "out" / "rec" / "fused.json").read_text())
    table = np.genfromtxt(tmp_path / "out" / "rec" / "fused.csv", delimiter=",", names=True)
    scale = np.abs(table["fetal"]).max()
    np.testing.assert_allclose(table["fetal"], np.asarray(choice["fetal"]["weights"]) @ rows[4:], rtol=0,
                               atol=1e-5 * scale)
    fqrs = wfdb.rdann(str(tmp_path / "out" / "rec" / "rec"), "fqrs")
    assert set(fqrs.chan) <= {4}
    np.testing.assert_array_equal(fqrs.sample, fusion.fuse_outputs(expected, 256)["fetal"].peaks)


@pytest.mark.slow
def test_a_multilead_model_started_from_a_one_lead_export_computes_it_on_every_lead(config, tmp_path):
    """train.init_from: after `training.start_from`, the multi-lead autoencoders give, on each lead of a recording,
    exactly the one-lead export's output for that lead alone; another width, or an export whose autoencoder outputs
    a component directly (model.direct: the same weights, not a mask), is refused naming the field."""
    from cass_tf.config import ConfigError
    from cass_tf.training import start_from

    keras.utils.set_random_seed(5)
    one_lead = CASSModel(load_config(REPO / "configs/ecg.json", TINY))
    for ae in one_lead.autoencoders.values():  # non-trivial BatchNorm statistics, as a trained model has
        for v in ae.variables:
            if "moving_mean" in v.path:
                v.assign(np.random.default_rng(1).normal(0, 0.1, v.shape).astype(np.float32))
    version = export(one_lead, tmp_path / "one", version=1)
    many = CASSModel(config)
    features = np.random.default_rng(2).normal(size=(2, 3, 16, 16, 2)).astype(np.float32)
    before = many(features, training=False)["fetal"].numpy()
    start_from(many, version)
    after = many(features, training=False)["fetal"].numpy()
    alone = one_lead(features.reshape(6, 16, 16, 2), training=False)["fetal"].numpy().reshape(after.shape)
    np.testing.assert_allclose(after, alone, rtol=0, atol=1e-5 * np.abs(alone).max())
    assert np.abs(before - alone).max() > 1e-2 * np.abs(alone).max()  # it was a different network before
    wider = CASSModel(config.replace(["model.width=4"]))
    with pytest.raises(ConfigError, match=r"^train.init_from .*: .*does not fit"):
        start_from(wider, version)
    direct = export(CASSModel(load_config(REPO / "configs/ecg.json", [*TINY, "model.consistency=none",
                                                                     'model.direct=["fetal"]'])), tmp_path / "direct")
    with pytest.raises(ConfigError, match=r"^train.init_from .*: its model.direct is \('fetal',\), this run needs \(\)"):
        start_from(many, direct)
