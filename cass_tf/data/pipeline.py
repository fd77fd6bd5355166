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
Multi-lead recordings (data.ecg.leads > 1; a one-lead model gets each lead as a recording of its own,
cass_tf.data.load_recordings) give a `model.multilead` model crops of all leads at the same time window:
waveforms [..., leads, L] and features [B, leads, F, T, 2]; a crop's leads share one gain (the RMS over all its
leads is brought to `model.input_rms`), which keeps their relative amplitudes. With `train.leads_kept` [low, high]
each training batch keeps k random leads of each example (its own leads, in random order), k uniform in [low, high]
and drawn per batch with the crops' key.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from cass_tf.config import Config
from cass_tf.data import Recording, load_recordings
from cass_tf.spectral import Spectral, recording_level, to_reference

Element = tuple[tf.Tensor, dict[str, tf.Tensor]]


@dataclasses.dataclass
class Datasets:
    """What training and evaluation consume."""

    train: tf.data.Dataset | None  # infinite: (mixture [B,F,T,1], {component: [B,F,T,1]}); None if not asked for
    test: tf.data.Dataset  # finite, fixed crops, same element layout
    test_waveforms: dict[str, np.ndarray]  # "mixture" and each component: [N, (leads,) crop_length], aligned with `test`
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
    _check_lengths(recordings, length, "training", config)
    channels = tf.constant(np.concatenate([_stack(r, config.components) for r in recordings], axis=-1))  # [1+K, (C,) total]
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
        waveforms = tf.gather(channels, index, axis=-1)  # [1+K, (C,) B, L]
        if config.model.multilead:
            waveforms = keep_leads(tf.transpose(waveforms, [0, 2, 1, 3]), config.train.leads_kept, seed)
        return _features(spectral, waveforms, names, config.model.input_rms, config.data.mixture_domain)

    steps = tf.data.Dataset.range(start_step, np.iinfo(np.int64).max)
    return steps.map(crops, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def keep_leads(waveforms: tf.Tensor, kept: tuple[int, int] | None, seed: tf.Tensor) -> tf.Tensor:
    """[1+K, B, C, L] -> [1+K, B, k, L]: each example's own k random leads in random order, the same leads for the
    mixture and every component; k uniform in `kept` [low, high] (one k for the batch). None: all leads as they are.
    `seed` is the stateless random key (two int64)."""
    if kept is None:
        return waveforms
    leads = tf.shape(waveforms)[2]
    count_key, order_key = tf.unstack(tf.random.experimental.stateless_split(seed, 2))  # not the crops' own key
    count = tf.random.stateless_uniform([], count_key, minval=kept[0], maxval=kept[1] + 1, dtype=tf.int32)
    order = tf.argsort(tf.random.stateless_uniform([tf.shape(waveforms)[1], leads], order_key), axis=-1)
    chosen = order[:, :count]  # [B, k]
    per_example = tf.transpose(waveforms, [1, 0, 2, 3])  # [B, 1+K, C, L]
    return tf.transpose(tf.gather(per_example, chosen, axis=2, batch_dims=1), [1, 0, 2, 3])


def test_dataset(config: Config, waveforms: dict[str, np.ndarray], batch_size: int) -> tf.data.Dataset:
    """Batches of the fixed test crops, features computed once and cached."""
    spectral = Spectral.from_config(config)
    names = config.components
    stacked = np.stack([waveforms["mixture"]] + [waveforms[n] for n in names])  # [1+K, N, (C,) L]
    crops = tf.data.Dataset.from_tensor_slices(np.moveaxis(stacked, 1, 0))  # elements [1+K, (C,) L]
    order = [1, 0] + list(range(2, stacked.ndim))
    batches = crops.batch(batch_size).map(
        lambda x: _features(spectral, tf.transpose(x, order), names, config.model.input_rms,
                            config.data.mixture_domain))
    return batches.cache().prefetch(tf.data.AUTOTUNE)


def fixed_crops(recordings: list[Recording], config: Config) -> dict[str, np.ndarray]:
    """Consecutive non-overlapping crops of every recording: {"mixture": [N, (leads,) L], component: the same}."""
    length = config.crop_length
    _check_lengths(recordings, length, "test", config)
    stacked = [_stack(r, config.components) for r in recordings]
    pieces = [s[..., i * length:(i + 1) * length] for s in stacked for i in range(s.shape[-1] // length)]
    crops = np.stack(pieces, axis=1)  # [1+K, N, (C,) L]
    return dict(zip(("mixture",) + config.components, crops))


def _features(spectral: Spectral, waveforms: tf.Tensor, names: tuple[str, ...], input_rms: float | None,
              mixture_domain: str = "waveform") -> Element:
    """[1+K, B, (C,) L] waveforms (mixture first) -> (mixture features, {component: features}), each crop brought to
    mixture RMS `input_rms` first (None: as they are; C leads: one gain for the crop, from the RMS over its leads).
    `mixture_domain` "magnitude_sum": the mixture feature is the sum of the STFT magnitudes of every component and of
    the rest of the mix (mixture - sum of components)."""
    if input_rms is not None:
        mixture = waveforms[0]
        leads = len(waveforms.shape) == 4  # leads: the crop's level over all of them, broadcast to [B, 1]
        crop_level = recording_level(mixture, leads)
        crop_level = crop_level[:, tf.newaxis] if leads else crop_level
        waveforms = to_reference(waveforms, crop_level, input_rms)
    spectra = spectral.stft(waveforms)  # [1+K, B, (C,) frames, bins]
    features = spectral.features(spectra)  # [1+K, B, (C,) F, T, channels]
    mixture = features[0]
    if mixture_domain == "magnitude_sum":
        rest = spectral.stft(waveforms[0] - tf.reduce_sum(waveforms[1:], axis=0))
        mixture = spectral.to_features(tf.reduce_sum(tf.abs(spectra[1:, ..., : spectral.bins]), axis=0)
                                       + tf.abs(rest[..., : spectral.bins]))
    return mixture, {name: features[i + 1] for i, name in enumerate(names)}


def _stack(recording: Recording, names: tuple[str, ...]) -> np.ndarray:
    return np.stack([recording.mixture] + [recording.components[n] for n in names]).astype(np.float32)


def _check_lengths(recordings: list[Recording], length: int, split: str, config: Config) -> None:
    """Recordings exist, have the lead layout the model takes (1-D, or (leads, samples) for model.multilead, the
    same leads in all) and are at least one crop long."""
    if not recordings:
        raise ValueError(f"no {split} recordings")
    shapes = {r.mixture.shape[:-1] for r in recordings}
    if config.model.multilead and (len(shapes) != 1 or len(next(iter(shapes))) != 1):
        raise ValueError(f"{split} recordings: model.multilead needs (leads, samples) arrays with the same leads in "
                         f"all, got lead shapes {sorted(shapes)}")
    if not config.model.multilead and shapes != {()}:
        raise ValueError(f"{split} recordings have {recordings[0].mixture.shape[0]} leads: a one-lead model takes "
                         "each lead as a recording (cass_tf.data.lead_recordings)")
    short = [r.name for r in recordings if len(r) < length]
    if short:
        raise ValueError(f"{split} recordings shorter than one crop ({length} samples): {short}")
