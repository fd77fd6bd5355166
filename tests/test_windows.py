"""Tests for cass_tf.windows.separate_waveform: any length, no seams, chunking, graph mode."""


import numpy as np
import pytest
import tensorflow as tf

from cass_tf.config import PatchConfig, ScalingConfig, STFTConfig
from cass_tf.spectral import Spectral, scale, unscale
from cass_tf.windows import separate_waveform

NAMES = ("first", "second")
STFT = STFTConfig(n_fft=32, hop=8, window=32)
FRAMES = 8
SPECTRAL = Spectral(STFT, PatchConfig(frequency_bins=STFT.n_fft // 2 + 1, frames=FRAMES), ScalingConfig("log1p"))
CROP = SPECTRAL.samples_for(FRAMES)
LENGTHS = [1, 17, CROP, 10 * CROP + 3]


def identity(features):
    return {name: features for name in NAMES}


def halve(features):
    """Half the linear magnitude for the first component, a quarter for the second."""
    magnitude = unscale(features, SPECTRAL.scaling)
    return {"first": scale(0.5 * magnitude, SPECTRAL.scaling), "second": scale(0.25 * magnitude, SPECTRAL.scaling)}


def waveform(samples, seed=0):
    return np.random.default_rng(seed).normal(size=(2, samples)).astype(np.float32)


@pytest.mark.parametrize("samples", LENGTHS)
def test_identity_reproduces_input(samples):
    x = waveform(samples)
    out = separate_waveform(SPECTRAL, identity, NAMES, x)
    assert set(out) == set(NAMES)
    for name in NAMES:
        y = out[name].numpy()
        assert y.shape == x.shape and y.dtype == np.float32
        np.testing.assert_allclose(y, x, atol=1e-5)


def test_identity_in_graph():
    separate = tf.function(lambda x: separate_waveform(SPECTRAL, identity, NAMES, x),
                           input_signature=[tf.TensorSpec([None, None], tf.float32)])
    for samples in LENGTHS:
        x = waveform(samples, seed=samples)
        out = separate(tf.constant(x))
        np.testing.assert_allclose(out["first"].numpy(), x, atol=1e-5)
        np.testing.assert_allclose(out["second"].numpy(), x, atol=1e-5)
    assert len(separate._list_all_concrete_functions()) == 1  # one trace serves every length


@pytest.mark.parametrize("samples", [17, 10 * CROP + 3])
def test_scaled_magnitude_has_no_seams(samples):
    """Scaling every patch's linear magnitude by c gives exactly c times the input: the cross-fade weights sum to 1."""
    x = waveform(samples, seed=1)
    out = separate_waveform(SPECTRAL, halve, NAMES, x)
    np.testing.assert_allclose(out["first"].numpy(), 0.5 * x, atol=1e-5)
    np.testing.assert_allclose(out["second"].numpy(), 0.25 * x, atol=1e-5)


def test_patch_dependent_network_is_cross_faded():
    """A network that scales each patch differently: output stays within the range of per-patch gains, smoothly."""
    def varying(features):
        gain = 1.0 + tf.cast(tf.range(tf.shape(features)[0]), tf.float32)[:, None, None, None]
        return {name: scale(gain * unscale(features, SPECTRAL.scaling), SPECTRAL.scaling) for name in NAMES}

    samples = 10 * CROP
    x = np.ones((1, samples), np.float32)
    y = separate_waveform(SPECTRAL, varying, NAMES, x)["first"].numpy()[0]
    inner = y[CROP:-CROP]
    step = np.diff(inner)
    # gains 1, 2, 3, ... per patch blend into a smooth ramp: rising everywhere, no jumps (unnormalised weights: 0.37)
    assert inner.min() > 1.0 and np.all(step > -1e-3) and np.all(step < 0.1)


def test_max_patches_same_result():
    x = waveform(10 * CROP + 3, seed=2)
    one = separate_waveform(SPECTRAL, halve, NAMES, x, max_patches=1)
    many = separate_waveform(SPECTRAL, halve, NAMES, x, max_patches=64)
    three = separate_waveform(SPECTRAL, halve, NAMES, x, max_patches=3)
    for name in NAMES:
        np.testing.assert_allclose(one[name].numpy(), many[name].numpy(), atol=1e-6)
        np.testing.assert_allclose(three[name].numpy(), many[name].numpy(), atol=1e-6)


def test_max_patches_bounds_network_batch():
    """The networks never see more than max_patches patches at once, and every patch is seen (eager: static sizes)."""
    def recorder(sizes):
        def network(features):
            sizes.append(int(features.shape[0]))
            return identity(features)
        return network

    samples = 10 * CROP + 3
    x = waveform(samples, seed=3)
    whole, chunked = [], []
    separate_waveform(SPECTRAL, recorder(whole), NAMES, x, max_patches=64)
    separate_waveform(SPECTRAL, recorder(chunked), NAMES, x, max_patches=5)
    (total,) = whole
    patch_hop = FRAMES // 2 * STFT.hop  # samples between patch starts
    assert total >= 2 * (samples // patch_hop)  # both rows, patches every patch_hop samples
    assert len(chunked) == -(-total // 5) and max(chunked) <= 5 and sum(chunked) >= total


def test_batch_rows_independent():
    """Each row of the batch is separated on its own: a row's output does not depend on its neighbour."""
    x = waveform(3 * CROP + 5, seed=4)
    together = separate_waveform(SPECTRAL, halve, NAMES, x)["first"].numpy()
    alone = separate_waveform(SPECTRAL, halve, NAMES, x[1:])["first"].numpy()
    np.testing.assert_allclose(together[1:], alone, atol=1e-6)
