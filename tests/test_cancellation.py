"""Tests for maternal cancellation (cass_tf.cancellation) and models that separate its residual: the split into
residual + templates, the templates of a strictly periodic maternal ECG, the training recordings' parts, the config
check, a cancellation model's separation (templates back on the maternal output; blocks; short inputs; a multi-lead
model's template leads) and its training's whole-recording scores (the serving client: tests/test_serving.py)."""

import pathlib

import keras
import numpy as np
import pytest

from cass_tf import cancellation, metrics
from cass_tf.config import ConfigError, load_config
from cass_tf.data import ecg
from cass_tf.models.cass import CASSModel
from cass_tf.separator import Separator

REPO = pathlib.Path(__file__).resolve().parents[1]
RATE = 256
TINY = ["data.ecg.train_recordings=2", "data.ecg.test_recordings=1", "data.ecg.seconds=8", "data.cache_dir=null",
        "data.validation_recordings=0", "model.width=2", "patch.frequency_bins=16", "patch.frames=16",
        "stft.n_fft=32", "stft.window=32", "stft.hop=8", "train.batch_size=4"]


def beats(samples, period, width):
    """A train of Gaussian 'QRS' bumps every `period` samples, and their centres."""
    centres = np.arange(period // 2, samples - 4 * width, period)
    t = np.arange(samples)
    return sum(np.exp(-0.5 * ((t - c) / width) ** 2) for c in centres), centres


def high_passed(x):
    return metrics.bandpass(x, RATE, (cancellation.BASELINE_HZ, RATE / 2))


def test_residual_plus_templates_is_the_input_and_the_templates_are_what_subtraction_took():
    maternal, _ = beats(20 * RATE, 200, 4)
    rng = np.random.default_rng(1)
    x = np.stack([g * maternal + 0.05 * rng.normal(size=maternal.size) for g in (1.0, -0.6, 0.3)])
    for leads in (x, x[0]):
        residuals, templates = cancellation.cancel(leads, RATE)
        assert residuals.shape == templates.shape == leads.shape and residuals.dtype == np.float32
        np.testing.assert_allclose(residuals + templates, leads, atol=1e-5)
    subtracted, _ = cancellation.template_subtraction_leads(x, RATE)
    np.testing.assert_allclose(cancellation.cancel(x, RATE)[1], high_passed(x) - subtracted, atol=1e-5)


def test_a_strictly_periodic_maternal_ecg_is_cancelled_and_the_fetal_beats_stay():
    maternal, _ = beats(30 * RATE, 210, 5)  # 73 BPM, identical beats
    fetal, centres = beats(30 * RATE, 117, 2)
    x = maternal + 0.1 * fetal
    residual, _ = cancellation.cancel(x, RATE)
    inner = slice(2 * RATE, -2 * RATE)  # away from the filter's and the first/last templates' edges
    remnant = residual - (maternal - high_passed(maternal)) - 0.1 * fetal  # ideal templates: the high-passed maternal
    assert np.sqrt(np.mean(remnant[inner] ** 2)) < 0.1 * np.sqrt(np.mean(high_passed(maternal)[inner] ** 2))
    # the fetal bumps are the largest peaks of the residual
    residual = high_passed(residual)
    found = metrics.match_events(np.flatnonzero((residual > 0.05) & (residual >= np.roll(residual, 1))
                                                & (residual >= np.roll(residual, -1))), centres, 5)
    assert found["f1"] >= 0.95


def test_beats_between_samples_are_fitted_with_a_sub_sample_shift():
    t = np.arange(20 * RATE, dtype=float)
    centres = np.arange(100, t.size - 100, 201.37)  # a period of 201.37 samples: every beat falls elsewhere between two
    x = sum(np.exp(-0.5 * ((t - c) / 3.0) ** 2) for c in centres)
    residual, _ = cancellation.template_subtraction(x, RATE)
    high = high_passed(x)
    inner = slice(3 * RATE, -3 * RATE)
    # what a gain alone leaves: each beat minus its least-squares multiple of the same template, computed here
    rr = int(np.median(np.diff(np.round(centres))))
    before, after = int(cancellation.MATERNAL_BEFORE * rr), int(cancellation.MATERNAL_AFTER * rr)
    peaks = [int(p) for p in np.round(centres) if p >= before and p + after <= t.size]
    segments = np.stack([high[p - before:p + after] for p in peaks])
    gain_only = high.copy()
    for k, p in enumerate(peaks):
        lo = max(0, min(k - cancellation.TEMPLATE_BEATS // 2, len(peaks) - cancellation.TEMPLATE_BEATS))
        template = segments[lo:lo + cancellation.TEMPLATE_BEATS].mean(axis=0)
        gain_only[p - before:p + after] -= (segments[k] @ template) / (template @ template) * template
    rms = [np.sqrt(np.mean(r[inner] ** 2)) for r in (residual, gain_only, high)]
    assert rms[1] > 0.05 * rms[2]  # half-sample misalignments of a 3-sample-wide beat: a gain misses a lot
    assert rms[0] < 0.4 * rms[1]


def test_the_fitted_shift_is_bounded_to_half_a_sample():
    t = np.arange(200, dtype=float)
    template = np.exp(-0.5 * ((t - 100) / 6.0) ** 2)
    near = np.exp(-0.5 * ((t - 100.3) / 6.0) ** 2)  # 0.3 samples late: fitted almost exactly
    assert np.abs(near - cancellation.fitted(near, template, 0)).max() < 0.01
    far = 0.8 * np.exp(-0.5 * ((t - 104) / 6.0) ** 2)  # 4 samples late: the fit stops at a shift of 0.5 samples
    slope = np.gradient(template)
    shape = template + (0.5 if np.dot(far - template, slope) > 0 else -0.5) * slope
    np.testing.assert_allclose(cancellation.fitted(far, template, 0), (far @ shape) / (shape @ shape) * shape,
                               atol=1e-12)
    np.testing.assert_allclose(cancellation.fitted(far[50:], template, 50), (far[50:] @ shape[50:])
                               / (shape[50:] @ shape[50:]) * shape[50:], atol=1e-12)


def test_beats_cut_by_the_edges_are_subtracted_too():
    maternal, _ = beats(20 * RATE, 200, 4)
    x = np.roll(maternal, -70)  # beats at 30 and 5030 of 5120: their template segments (-70, +130) are cut
    residual, peaks = cancellation.template_subtraction(x, RATE)
    assert peaks[0] == 30 and peaks[-1] == 5030
    high = high_passed(x)
    for beat in (slice(10, 50), slice(5010, 5050)):
        assert np.abs(residual[beat]).max() < 0.1 * np.abs(high[beat]).max()


def test_cancelled_recordings_hold_their_parts_and_the_rest_is_the_noise():
    config = load_config(REPO / "configs/ecg.json", TINY)
    raw = ecg.load(config)["train"]
    cancelled = ecg.load(load_config(REPO / "configs/ecg.json", TINY + ["model.cancellation=maternal_template"]))
    for before, after in zip(raw, cancelled["train"]):
        np.testing.assert_allclose(after.mixture, cancellation.cancel(before.mixture, RATE)[0], atol=1e-6)
        np.testing.assert_allclose(after.components["fetal"], before.components["fetal"], atol=1e-6)
        noise = before.mixture - before.components["maternal"] - before.components["fetal"]
        rest = after.mixture - after.components["maternal"] - after.components["fetal"]
        np.testing.assert_allclose(rest, noise, atol=1e-5)
        assert after.events["fetal"] is before.events["fetal"]


def test_cancellation_needs_an_ecg_with_a_maternal_component():
    with pytest.raises(ConfigError, match="model.cancellation"):
        load_config(REPO / "configs/ppg.json", ["model.cancellation=maternal_template"])


@pytest.fixture(scope="module")
def models():
    """The same untrained networks with and without cancellation."""
    keras.utils.set_random_seed(4)
    cancelling = CASSModel(load_config(REPO / "configs/ecg.json", TINY + ["model.cancellation=maternal_template"]))
    plain = CASSModel(load_config(REPO / "configs/ecg.json", TINY))
    for name, ae in cancelling.autoencoders.items():
        plain.autoencoders[name].set_weights(ae.get_weights())
    return cancelling, plain


def test_a_cancellation_model_separates_the_residual_and_adds_the_templates_back(models):
    cancelling, plain = models
    maternal, _ = beats(40 * RATE, 190, 4)
    fetal, _ = beats(40 * RATE, 110, 2)
    x = np.stack([g * maternal + 0.2 * g * fetal for g in (1.0, 0.5, -0.8)]).astype(np.float32)
    residuals, templates = cancellation.cancel(x, RATE)
    expected = Separator(plain)(residuals)
    got = Separator(cancelling)(x)
    np.testing.assert_allclose(got["fetal"], expected["fetal"], atol=1e-5 * np.abs(expected["fetal"]).max())
    np.testing.assert_allclose(got["maternal"], expected["maternal"] + templates, atol=1e-4)
    short = Separator(cancelling)(x[:, :5])  # too short for templates: the networks alone
    np.testing.assert_allclose(short["maternal"], Separator(plain)(x[:, :5])["maternal"], atol=1e-6)
    blocked = Separator(cancelling).process(x, block_seconds=8.0)
    for name in got:
        np.testing.assert_allclose(blocked[name], got[name], atol=1e-5 * np.abs(got[name]).max())


def test_a_multilead_model_sees_the_templates_as_leads_after_the_residuals_and_keeps_the_residual_leads():
    maternal, _ = beats(20 * RATE, 200, 4)
    x = np.stack([g * maternal + 0.1 * np.roll(maternal, 37) for g in (1.0, -0.5, 0.7)]).astype(np.float32)
    residuals, templates = cancellation.cancel(x, RATE)
    seen = []

    def networks(leads):  # a stand-in for the networks: maternal = 2 x the lead, fetal = the lead's index
        seen.append(leads)
        return {"maternal": 2 * leads, "fetal": np.broadcast_to(np.arange(len(leads))[:, None], leads.shape)}

    out = cancellation.around(x, RATE, True, networks)
    np.testing.assert_array_equal(seen[0], np.concatenate([residuals, templates]))
    np.testing.assert_allclose(out["maternal"], 2 * residuals + templates, atol=1e-6)
    np.testing.assert_array_equal(out["fetal"], np.broadcast_to(np.arange(3)[:, None], x.shape))
    one = cancellation.around(x[0], RATE, True, networks)  # one lead: (samples,) in and out
    assert one["maternal"].shape == x[0].shape and seen[-1].shape == (2, x.shape[1])


def test_cancelled_multilead_recordings_carry_the_templates_as_all_maternal_leads():
    config = load_config(REPO / "configs/ecg_leads.json", TINY + ["train.leads_kept=null", "train.init_from=null"])
    raw = ecg.load(config)["train"][0]
    cancelled = ecg.load(load_config(REPO / "configs/ecg_leads.json", TINY + [
        "train.leads_kept=null", "train.init_from=null", "model.cancellation=maternal_template"]))["train"][0]
    leads = raw.mixture.shape[0]
    residuals, templates = cancellation.cancel(raw.mixture, RATE)
    assert cancelled.mixture.shape == (2 * leads, raw.mixture.shape[1])
    np.testing.assert_allclose(cancelled.mixture, np.concatenate([residuals, templates]), atol=1e-6)
    np.testing.assert_allclose(cancelled.components["maternal"][leads:], templates, atol=1e-6)
    assert not cancelled.components["fetal"][leads:].any()
    with pytest.raises(ConfigError, match="train.leads_kept"):
        load_config(REPO / "configs/ecg_leads.json", TINY + ["model.cancellation=maternal_template"])


@pytest.mark.slow
def test_tiny_cancelling_four_lead_training_scores_the_recordings_as_recorded(tmp_path):
    """Two steps of a multi-lead cancellation model; its whole-recording test L2 (finite, though its own recordings
    hold all-zero fetal template leads) is the Separator's on the recordings as recorded, by hand."""
    from cass_tf import training
    from cass_tf.data import as_recorded, load_recordings

    config = load_config(REPO / "configs/ecg_leads.json", TINY + [
        "data.ecg.seconds=6", "train.leads_kept=null", "train.init_from=null", "model.cancellation=maternal_template",
        "train.epochs=1", "train.steps_per_epoch=2", "train.precision=float32", f"output.model_dir={tmp_path / 'run'}"])
    row = training.train(config, verbose=False).history[0]
    recording = load_recordings(as_recorded(config))["test"][0]
    assert recording.mixture.shape[0] == config.data.ecg.leads  # as recorded: no template leads
    parts = Separator(str(tmp_path / "run"))(recording.mixture)
    for n in config.components:
        truth = recording.components[n]
        by_lead = np.linalg.norm(parts[n] - truth, axis=1) / np.linalg.norm(truth, axis=1)
        assert row[f"test_l2_signal/{n}"] == pytest.approx(by_lead.mean(), rel=1e-5)
