"""Phase-aware separation (model.output "complex_mask"): complex features, the bounded complex mask, network
inputs, waveform-domain losses and their gradients, mixture consistency, the complex cross-fade, the level helpers,
the ideal-complex-mask oracle, and the config rules."""


import keras
import numpy as np
import pytest
import tensorflow as tf

from cass_tf import losses
from cass_tf.config import ConfigError, PatchConfig, ReconstructionConfig, ScalingConfig, STFTConfig, load_config
from cass_tf.models.cass import CASSModel, apply_autoencoders
from cass_tf.models.resnet9 import BorrowedPhase, ComplexMask, NetworkInput, build_autoencoder
from cass_tf.spectral import Spectral, from_reference, level, to_reference
from cass_tf.windows import separate_at_level, separate_waveform
from conftest import REPO, TINY

STFT = STFTConfig(n_fft=32, hop=8, window=32)
FULL = Spectral(STFT, PatchConfig(frequency_bins=17, frames=8), ScalingConfig(), complex_features=True)
COMPLEX = [*TINY, "model.output=complex_mask", "model.input=magnitude_phase", "model.input_rms=1.0",
           "loss.mode=baseline"]


def noise(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_complex_mask_on_a_known_spectrum():
    z = np.array([[3.0, 4.0], [0.0, -0.5]], np.float32)  # mask logits: |z| = 5 and 0.5
    mixture = np.array([[1.0, 2.0], [2.0, 0.0]], np.float32)  # 1 + 2i, 2
    # M = tanh(|z|) z/|z|: (0.6, 0.8) tanh(5) and (0, -1) tanh(0.5); M * X by hand
    m1, m2 = np.tanh(5.0) * (0.6 + 0.8j), np.tanh(0.5) * (-1j)
    expected = np.array([[(m1 * (1 + 2j)).real, (m1 * (1 + 2j)).imag], [(m2 * 2).real, (m2 * 2).imag]])
    np.testing.assert_allclose(ComplexMask()((z, mixture)).numpy(), expected, rtol=1e-5, atol=1e-6)
    big = ComplexMask()((np.array([[300.0, -400.0]], np.float32), mixture[:1])).numpy()
    assert np.linalg.norm(big) <= np.linalg.norm(mixture[:1]) * (1 + 1e-6)  # |M| <= 1


@pytest.mark.parametrize("kind, channels", [("magnitude", 1), ("magnitude_phase", 3), ("complex", 2)])
def test_network_inputs(kind, channels):
    x = np.array([[3.0, -4.0]], np.float32)  # 3 - 4i: modulus 5
    seen = NetworkInput(kind, ScalingConfig("power", gain=1.0, exponent=0.5))(x).numpy()
    assert seen.shape == (1, channels)
    expected = {"magnitude": [5 ** 0.5], "magnitude_phase": [5 ** 0.5, 0.6, -0.8], "complex": [3 / 5 ** 0.5, -4 / 5 ** 0.5]}
    np.testing.assert_allclose(seen[0], expected[kind], rtol=1e-5)
    assert build_autoencoder((16, 16), 2, "complex_mask", f"ae_{kind}", kind)(noise((2, 16, 16, 2))).shape == (2, 16, 16, 2)


def test_ideal_complex_mask_round_trips_a_waveform():
    x = noise((2, FULL.samples_for(12)))
    features = FULL.features(FULL.stft(x))
    assert features.shape == (2, 17, 12, 2)
    back = FULL.waveform(features, None, x.shape[1]).numpy()
    m = FULL.margin
    np.testing.assert_allclose(back[:, m:-m], x[:, m:-m], rtol=0, atol=1e-4 * np.abs(x).max())


def test_complex_cross_fade_reproduces_the_input_through_an_identity_network():
    x = noise((2, 1000), seed=1)
    out = separate_waveform(FULL, lambda f: {"a": f, "b": 0.5 * f}, ("a", "b"), x)
    np.testing.assert_allclose(out["a"].numpy(), x, rtol=0, atol=1e-4 * np.abs(x).max())
    np.testing.assert_allclose(out["b"].numpy(), 0.5 * x, rtol=0, atol=1e-4 * np.abs(x).max())


def test_level_and_reference_scaling():
    x = np.array([[3.0, -4.0, 0.0, 0.0], [0.0] * 4, [1e-30, -1e-30, 1e-30, 1e-30], [3e37, 3e37, 0, 0]], np.float32)
    rms = level(x).numpy()
    np.testing.assert_allclose(rms, [2.5, 0.0, 1e-30, 3e37 / 2 ** 0.5], rtol=1e-6)
    scaled = to_reference(x, rms, 2.0).numpy()
    np.testing.assert_allclose(level(scaled).numpy(), [2.0, 0.0, 2.0, 2.0], rtol=1e-6)
    np.testing.assert_array_equal(scaled[1], 0.0)  # silence stays silent, no division by zero
    np.testing.assert_allclose(from_reference(scaled, rms, 2.0).numpy(), x, rtol=1e-6)
    out = separate_at_level(FULL, lambda f: {"a": f}, ("a",), x[:2, :4] * 100, reference=1.0)["a"].numpy()
    assert np.isfinite(out).all() and np.array_equal(out[1], np.zeros(4, np.float32))


def test_waveform_errors():
    target = noise((2, 50))
    estimate = target + 0.1
    np.testing.assert_allclose(losses.waveform_error(estimate, target, "l1").numpy(), [0.1, 0.1], rtol=1e-5)
    np.testing.assert_allclose(losses.waveform_error(estimate, target, "l2").numpy(), [0.01, 0.01], rtol=1e-4)
    sdr = losses.waveform_error(3.0 * target, target, "neg_si_sdr").numpy()
    assert (sdr < -60).all()  # a scaled copy is a perfect estimate for SI-SDR
    t, e = noise((1, 64), seed=2), noise((1, 64), seed=3)
    projection = (e @ t.T) / (t @ t.T) * t  # SI-SDR by hand, in float64
    expected = 10 * np.log10(np.sum(projection.astype(np.float64) ** 2) / np.sum((e - projection).astype(np.float64) ** 2))
    np.testing.assert_allclose(losses.waveform_error(e, t, "neg_si_sdr").numpy(), [-expected], rtol=1e-4)
    relative = np.linalg.norm(e - t) / np.linalg.norm(t)
    np.testing.assert_allclose(losses.waveform_error(e, t, "neg_sdr").numpy(), [20 * np.log10(relative)], rtol=1e-4)
    weights = ReconstructionConfig(spectrum=0.5, waveform=2.0, waveform_loss="l1")
    value = losses.reconstruction_loss(target, target + 1.0, weights=weights, waveforms=(estimate, target))
    np.testing.assert_allclose(value.numpy(), 0.5 * 1.0 + 2.0 * 0.1, rtol=1e-5)
    with pytest.raises(ValueError, match="waveforms"):
        losses.reconstruction_loss(target, target, weights=weights)


@pytest.mark.parametrize("mode", ["baseline", "cass_cross"])
def test_the_waveform_loss_reaches_the_autoencoders(mode):
    config = load_config(REPO / "configs" / "paper" / "ppg.json", [
        *COMPLEX, f"loss.mode={mode}", "loss.reconstruction.spectrum=0", "loss.reconstruction.waveform=1",
        "loss.reconstruction.waveform_loss=neg_si_sdr"])
    model = CASSModel(config)
    spectral = Spectral.from_config(config)
    waves = noise((3, 4, config.crop_length))
    features = spectral.features(spectral.stft(waves))
    batch = (features[0], {"heart": features[1], "respiratory": features[2]})
    with tf.GradientTape() as tape:
        ae, _, _ = model.compute_losses(batch, training=True)
        total = tf.add_n(list(ae.values()))
    grads = tape.gradient(total, model.ae_variables)
    assert all(g is not None for g in grads)
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads if g.shape.rank == 4)  # every conv kernel
    if mode == "cass_cross":
        assert model.discriminators["heart"].input_shape[-1] == 1  # judged on the estimate's magnitude


def test_a_direct_output_is_the_network_output_the_mask_would_bound():
    """model.direct: the same weights give the masked autoencoder's z unmasked (ComplexMask applied to it by hand
    gives the masked output), so a direct output can hold what the mixture does not: it is not zero in bins where
    the mixture is (a breathing band with no baseline wander)."""
    keras.utils.set_random_seed(3)
    direct = build_autoencoder((16, 16), 2, "complex_mask", "ae_direct", "complex", direct=True)
    masked = build_autoencoder((16, 16), 2, "complex_mask", "ae_masked", "complex")
    masked.set_weights(direct.get_weights())
    x = tf.constant(noise((2, 16, 16, 2), seed=4))
    z = direct(x).numpy()
    np.testing.assert_allclose(masked(x).numpy(), ComplexMask()((z, x)).numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(z, masked(x).numpy(), atol=1e-3)
    quiet = tf.concat([tf.zeros([2, 4, 16, 2]), x[:, 4:]], axis=1)  # the 4 lowest bins empty
    assert float(tf.reduce_max(tf.abs(masked(quiet)[:, :4]))) == 0.0
    assert float(tf.reduce_min(tf.reduce_max(tf.abs(direct(quiet)[:, :4]), axis=[1, 2, 3]))) > 0
    model = CASSModel(load_config(REPO / "configs" / "paper" / "ppg.json", [
        *COMPLEX, "model.direct=[\"respiratory\"]"]))
    assert [layer.name for layer in model.autoencoders["respiratory"].layers][-1] == "ae_respiratory_decoder"
    assert [layer.name for layer in model.autoencoders["heart"].layers][-1] == "ae_heart_masked"


def test_a_borrowed_phase_output_is_a_softplus_magnitude_on_the_mixtures_phase():
    """model.borrowed_phase: the component's output is the decoder's non-negative magnitude times the mixture's unit
    phasor, checked against NumPy; unlike a mask it may exceed the mixture's magnitude, never leaves its phase; the
    other components keep their complex masks."""
    magnitude = np.abs(noise((2, 8, 8, 1), seed=5)).astype(np.float32)
    mixture = noise((2, 8, 8, 2), seed=6)
    mixture[0, 0, :3] = 0.0  # a silent bin: phase 0
    out = BorrowedPhase()((tf.constant(magnitude), tf.constant(mixture))).numpy()
    phasor = mixture[..., 0] + 1j * mixture[..., 1]
    unit = np.where(np.abs(phasor) > 0, phasor / np.where(np.abs(phasor) > 0, np.abs(phasor), 1.0), 1.0)
    np.testing.assert_allclose(out[..., 0] + 1j * out[..., 1], magnitude[..., 0] * unit, rtol=1e-5, atol=1e-6)
    keras.utils.set_random_seed(3)
    ae = build_autoencoder((16, 16), 2, "complex_mask", "ae_phased", "complex", borrowed_phase=True)
    x = noise((2, 16, 16, 2), seed=4)
    y = ae(tf.constant(x)).numpy()
    cross = y[..., 0] * x[..., 1] - y[..., 1] * x[..., 0]  # zero: the same phase
    dot = y[..., 0] * x[..., 0] + y[..., 1] * x[..., 1]  # >= 0: not the opposite one
    np.testing.assert_allclose(cross, 0.0, atol=1e-5)
    assert dot.min() >= 0
    model = CASSModel(load_config(REPO / "configs" / "paper" / "ppg.json", [
        *COMPLEX, "model.borrowed_phase=[\"respiratory\"]"]))
    assert [layer.name for layer in model.autoencoders["respiratory"].layers][-1] == "ae_respiratory_phased"
    assert [layer.name for layer in model.autoencoders["heart"].layers][-1] == "ae_heart_masked"
    quiet = tf.constant(0.01 * x)  # a mask bounds the output by the mixture; a magnitude does not
    assert float(tf.reduce_max(tf.norm(model.autoencoders["heart"](quiet), axis=-1))) <= float(
        tf.reduce_max(tf.norm(quiet, axis=-1)))
    phased = model.autoencoders["respiratory"](quiet).numpy()
    assert np.any(np.linalg.norm(phased, axis=-1) > np.linalg.norm(quiet.numpy(), axis=-1))


def test_consistency_projection_sums_to_the_mixture():
    mixture = tf.constant(noise((2, 16, 16, 2)))
    autoencoders = {"a": lambda x, training: 0.3 * x, "b": lambda x, training: -0.1 * x + 1.0}
    projected = apply_autoencoders(autoencoders, mixture, "project")
    np.testing.assert_allclose((projected["a"] + projected["b"]).numpy(), mixture.numpy(), rtol=0, atol=1e-5)
    plain = apply_autoencoders(autoencoders, mixture)
    np.testing.assert_allclose(plain["a"].numpy(), 0.3 * mixture.numpy(), rtol=1e-6)


def test_ideal_complex_mask_oracle_scores_zero():
    from cass_tf.data.pipeline import make_datasets
    from cass_tf.evaluate import oracle_errors

    config = load_config(REPO / "configs" / "paper" / "ppg.json", [*TINY, "stft.n_fft=32", "patch.frequency_bins=16"])
    oracle = oracle_errors(make_datasets(config, train=False), config)
    for scope in ("crops", "signals"):
        for name in config.components:
            assert oracle["complex_mask"][scope]["summary"][name]["l2"]["mean"] < 1e-2  # only the Nyquist bin is lost
    for scope in ("crops", "signals"):  # the ideal magnitudes with the mixture's phase are far from exact
        assert max(oracle[scope]["summary"][n]["l2"]["mean"] for n in config.components) > 0.05


@pytest.mark.parametrize("overrides, message", [
    (["model.input=complex"], "model.input.*complex_mask"),
    (["model.consistency=project"], "model.consistency.*complex_mask"),
    (["loss.reconstruction.waveform=1"], "waveform.*complex_mask"),
    (["loss.discriminator_input=complex"], "discriminator_input.*complex_mask"),
    (["model.input_rms=0"], "model.input_rms: must be > 0"),
    (["model.output=complex_mask", "loss.reconstruction.spectrum=0"], "at least one"),
    (["model.output=complex_mask", "loss.reconstruction.waveform_loss=l3"], "waveform_loss"),
    (["model.direct=[\"respiratory\"]"], "model.direct: needs a one-lead model.output \"complex_mask\""),
    (["model.output=complex_mask", "model.consistency=project", "model.direct=[\"respiratory\"]"],
     "model.direct: .*consistency 'project'"),
    (["model.output=complex_mask", "model.direct=[\"lungs\"]"], r"model.direct: must name distinct data.components"),
    (["model.output=complex_mask", "model.direct=[\"heart\", \"heart\"]"], r"model.direct: must name distinct"),
    (["model.borrowed_phase=[\"respiratory\"]"], "model.borrowed_phase: needs a one-lead model.output"),
    (["model.output=complex_mask", "model.direct=[\"heart\"]", "model.borrowed_phase=[\"heart\"]"],
     r"either direct or borrowed_phase, got both for \['heart'\]"),
    (["model.output=complex_mask", "model.borrowed_phase=[\"lungs\"]"], r"model.borrowed_phase: must name distinct"),
    (["model.remove_dc=true"], r"model.remove_dc: needs model.input_rms"),
])
def test_config_rules(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(REPO / "configs" / "paper" / "ppg.json", overrides)
