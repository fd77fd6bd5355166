"""Tests for cass_tf.spectral: STFT and inverse STFT against NumPy, round trips, scaling, feature layout."""


import numpy as np
import pytest
import tensorflow as tf

from cass_tf.config import PatchConfig, ScalingConfig, STFTConfig
from cass_tf.spectral import COVERAGE_FLOOR, Spectral, scale, unscale

ECG_STFT = STFTConfig(n_fft=128, hop=16, window=128)
BACH10_STFT = STFTConfig(n_fft=1024, hop=256, window=1024)
SHORT_WINDOW = STFTConfig(n_fft=64, hop=12, window=48)  # window < n_fft: frames are zero-padded to n_fft
SCALINGS = [ScalingConfig("linear"), ScalingConfig("log1p", gain=2.0), ScalingConfig("power", gain=3.0, exponent=0.3)]


def full_patch(stft, frames=8):
    """A patch covering every bin (F = n_fft/2+1, not divisible by 8, which Spectral itself does not require)."""
    return PatchConfig(frequency_bins=stft.n_fft // 2 + 1, frames=frames)


def periodic_window(kind, length):
    n = np.arange(length)
    a = 0.5 if kind == "hann" else 0.54
    return a - (1 - a) * np.cos(2 * np.pi * n / length)


def np_frames(signal, stft):
    count = 1 + (signal.shape[-1] - stft.window) // stft.hop
    index = np.arange(count)[:, None] * stft.hop + np.arange(stft.window)
    return signal[..., index]  # [..., frames, window]


def np_stft(signal, stft):
    window = periodic_window(stft.window_fn, stft.window)
    return np.fft.rfft(np_frames(np.asarray(signal, np.float64), stft) * window, n=stft.n_fft)


def np_istft(spectrum, stft, samples):
    """Windowed overlap-add of irfft frames, divided by the overlap-added squared window (0 where it is ~0)."""
    window = periodic_window(stft.window_fn, stft.window)
    frames = np.fft.irfft(spectrum, n=stft.n_fft)[..., : stft.window] * window
    out = np.zeros(spectrum.shape[:-2] + (samples,))
    envelope = np.zeros(samples)
    for k in range(spectrum.shape[-2]):
        start = k * stft.hop
        out[..., start:start + stft.window] += frames[..., k, :]
        envelope[start:start + stft.window] += window ** 2
    safe = envelope > COVERAGE_FLOOR * (window ** 2).max()
    return np.where(safe, out / np.where(safe, envelope, 1.0), 0.0)


def np_scale(m, scaling):
    if scaling.kind == "log1p":
        return np.log1p(scaling.gain * m)
    if scaling.kind == "power":
        return (scaling.gain * m) ** scaling.exponent
    return m


def signal(samples, *batch, seed=0):
    return np.random.default_rng(seed).normal(size=(*batch, samples)).astype(np.float32)


def interior(spectral, samples):
    return slice(spectral.margin, samples - spectral.margin)


@pytest.mark.parametrize("stft", [ECG_STFT, SHORT_WINDOW, STFTConfig(n_fft=64, hop=16, window=64, window_fn="hamming")])
def test_stft_matches_numpy(stft):
    spectral = Spectral(stft, full_patch(stft), ScalingConfig())
    x = signal(1000, 2)
    got = spectral.stft(x).numpy()
    expected = np_stft(x, stft)
    assert got.shape == expected.shape == (2, 1 + (1000 - stft.window) // stft.hop, stft.n_fft // 2 + 1)
    assert got.dtype == np.complex64
    assert np.max(np.abs(got - expected)) < 1e-4 * np.max(np.abs(expected))


def test_num_frames_and_samples_for():
    spectral = Spectral(ECG_STFT, full_patch(ECG_STFT), ScalingConfig())
    for samples in (127, 128, 143, 144, 1000):
        expected = np_frames(np.zeros(samples), ECG_STFT).shape[0] if samples >= 128 else 0
        assert spectral.num_frames(samples) == expected
        assert int(spectral.num_frames_tensor(tf.constant(samples))) == expected
        assert spectral.stft(np.zeros(samples, np.float32)).shape[0] == expected
    for frames in (1, 8, 64):
        assert spectral.num_frames(spectral.samples_for(frames)) == frames
        assert spectral.num_frames(spectral.samples_for(frames) - 1) == frames - 1


@pytest.mark.parametrize("stft", [ECG_STFT, BACH10_STFT, SHORT_WINDOW])
def test_margin_matches_numpy(stft):
    spectral = Spectral(stft, full_patch(stft), ScalingConfig())
    squared = periodic_window("hann", stft.window) ** 2
    envelope = np.zeros(4 * stft.window)
    for start in range(0, 3 * stft.window, stft.hop):
        envelope[start:start + stft.window] += squared
    expected = int((envelope[: stft.window] <= COVERAGE_FLOOR * squared.max()).sum())
    assert spectral.margin == expected
    assert 0 < spectral.margin < stft.window // 4  # a 10% floor on a Hann window: about window / 5


@pytest.mark.parametrize("stft", [ECG_STFT, BACH10_STFT, SHORT_WINDOW])
def test_inverse_stft_round_trip(stft):
    spectral = Spectral(stft, full_patch(stft), ScalingConfig())
    samples = spectral.samples_for(40)
    x = signal(samples, 2)
    y = spectral.inverse_stft(spectral.stft(x), samples).numpy()
    keep = interior(spectral, samples)
    assert y.shape == x.shape
    assert np.linalg.norm(y[:, keep] - x[:, keep]) / np.linalg.norm(x[:, keep]) < 1e-4


@pytest.mark.parametrize("stft", [ECG_STFT, BACH10_STFT])
def test_waveform_round_trip_all_bins(stft):
    """waveform() of the mixture's own features with the mixture's phase is the mixture."""
    spectral = Spectral(stft, full_patch(stft), ScalingConfig("log1p"))
    samples = spectral.samples_for(24)
    x = signal(samples, 3, seed=1)
    spectrum = spectral.stft(x)
    y = spectral.waveform(spectral.features(spectrum), spectrum, samples).numpy()
    keep = interior(spectral, samples)
    assert np.linalg.norm(y[:, keep] - x[:, keep]) / np.linalg.norm(x[:, keep]) < 1e-4


def test_inverse_stft_matches_numpy():
    stft = SHORT_WINDOW
    spectral = Spectral(stft, full_patch(stft), ScalingConfig())
    rng = np.random.default_rng(2)
    spectrum = rng.normal(size=(2, 9, 33)) + 1j * rng.normal(size=(2, 9, 33))
    spectrum[..., 0] = spectrum[..., 0].real  # DC and Nyquist of a real frame are real
    spectrum[..., -1] = spectrum[..., -1].real
    samples = spectral.samples_for(9)
    got = spectral.inverse_stft(tf.constant(spectrum, tf.complex64), samples).numpy()
    expected = np_istft(spectrum, stft, samples)
    assert np.max(np.abs(got - expected)) < 1e-4 * np.max(np.abs(expected))


def test_inverse_stft_fits_length():
    spectral = Spectral(ECG_STFT, full_patch(ECG_STFT), ScalingConfig())
    samples = spectral.samples_for(10)
    x = signal(samples, 1)
    spectrum = spectral.stft(x)
    longer = spectral.inverse_stft(spectrum, samples + 30).numpy()
    shorter = spectral.inverse_stft(spectrum, samples - 30).numpy()
    full = spectral.inverse_stft(spectrum, samples).numpy()
    assert longer.shape == (1, samples + 30) and shorter.shape == (1, samples - 30)
    np.testing.assert_array_equal(longer[:, samples:], 0)
    np.testing.assert_array_equal(longer[:, :samples], full)
    np.testing.assert_array_equal(shorter, full[:, : samples - 30])


@pytest.mark.parametrize("scaling", SCALINGS, ids=lambda s: s.kind)
def test_scale_matches_numpy_and_inverts(scaling):
    m = np.random.default_rng(3).uniform(0, 20, size=(4, 50)).astype(np.float32)
    m[0, :3] = 0.0
    scaled = scale(tf.constant(m), scaling).numpy()
    np.testing.assert_allclose(scaled, np_scale(m.astype(np.float64), scaling), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(unscale(tf.constant(scaled), scaling).numpy(), m, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scaling", SCALINGS, ids=lambda s: s.kind)
def test_unscale_clips_negative(scaling):
    values = tf.constant([-3.0, -1e-3, 0.0], tf.float32)
    np.testing.assert_array_equal(unscale(values, scaling).numpy(), [0.0, 0.0, 0.0])


@pytest.mark.parametrize("scaling", SCALINGS, ids=lambda s: s.kind)
def test_features_layout(scaling):
    patch = PatchConfig(frequency_bins=24, frames=8)
    spectral = Spectral(ECG_STFT, patch, scaling)
    x = signal(spectral.samples_for(8), 2, 3, seed=4)
    features = spectral.features(spectral.stft(x)).numpy()
    magnitude = np.abs(np_stft(x, ECG_STFT))[..., :24]  # [2, 3, T, F]
    expected = np_scale(np.swapaxes(magnitude, -1, -2), scaling)[..., None]
    assert features.shape == (2, 3, 24, 8, 1) and features.dtype == np.float32
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("scaling", SCALINGS, ids=lambda s: s.kind)
def test_magnitude_inverts_to_features(scaling):
    spectral = Spectral(ECG_STFT, PatchConfig(frequency_bins=24, frames=8), scaling)
    spectrum = spectral.stft(signal(spectral.samples_for(8), 2, seed=5))
    magnitude = spectral.magnitude(spectral.features(spectrum)).numpy()
    assert magnitude.shape == (2, 8, 24)
    np.testing.assert_allclose(magnitude, np.abs(spectrum.numpy()[..., :24]), rtol=1e-4, atol=1e-4)


def test_waveform_low_passes_above_patch():
    """With F < n_fft/2+1 the bins above F are dropped: the result is the NumPy iSTFT of the truncated spectrum."""
    stft = ECG_STFT
    spectral = Spectral(stft, PatchConfig(frequency_bins=32, frames=16), ScalingConfig("log1p"))
    samples = spectral.samples_for(30)
    x = signal(samples, 2, seed=6)
    spectrum = spectral.stft(x)
    got = spectral.waveform(spectral.features(spectrum), spectrum, samples).numpy()
    reference = np_stft(x, stft)
    reference[..., 32:] = 0
    expected = np_istft(reference, stft, samples)
    keep = interior(spectral, samples)
    assert np.max(np.abs(got[:, keep] - expected[:, keep])) < 1e-4 * np.max(np.abs(expected))
    # and it really is a different signal from x: the upper half of the band is gone
    assert np.linalg.norm(got[:, keep] - x[:, keep]) > 0.3 * np.linalg.norm(x[:, keep])


def test_waveform_uses_given_magnitude_and_mixture_phase():
    """A component whose magnitude is half the mixture's comes back as half the mixture."""
    stft = ECG_STFT
    scaling = ScalingConfig("power", gain=1.0, exponent=0.5)
    spectral = Spectral(stft, full_patch(stft), scaling)
    samples = spectral.samples_for(20)
    x = signal(samples, 1, seed=7)
    spectrum = spectral.stft(x)
    half = spectral.to_features(0.5 * tf.abs(spectrum))
    y = spectral.waveform(half, spectrum, samples).numpy()
    keep = interior(spectral, samples)
    np.testing.assert_allclose(y[:, keep], 0.5 * x[:, keep], atol=1e-4)
