"""Owns STFT, inverse STFT and magnitude scaling, in TensorFlow: training, evaluation and export all use this; and
the NumPy spectrogram the figures draw (`spectrogram_db`).

Conventions:
- A waveform is float32 `[..., samples]`; its spectrum is complex64 `[..., frames, n_fft/2+1]` (tf.signal.stft,
  no padding: how many frames a length gives, and the reverse, is cass_tf.config.STFTConfig's arithmetic).
- A *feature* is what the autoencoders take and give: the lowest `patch.frequency_bins` bins, laid out
  frequency-major with a channel axis: for magnitude models the scaled magnitude, float32 `[..., F, T, 1]`; for
  complex models (`model.output` "complex_mask") the real and imaginary parts, linear, float32 `[..., F, T, 2]`.
- Scaling (config `scaling`, whose kinds cass_tf.config.ScalingConfig defines): each is monotone on m >= 0 and
  exactly inverted by `unscale`; a non-negative network output always maps back to a valid magnitude.
- Back to a waveform: a component magnitude takes the *mixture's* phase (a complex feature is its own spectrum);
  bins above F are set to zero; the
  inverse STFT divides the overlap-added frames by the actual overlap-added squared window, so reconstruction is
  exact everywhere except the `margin` samples at each end, where that envelope is below COVERAGE_FLOOR of the
  squared window's peak (dividing by it there would amplify any inconsistency of an estimated spectrum).
- Level (`level`): the RMS of each row of a waveform, computed as max|x| * rms(x / max|x|) so it neither
  underflows nor overflows in float32; an all-zero row has level 0.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from cass_tf.config import Config, PatchConfig, ScalingConfig, STFTConfig

_WINDOWS = {"hann": tf.signal.hann_window, "hamming": tf.signal.hamming_window}
COVERAGE_FLOOR = 0.1  # squared-window envelope below this fraction of its peak: not covered (edge gain 1/w <= ~3)


def scale(magnitude: tf.Tensor, scaling: ScalingConfig) -> tf.Tensor:
    """Linear magnitude -> network domain."""
    if scaling.kind == "log1p":
        return tf.math.log1p(scaling.gain * magnitude)
    if scaling.kind == "power":
        return tf.pow(scaling.gain * magnitude, scaling.exponent)
    return magnitude


def unscale(values: tf.Tensor, scaling: ScalingConfig) -> tf.Tensor:
    """Network domain -> linear magnitude (inverse of `scale`; negative inputs are clipped to 0 first)."""
    values = tf.nn.relu(values)
    if scaling.kind == "log1p":
        return tf.math.expm1(values) / scaling.gain
    if scaling.kind == "power":
        return tf.pow(values, 1.0 / scaling.exponent) / scaling.gain
    return values


class Spectral:
    """STFT <-> (F, T) feature patches for one config."""

    def __init__(self, stft: STFTConfig, patch: PatchConfig, scaling: ScalingConfig, complex_features: bool = False):
        self.stft_config = stft
        self.n_fft = stft.n_fft
        self.hop = stft.hop
        self.window = stft.window
        self.window_fn = _WINDOWS[stft.window_fn]
        self.bins = patch.frequency_bins
        self.frames = patch.frames
        self.scaling = scaling
        self.complex = complex_features

    @classmethod
    def from_config(cls, config: Config) -> "Spectral":
        return cls(config.stft, config.patch, config.scaling, config.model.complex)

    @property
    def channels(self) -> int:
        """Channels of a feature: 2 (real, imaginary) for complex models, else 1 (scaled magnitude)."""
        return 2 if self.complex else 1

    @property
    def margin(self) -> int:
        """Samples at each end of an inverse STFT that are not reconstructed: there the overlap-added squared window
        is at most COVERAGE_FLOOR of its peak (see `inverse_stft`)."""
        squared = self.window_fn(self.window, dtype=tf.float32).numpy() ** 2
        envelope = tf.signal.overlap_and_add(tf.tile(squared[tf.newaxis], [self.window // self.hop + 1, 1]), self.hop).numpy()
        return int((envelope[: self.window] <= COVERAGE_FLOOR * squared.max()).sum())

    def num_frames(self, samples: int) -> int:
        """Frames tf.signal.stft yields for `samples` samples (0 when shorter than one window): STFTConfig's."""
        return self.stft_config.num_frames(samples)

    def num_frames_tensor(self, samples: tf.Tensor) -> tf.Tensor:
        """`num_frames` for a scalar int32 tensor."""
        return tf.maximum(0, self.stft_config.frames_in(samples))

    def samples_for(self, frames: int | tf.Tensor) -> int | tf.Tensor:
        """Samples that give exactly `frames` frames (an int or a tensor): STFTConfig's."""
        return self.stft_config.samples_for(frames)

    def stft(self, waveform: tf.Tensor) -> tf.Tensor:
        """float32 [..., samples] -> complex64 [..., frames, n_fft/2+1]."""
        return tf.signal.stft(tf.cast(waveform, tf.float32), frame_length=self.window, frame_step=self.hop,
                              fft_length=self.n_fft, window_fn=self.window_fn)

    def features(self, spectrum: tf.Tensor) -> tf.Tensor:
        """complex [..., T, bins] -> feature float32 [..., F, T, channels] (see the module doc)."""
        if self.complex:
            lowest = tf.linalg.matrix_transpose(spectrum[..., : self.bins])
            return tf.stack([tf.math.real(lowest), tf.math.imag(lowest)], axis=-1)
        return self.to_features(tf.abs(spectrum[..., : self.bins]))

    def spectrum(self, features: tf.Tensor) -> tf.Tensor:
        """Complex feature [..., F, T, 2] -> complex64 spectrum [..., T, F] (time-major, lowest F bins)."""
        features = tf.cast(features, tf.float32)
        return tf.linalg.matrix_transpose(tf.complex(features[..., 0], features[..., 1]))

    def to_features(self, magnitude: tf.Tensor) -> tf.Tensor:
        """Linear magnitude [..., T, F] -> scaled feature [..., F, T, 1]."""
        return scale(tf.linalg.matrix_transpose(magnitude), self.scaling)[..., tf.newaxis]

    def magnitude(self, features: tf.Tensor) -> tf.Tensor:
        """Scaled feature [..., F, T, 1] -> linear magnitude [..., T, F] (time-major, like the spectrum)."""
        return tf.linalg.matrix_transpose(unscale(tf.cast(features[..., 0], tf.float32), self.scaling))

    def waveform(self, features: tf.Tensor, mixture_spectrum: tf.Tensor, samples: int | tf.Tensor) -> tf.Tensor:
        """Component features [..., F, T, C] + the mixture's spectrum [..., T, bins] -> waveform [..., samples].

        A complex feature is inverted as it is (the mixture's spectrum is not used)."""
        if self.complex:
            return self.waveform_from_spectrum(self.spectrum(features), samples)
        return self.waveform_from_magnitude(self.magnitude(features), mixture_spectrum, samples)

    def waveform_from_spectrum(self, spectrum: tf.Tensor, samples: int | tf.Tensor) -> tf.Tensor:
        """Complex spectrum of the lowest F bins [..., T, F] -> waveform [..., samples] (bins above F zero)."""
        return self.inverse_stft(self._full_bins(spectrum), samples)

    def waveform_from_magnitude(self, magnitude: tf.Tensor, mixture_spectrum: tf.Tensor,
                                samples: int | tf.Tensor) -> tf.Tensor:
        """Linear magnitude [..., T, F] with the mixture's phase (spectrum [..., T, bins]) -> waveform [..., samples]."""
        magnitude = self._full_bins(magnitude)
        phase = tf.math.angle(mixture_spectrum)
        spectrum = tf.complex(magnitude * tf.cos(phase), magnitude * tf.sin(phase))
        return self.inverse_stft(spectrum, samples)

    def _full_bins(self, lowest: tf.Tensor) -> tf.Tensor:
        """[..., T, F] -> [..., T, n_fft/2+1]: the bins above F set to zero."""
        pad = [[0, 0]] * (len(lowest.shape) - 1) + [[0, self.n_fft // 2 + 1 - self.bins]]
        return tf.pad(lowest, pad)

    def inverse_stft(self, spectrum: tf.Tensor, samples: int | tf.Tensor) -> tf.Tensor:
        """complex [..., frames, bins] -> float32 [..., samples], normalised by the overlap-added squared window."""
        frames = tf.signal.inverse_stft(spectrum, frame_length=self.window, frame_step=self.hop,
                                        fft_length=self.n_fft, window_fn=self.window_fn)
        num_frames = tf.shape(spectrum)[-2]
        squared = tf.square(self.window_fn(self.window, dtype=tf.float32))
        envelope = tf.signal.overlap_and_add(tf.tile(squared[tf.newaxis], [num_frames, 1]), self.hop)
        safe = envelope > COVERAGE_FLOOR * tf.reduce_max(squared)
        waveform = tf.where(safe, frames / tf.where(safe, envelope, 1.0), 0.0)
        return _fit_length(waveform, samples)


def level(waveform: tf.Tensor) -> tf.Tensor:
    """RMS over the last axis, float32 [...]: max|x| * rms(x / max|x|) (no under/overflow); 0 for an all-zero row."""
    waveform = tf.cast(waveform, tf.float32)
    peak = tf.reduce_max(tf.abs(waveform), axis=-1)
    safe = tf.where(peak > 0, peak, 1.0)
    return peak * tf.sqrt(tf.reduce_mean(tf.square(waveform / safe[..., tf.newaxis]), axis=-1))


def centred(waveform: tf.Tensor) -> tf.Tensor:
    """float32 waveform less its mean over the last axis (each row's, each lead's): what a model.remove_dc model
    separates (cass_tf.windows.separate_at_level; the blocks of cass_tf.separator take the whole row's)."""
    waveform = tf.cast(waveform, tf.float32)
    return waveform - tf.reduce_mean(waveform, axis=-1, keepdims=True)


def recording_level(waveform: tf.Tensor, leads: bool = False) -> tf.Tensor:
    """[B] levels (`spectral.level`) of [B, samples] rows, or with `leads` of [B, leads, samples] recordings over all
    their leads together: the level a model's input is brought to `model.input_rms` from (in training and in
    cass_tf.windows.separate_at_level)."""
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    return level(tf.reshape(waveform, [tf.shape(waveform)[0], -1]) if leads else waveform)


def to_reference(waveform: tf.Tensor, level_: tf.Tensor, reference: float) -> tf.Tensor:
    """waveform [..., samples] scaled by reference / level_ [...] (0 where the level is 0: silence stays silent)."""
    level_ = tf.cast(level_, tf.float32)
    gain = tf.where(level_ > 0, reference / tf.where(level_ > 0, level_, 1.0), 0.0)
    return tf.cast(waveform, tf.float32) * gain[..., tf.newaxis]


def from_reference(waveform: tf.Tensor, level_: tf.Tensor, reference: float) -> tf.Tensor:
    """The inverse of `to_reference` for outputs: waveform [..., samples] scaled by level_ / reference."""
    return tf.cast(waveform, tf.float32) * (tf.cast(level_, tf.float32) / reference)[..., tf.newaxis]


def _fit_length(waveform: tf.Tensor, samples: int | tf.Tensor) -> tf.Tensor:
    """Crops or zero-pads the last axis to `samples`."""
    waveform = waveform[..., :samples]
    missing = samples - tf.shape(waveform)[-1]
    pad = tf.concat([tf.zeros([tf.rank(waveform) - 1, 2], tf.int32), [[0, missing]]], axis=0)
    return tf.pad(waveform, pad)


def spectrogram_db(signal: np.ndarray, window: int, hop: int) -> np.ndarray:
    """[bins, frames] Hann-windowed STFT magnitude in dB, in NumPy, for figures (cass_tf.plots): a signal shorter
    than `window` is zero-padded to one frame."""
    x = np.pad(signal, (0, max(0, window - len(signal))))
    frames = np.lib.stride_tricks.sliding_window_view(x, window)[::hop] * np.hanning(window)
    return 20 * np.log10(np.abs(np.fft.rfft(frames, axis=-1)).T + 1e-9)
