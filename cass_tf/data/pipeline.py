"""Owns the tf.data pipelines: waveform crops -> STFT feature patches -> batches, for training and test.

Training crops are drawn with stateless random ops keyed on (`Config.training_seed`, step, shard): batch `step` is
the same on every run, every epoch sees new crops, and resuming at step n needs only n (no iterator state). Drawing
each crop independently and uniformly over all crop positions of all training recordings is what a full shuffle of
the positions would give, so there is no shuffle buffer. Test crops are fixed: consecutive, non-overlapping crops of
each test recording, in order, so `Datasets.test_waveforms[i]` is the waveform behind test element i.
With `model.input_rms` set, every crop (mixture and components alike) is scaled so its mixture has that RMS before
the STFT (`spectral.to_reference`), as inference does with a whole input; `test_waveforms` stay as recorded.
Elements hold features (cass_tf.spectral): [F, T, 1] scaled magnitudes, or [F, T, 2] complex for complex models.
With `data.mixture_domain` "magnitude_sum" (the authors' code) the mixture feature is the sum of the sources' STFT
magnitudes instead of the magnitude of the summed waveform; `test_waveforms["mixture"]` (whose phase every estimate
takes) stays the real mix.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from cass_tf.config import Config
from cass_tf.data import Recording, load_recordings
from cass_tf.spectral import Spectral, level, to_reference

Element = tuple[tf.Tensor, dict[str, tf.Tensor]]


@dataclasses.dataclass
class Datasets:
    """What training and evaluation consume."""

    train: tf.data.Dataset | None  # infinite: (mixture [B,F,T,1], {component: [B,F,T,1]}); None if not asked for
    test: tf.data.Dataset  # finite, fixed crops, same element layout
    test_waveforms: dict[str, np.ndarray]  # "mixture" and each component: [N, crop_length], aligned with `test`
    recordings: dict[str, list[Recording]]


def make_datasets(config: Config, start_step: int = 0, train: bool = True) -> Datasets:
    """Loads the configured source and builds the test pipeline and, if `train`, the training one (resuming at
    `start_step`; cass_tf.training builds its own per-replica shards instead)."""
    recordings = load_recordings(config)
    test_waveforms = fixed_crops(recordings["test"], config)
    return Datasets(
        train=train_dataset(config, recordings["train"], config.train.batch_size, start_step) if train else None,
        test=test_dataset(config, test_waveforms, config.train.batch_size),
        test_waveforms=test_waveforms,
        recordings=recordings,
    )


def train_dataset(config: Config, recordings: list[Recording], batch_size: int, start_step: int = 0,
                  shard: int = 0, num_shards: int = 1) -> tf.data.Dataset:
    """Infinite batches of random crops; batch `step` of shard `shard` depends only on (seed, step, shard)."""
    length = config.crop_length
    _check_lengths(recordings, length, "training")
    channels = tf.constant(np.concatenate([_stack(r, config.components) for r in recordings], axis=1))  # [1+K, total]
    sizes = np.array([len(r) for r in recordings], dtype=np.int64)
    starts = tf.constant(np.concatenate([[0], np.cumsum(sizes)[:-1]]))
    positions = sizes - length + 1
    ends = tf.constant(np.cumsum(positions))
    total = int(positions.sum())
    spectral = Spectral.from_config(config)
    names = config.components

    def crops(step: tf.Tensor) -> Element:
        seed = tf.stack([tf.constant(config.training_seed, tf.int64), step * num_shards + shard])
        position = tf.random.stateless_uniform([batch_size], seed, minval=0, maxval=total, dtype=tf.int64)
        recording = tf.searchsorted(ends, position, side="right")
        first = tf.gather(starts, recording) + position - (tf.gather(ends, recording) - tf.gather(positions, recording))
        index = first[:, tf.newaxis] + tf.range(length, dtype=tf.int64)
        return _features(spectral, tf.gather(channels, index, axis=1), names, config.model.input_rms,
                         config.data.mixture_domain)

    steps = tf.data.Dataset.range(start_step, np.iinfo(np.int64).max)
    return steps.map(crops, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def test_dataset(config: Config, waveforms: dict[str, np.ndarray], batch_size: int) -> tf.data.Dataset:
    """Batches of the fixed test crops, features computed once and cached."""
    spectral = Spectral.from_config(config)
    names = config.components
    stacked = np.stack([waveforms["mixture"]] + [waveforms[n] for n in names])  # [1+K, N, L]
    crops = tf.data.Dataset.from_tensor_slices(np.moveaxis(stacked, 1, 0))  # elements [1+K, L]
    batches = crops.batch(batch_size).map(
        lambda x: _features(spectral, tf.transpose(x, [1, 0, 2]), names, config.model.input_rms,
                            config.data.mixture_domain))
    return batches.cache().prefetch(tf.data.AUTOTUNE)


def fixed_crops(recordings: list[Recording], config: Config) -> dict[str, np.ndarray]:
    """Consecutive non-overlapping crops of every recording: {"mixture": [N, L], component: [N, L]}."""
    length = config.crop_length
    _check_lengths(recordings, length, "test")
    stacked = [_stack(r, config.components) for r in recordings]
    pieces = [s[:, i * length:(i + 1) * length] for s in stacked for i in range(s.shape[1] // length)]
    crops = np.stack(pieces, axis=1)  # [1+K, N, L]
    return dict(zip(("mixture",) + config.components, crops))


def _features(spectral: Spectral, waveforms: tf.Tensor, names: tuple[str, ...], input_rms: float | None,
              mixture_domain: str = "waveform") -> Element:
    """[1+K, B, L] waveforms (mixture first) -> (mixture features, {component: features}), each crop brought to
    mixture RMS `input_rms` first (None: as they are). `mixture_domain` "magnitude_sum": the mixture feature is
    the sum of the STFT magnitudes of every component and of the rest of the mix (mixture - sum of components)."""
    if input_rms is not None:
        waveforms = to_reference(waveforms, level(waveforms[0]), input_rms)
    spectra = spectral.stft(waveforms)  # [1+K, B, frames, bins]
    features = spectral.features(spectra)  # [1+K, B, F, T, C]
    mixture = features[0]
    if mixture_domain == "magnitude_sum":
        rest = spectral.stft(waveforms[0] - tf.reduce_sum(waveforms[1:], axis=0))
        mixture = spectral.to_features(tf.reduce_sum(tf.abs(spectra[1:, ..., : spectral.bins]), axis=0)
                                       + tf.abs(rest[..., : spectral.bins]))
    return mixture, {name: features[i + 1] for i, name in enumerate(names)}


def _stack(recording: Recording, names: tuple[str, ...]) -> np.ndarray:
    return np.stack([recording.mixture] + [recording.components[n] for n in names]).astype(np.float32)


def _check_lengths(recordings: list[Recording], length: int, split: str) -> None:
    if not recordings:
        raise ValueError(f"no {split} recordings")
    if recordings[0].mixture.ndim != 1:
        raise ValueError(f"{split} recordings have {recordings[0].mixture.shape[0]} leads (data.ecg.leads): no model "
                         "trains on multi-lead recordings yet; set data.ecg.leads to 1")
    short = [r.name for r in recordings if len(r) < length]
    if short:
        raise ValueError(f"{split} recordings shorter than one crop ({length} samples): {short}")
