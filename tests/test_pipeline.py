"""Tests for cass_tf.data.pipeline on a tiny PPG config: layout, determinism, resume, shards, crop contents."""


import pathlib

import numpy as np
import pytest
import tensorflow as tf

from cass_tf.config import load_config
from cass_tf.data import Recording
from cass_tf.data.pipeline import fixed_crops, make_datasets, train_dataset
from cass_tf.data.pipeline import test_dataset as make_test_dataset  # (not collected by pytest)

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = ["data.sample_rate=64", "stft.n_fft=128", "stft.window=128", "stft.hop=16", "scaling.kind=log1p",
        "data.ppg.train_recordings=3", "data.ppg.test_recordings=2", "data.ppg.seconds=40", "data.cache_dir=null",
        "train.batch_size=4", "patch.frames=16"]
B, F, T = 4, 64, 16


@pytest.fixture(scope="module")
def config():
    return load_config(REPO / "configs" / "paper" / "ppg.json", TINY)


@pytest.fixture(scope="module")
def data(config):
    return make_datasets(config)


def batches(dataset, count):
    return [tf.nest.map_structure(lambda t: t.numpy(), element) for element in dataset.take(count)]


def assert_same_batches(a, b):
    for (mix_a, parts_a), (mix_b, parts_b) in zip(a, b, strict=True):
        np.testing.assert_array_equal(mix_a, mix_b)
        assert parts_a.keys() == parts_b.keys()
        for name in parts_a:
            np.testing.assert_array_equal(parts_a[name], parts_b[name])


def periodic_hann(length):
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)


def np_features(waveform, config):
    """NumPy reference for Spectral.features(Spectral.stft(x)) with the config's hann STFT and log1p scaling."""
    stft = config.stft
    count = 1 + (waveform.shape[-1] - stft.window) // stft.hop
    frames = waveform[..., np.arange(count)[:, None] * stft.hop + np.arange(stft.window)]
    spectrum = np.fft.rfft(frames * periodic_hann(stft.window), n=stft.n_fft)
    magnitude = np.abs(spectrum)[..., : config.patch.frequency_bins]
    assert config.scaling.kind == "log1p"
    return np.log1p(config.scaling.gain * np.swapaxes(magnitude, -1, -2))[..., None]


def every_offset_magnitudes(waveform, config):
    """|STFT| of the frame starting at every sample: row o is the first frame of a crop at offset o."""
    stft = config.stft
    count = len(waveform) - stft.window + 1
    frames = waveform[np.arange(count)[:, None] + np.arange(stft.window)].astype(np.float64)
    magnitude = np.abs(np.fft.rfft(frames * periodic_hann(stft.window), n=stft.n_fft))[:, : config.patch.frequency_bins]
    return np.log1p(config.scaling.gain * magnitude)


def locate(feature, recordings, config):
    """Brute force: the (recording, offset) whose crop's mixture features equal `feature` [F, T, 1], or None."""
    length = config.crop_length
    hop = config.stft.hop
    found = []
    for r, recording in enumerate(recordings):
        table = every_offset_magnitudes(recording.mixture, config)
        distance = np.max(np.abs(table[: len(recording) - length + 1] - feature[:, 0, 0]), axis=1)
        for offset in np.flatnonzero(distance < 1e-3):
            frames = table[offset + hop * np.arange(config.patch.frames)]  # [T, F]
            if np.max(np.abs(frames.T - feature[..., 0])) < 1e-3:
                found.append((r, int(offset)))
    return found


def test_train_element_layout(config, data):
    mixture, parts = next(iter(data.train))
    assert mixture.shape == (B, F, T, 1) and mixture.dtype == tf.float32
    assert tuple(parts) == config.components == ("heart", "respiratory")
    for value in parts.values():
        assert value.shape == (B, F, T, 1) and value.dtype == tf.float32


def test_test_element_layout(config, data):
    mixture, parts = next(iter(data.test))
    assert mixture.shape == (B, F, T, 1) and mixture.dtype == tf.float32
    assert tuple(parts) == config.components
    for value in parts.values():
        assert value.shape == (B, F, T, 1) and value.dtype == tf.float32
    spec = data.test.element_spec
    assert spec[0].shape.as_list() == [None, F, T, 1]


def test_crop_length_gives_patch_frames(config):
    assert config.crop_length == 128 + 15 * 16
    assert 1 + (config.crop_length - config.stft.window) // config.stft.hop == T


def test_deterministic(config, data):
    again = make_datasets(config)
    assert_same_batches(batches(data.train, 3), batches(again.train, 3))
    assert_same_batches(batches(data.test, 3), batches(again.test, 3))


def test_seed_changes_crops(config, data):
    other = config.replace(["seed=1"])
    first = batches(train_dataset(config, data.recordings["train"], B), 1)[0]
    second = batches(train_dataset(other, data.recordings["train"], B), 1)[0]
    assert not np.array_equal(first[0], second[0])


def test_resume(config, data):
    fresh = batches(train_dataset(config, data.recordings["train"], B), 3)
    resumed = batches(train_dataset(config, data.recordings["train"], B, start_step=2), 1)
    assert_same_batches(fresh[2:], resumed)
    resumed = batches(make_datasets(config, start_step=2).train, 1)
    assert_same_batches(fresh[2:], resumed)


def test_steps_differ(data):
    first, second = batches(data.train, 2)
    assert not np.array_equal(first[0], second[0])
    assert not np.array_equal(first[0][0], first[0][1])  # and so do the crops within a batch


def test_shards_differ(config, data):
    train = data.recordings["train"]
    shard0 = batches(train_dataset(config, train, B, shard=0, num_shards=2), 2)
    shard1 = batches(train_dataset(config, train, B, shard=1, num_shards=2), 2)
    for a, b in zip(shard0, shard1):
        assert a[0].shape == b[0].shape == (B, F, T, 1)
        assert not np.array_equal(a[0], b[0])
    # shard s of n at step k is key k*n+s of the single-shard stream: shard 1 of 2 at step 0 is step 1 of 1 shard
    single = batches(train_dataset(config, train, B), 2)
    assert_same_batches(shard1[:1], single[1:2])


def test_train_crops_are_recording_slices(config, data):
    """Every element of two batches is the features of a contiguous crop of one training recording (brute force)."""
    train = data.recordings["train"]
    length = config.crop_length
    seen = set()
    for mixture, parts in batches(data.train, 2):
        for i in range(B):
            found = locate(mixture[i], train, config)
            assert len(found) == 1, f"element {i}: matches {found}"
            r, offset = found[0]
            seen.add(r)
            recording = train[r]
            crop = {name: recording.components[name][offset:offset + length] for name in config.components}
            for name in config.components:
                np.testing.assert_allclose(parts[name][i], np_features(crop[name].astype(np.float64), config),
                                           atol=2e-4, rtol=1e-4)
            np.testing.assert_allclose(mixture[i], np_features(recording.mixture[offset:offset + length], config),
                                       atol=2e-4, rtol=1e-4)
    assert len(seen) >= 2  # 8 uniform draws over 3 recordings


def test_train_crops_cover_all_positions(config, data):
    """The draw is uniform over all crop positions: over many batches every recording and both ends appear."""
    train = data.recordings["train"]
    length = config.crop_length
    tables = [every_offset_magnitudes(r.mixture, config)[: len(r) - length + 1] for r in train]
    counts = np.zeros(len(train))
    for mixture, _ in batches(data.train, 40):
        for i in range(B):
            distance = [np.min(np.max(np.abs(t - mixture[i, :, 0, 0]), axis=1)) for t in tables]
            counts[int(np.argmin(distance))] += 1
    assert counts.sum() == 160 and counts.min() > 20  # ~53 expected each


def test_fixed_crops_consecutive(config, data):
    test = data.recordings["test"]
    length = config.crop_length
    waveforms = data.test_waveforms
    expected_count = sum(len(r) // length for r in test)
    assert expected_count == 2 * (40 * 64 // length)
    assert set(waveforms) == {"mixture", *config.components}
    i = 0
    for recording in test:
        for j in range(len(recording) // length):
            piece = slice(j * length, (j + 1) * length)
            np.testing.assert_array_equal(waveforms["mixture"][i], recording.mixture[piece])
            for name in config.components:
                np.testing.assert_array_equal(waveforms[name][i], recording.components[name][piece])
            i += 1
    for value in waveforms.values():
        assert value.shape == (expected_count, length) and value.dtype == np.float32


def test_test_elements_match_waveforms(config, data):
    elements = list(data.test.unbatch().as_numpy_iterator())
    assert len(elements) == len(data.test_waveforms["mixture"])
    for i, (mixture, parts) in enumerate(elements):
        for name, value in [("mixture", mixture), *parts.items()]:
            expected = np_features(data.test_waveforms[name][i].astype(np.float64), config)
            np.testing.assert_allclose(value, expected, atol=2e-4, rtol=1e-4)


def test_test_dataset_batches(config, data):
    sizes = [int(m.shape[0]) for m, _ in data.test]
    count = len(data.test_waveforms["mixture"])
    assert sum(sizes) == count and sizes == [B] * (count // B) + ([count % B] if count % B else [])
    odd = make_test_dataset(config, data.test_waveforms, 5)
    assert [int(m.shape[0]) for m, _ in odd] == [5] * (count // 5) + ([count % 5] if count % 5 else [])


def test_mixture_is_sum_of_components(config, data):
    for recording in data.recordings["train"] + data.recordings["test"]:
        parts = recording.components
        np.testing.assert_allclose(recording.mixture, parts["heart"] + parts["respiratory"], atol=1e-6)
    waveforms = data.test_waveforms
    np.testing.assert_allclose(waveforms["mixture"], waveforms["heart"] + waveforms["respiratory"], atol=1e-6)


def short_recordings(config):
    length = config.crop_length
    rng = np.random.default_rng(0)

    def recording(name, samples):
        parts = {n: rng.normal(size=samples).astype(np.float32) for n in config.components}
        return Recording(name=name, mixture=sum(parts.values()), components=parts)

    return [recording("long-one", 3 * length), recording("tiny-one", length - 1)]


def test_short_recording_rejected(config):
    recordings = short_recordings(config)
    with pytest.raises(ValueError, match="tiny-one"):
        train_dataset(config, recordings, B)
    with pytest.raises(ValueError, match="tiny-one"):
        fixed_crops(recordings, config)


def test_exactly_one_crop_is_enough(config):
    """A recording of exactly one crop has one position (train) and one fixed crop (test)."""
    length = config.crop_length
    recording = short_recordings(config)[0]
    exact = Recording("exact", recording.mixture[:length], {n: v[:length] for n, v in recording.components.items()})
    crops = fixed_crops([exact], config)
    np.testing.assert_array_equal(crops["mixture"], exact.mixture[None])
    mixture, _ = batches(train_dataset(config, [exact], 3), 1)[0]
    expected = np_features(exact.mixture.astype(np.float64), config)
    for i in range(3):
        np.testing.assert_allclose(mixture[i], expected, atol=2e-4, rtol=1e-4)


def test_no_recordings_rejected(config):
    with pytest.raises(ValueError, match="no training recordings"):
        train_dataset(config, [], B)
