"""Owns the tf.data pipelines: waveform crops -> STFT feature patches -> batches, for training and test.

Training crops are drawn with stateless random ops keyed on (seed, step, shard): batch `step` is the same on every
run, every epoch sees new crops, and resuming at step n needs only n (no iterator state). Drawing each crop
independently and uniformly over all crop positions of all training recordings is what a full shuffle of the
positions would give, so there is no shuffle buffer. Test crops are fixed: consecutive, non-overlapping crops of
each test recording, in order, so `Datasets.test_waveforms[i]` is the waveform behind test element i.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from cass_tf.config import Config
from cass_tf.data import Recording, load_recordings
from cass_tf.spectral import Spectral

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
    `start_step`; cass_tf.train builds its own per-replica shards instead)."""
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
        seed = tf.stack([tf.constant(config.seed, tf.int64), step * num_shards + shard])
        position = tf.random.stateless_uniform([batch_size], seed, minval=0, maxval=total, dtype=tf.int64)
        recording = tf.searchsorted(ends, position, side="right")
        first = tf.gather(starts, recording) + position - (tf.gather(ends, recording) - tf.gather(positions, recording))
        index = first[:, tf.newaxis] + tf.range(length, dtype=tf.int64)
        return _features(spectral, tf.gather(channels, index, axis=1), names)

    steps = tf.data.Dataset.range(start_step, np.iinfo(np.int64).max)
    return steps.map(crops, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def test_dataset(config: Config, waveforms: dict[str, np.ndarray], batch_size: int) -> tf.data.Dataset:
    """Batches of the fixed test crops, features computed once and cached."""
    spectral = Spectral.from_config(config)
    names = config.components
    stacked = np.stack([waveforms["mixture"]] + [waveforms[n] for n in names])  # [1+K, N, L]
    crops = tf.data.Dataset.from_tensor_slices(np.moveaxis(stacked, 1, 0))  # elements [1+K, L]
    batches = crops.batch(batch_size).map(lambda x: _features(spectral, tf.transpose(x, [1, 0, 2]), names))
    return batches.cache().prefetch(tf.data.AUTOTUNE)


def fixed_crops(recordings: list[Recording], config: Config) -> dict[str, np.ndarray]:
    """Consecutive non-overlapping crops of every recording: {"mixture": [N, L], component: [N, L]}."""
    length = config.crop_length
    _check_lengths(recordings, length, "test")
    stacked = [_stack(r, config.components) for r in recordings]
    pieces = [s[:, i * length:(i + 1) * length] for s in stacked for i in range(s.shape[1] // length)]
    crops = np.stack(pieces, axis=1)  # [1+K, N, L]
    return dict(zip(("mixture",) + config.components, crops))


def _features(spectral: Spectral, waveforms: tf.Tensor, names: tuple[str, ...]) -> Element:
    """[1+K, B, L] waveforms (mixture first) -> (mixture features, {component: features})."""
    features = spectral.features(spectral.stft(waveforms))  # [1+K, B, F, T, 1]
    return features[0], {name: features[i + 1] for i, name in enumerate(names)}


def _stack(recording: Recording, names: tuple[str, ...]) -> np.ndarray:
    return np.stack([recording.mixture] + [recording.components[n] for n in names]).astype(np.float32)


def _check_lengths(recordings: list[Recording], length: int, split: str) -> None:
    if not recordings:
        raise ValueError(f"no {split} recordings")
    short = [r.name for r in recordings if len(r) < length]
    if short:
        raise ValueError(f"{split} recordings shorter than one crop ({length} samples): {short}")
