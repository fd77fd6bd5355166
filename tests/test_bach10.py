"""Tests for cass_tf.data.bach10 on the real dataset (at 8 kHz, to stay fast) and on tiny fake layouts."""

import math
import pathlib
import re

import numpy as np
import pytest
import soundfile as sf

from cass_tf import audio
from cass_tf.config import load_config
from cass_tf.data import bach10

REPO = pathlib.Path(__file__).resolve().parents[1]
BACH10 = REPO.parent / "shared" / "data" / "Bach10"
RATE = 8000
TEST_PIECES = ("09-Jesus", "10-NunBitten")
STEMS = ("violin", "clarinet", "saxphone", "bassoon")


def make_config(root, *overrides):
    return load_config(REPO / "configs" / "paper" / "bach10.json",
                       overrides=[f"data.bach10.root={root}", f"data.sample_rate={RATE}", *overrides])


class CountingReader:
    """Wraps audio.read_audio and records the paths it reads."""

    def __init__(self):
        self.paths = []
        self.read = audio.read_audio

    def __call__(self, path, *args, **kwargs):
        self.paths.append(str(path))
        return self.read(path, *args, **kwargs)


# ---- the real dataset ----

real = pytest.mark.skipif(not BACH10.is_dir(), reason=f"Bach10 not found at {BACH10}")


@pytest.fixture(scope="module")
def loaded():
    """Loads the real dataset twice with a cold cache, counting file reads; returns (first, second, reader)."""
    bach10._read.cache_clear()
    reader = CountingReader()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bach10.audio, "read_audio", reader)
        config = make_config(BACH10)
        first = bach10.load(config)
        second = bach10.load(config)
    return first, second, reader


@real
def test_split(loaded):
    first, _, _ = loaded
    assert len(first["train"]) == 8 and len(first["test"]) == 2
    assert tuple(r.name for r in first["test"]) == TEST_PIECES
    names = [r.name for r in first["train"] + first["test"]]
    assert names == sorted(p.name for p in BACH10.iterdir() if p.is_dir())


@real
def test_recordings_match_source_files(loaded):
    first, _, _ = loaded
    for recording in first["train"] + first["test"]:
        assert list(recording.components) == ["bassoon", "saxophone"]
        frames = sf.info(str(BACH10 / recording.name / f"{recording.name}-bassoon.wav")).frames
        assert abs(len(recording) - frames * RATE / 44100) <= 1
        for wave in [recording.mixture, *recording.components.values()]:
            assert wave.dtype == np.float32 and wave.shape == (len(recording),)


@real
def test_components_mixture_is_sum_of_stems(loaded):
    first, _, _ = loaded
    for recording in first["train"] + first["test"]:
        c = recording.components
        np.testing.assert_array_equal(recording.mixture, c["bassoon"] + c["saxophone"])


@real
def test_each_file_read_once(loaded):
    first, second, reader = loaded
    assert len(reader.paths) == 20 and len(set(reader.paths)) == 20
    assert not any(p.endswith("-violin.wav") or p.endswith("-clarinet.wav") for p in reader.paths)
    assert np.shares_memory(second["train"][0].components["bassoon"], first["train"][0].components["bassoon"])


@real
def test_full_mixture_is_dataset_mix(loaded, monkeypatch):
    reader = CountingReader()
    monkeypatch.setattr(bach10.audio, "read_audio", reader)
    splits = bach10.load(make_config(BACH10, "data.bach10.mixture=full"))
    pieces = [r.name for r in splits["train"] + splits["test"]]
    assert sorted(reader.paths) == [str(BACH10 / p / f"{p}.wav") for p in pieces]  # the stems come from the cache
    recording = splits["test"][0]
    mix, _ = audio.read_audio(BACH10 / recording.name / f"{recording.name}.wav")
    np.testing.assert_array_equal(recording.mixture, audio.resample(mix, 44100, RATE)[:len(recording)])


@real
def test_dataset_mix_is_sum_of_four_stems():
    """At 44.1 kHz the mix equals the clipped sum of the stems up to 16-bit rounding (measured: 1.2e-4 relative L2)."""
    piece = "01-AchGottundHerr"
    mix, _ = audio.read_audio(BACH10 / piece / f"{piece}.wav")
    total = sum(audio.read_audio(BACH10 / piece / f"{piece}-{stem}.wav")[0].astype(np.float64) for stem in STEMS)
    assert np.linalg.norm(mix - total) / np.linalg.norm(mix) < 1e-3
    unclipped = np.abs(total) < 1
    assert np.max(np.abs(mix - total)[unclipped]) <= 2 / 32768


# ---- a tiny fake layout for the error cases ----

def write_wav(path, rate=44100, channels=1, frames=441):
    x = 0.1 * np.sin(2 * np.pi * 440 * np.arange(frames) / rate)
    sf.write(str(path), np.tile(x[:, None], (1, channels)), rate, subtype="PCM_16")


@pytest.fixture
def fake_root(tmp_path):
    """Three pieces of 10 ms synthetic WAVs in the Bach10 layout."""
    for piece in ("01-A", "02-B", "03-C"):
        (tmp_path / piece).mkdir()
        for suffix in ("", *(f"-{s}" for s in STEMS)):
            write_wav(tmp_path / piece / f"{piece}{suffix}.wav")
    return tmp_path


def load_fake(root, *overrides):
    return bach10.load(make_config(root, 'data.bach10.test_pieces=["03-C"]', *overrides))


def test_fake_layout_loads_only_needed_files(fake_root):
    for piece in ("01-A", "02-B", "03-C"):
        (fake_root / piece / f"{piece}-violin.wav").unlink()
        (fake_root / piece / f"{piece}.wav").unlink()
    splits = load_fake(fake_root)
    assert [r.name for r in splits["train"]] == ["01-A", "02-B"] and [r.name for r in splits["test"]] == ["03-C"]
    assert len(splits["test"][0]) == 80  # 441 samples at 44.1 kHz -> 80 at 8 kHz


def test_stems_trimmed_to_shortest(fake_root):
    write_wav(fake_root / "02-B" / "02-B-saxphone.wav", frames=441 - 11)
    recording = load_fake(fake_root)["train"][1]
    shortest = math.ceil(430 * RATE / 44100)
    assert len(recording) == shortest
    assert all(len(w) == shortest for w in recording.components.values())


# One stem damaged -> the error: its type, and what it must say after the file's name.
BAD_STEMS = {
    "missing": ("01-A-saxphone.wav", lambda path: path.unlink(), FileNotFoundError, ""),
    "corrupt": ("01-A-bassoon.wav", lambda path: path.write_bytes(b"RIFF garbage" * 10), ValueError,
                "not a readable audio file"),
    "empty": ("02-B-bassoon.wav", lambda path: write_wav(path, frames=0), ValueError, "empty"),
    "wrong rate": ("03-C-saxphone.wav", lambda path: write_wav(path, rate=22050), ValueError, "22050"),
    "stereo": ("01-A-bassoon.wav", lambda path: write_wav(path, channels=2), ValueError, "2 channel"),
}


@pytest.mark.parametrize("case", BAD_STEMS)
def test_bad_stem_is_named(fake_root, case):
    name, damage, error, what = BAD_STEMS[case]
    damage(fake_root / name.rsplit("-", 1)[0] / name)
    with pytest.raises(error, match=f"{re.escape(name)}.*{what}"):
        load_fake(fake_root)


def test_root_missing_named_when_loading(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=f"data.bach10.root.*{missing}"):
        load_fake(missing)


@pytest.mark.parametrize("pieces, what", [('["04-D"]', "'04-D'"),  # not in the root
                                          ('["01-A", "02-B", "03-C"]', "none of the 3 pieces")])  # nothing to train
def test_bad_test_pieces(fake_root, pieces, what):
    with pytest.raises(ValueError, match=f"data.bach10.test_pieces.*{what}"):
        bach10.load(make_config(fake_root, f"data.bach10.test_pieces={pieces}"))


def test_full_mixture_reads_the_mix(fake_root):
    (fake_root / "02-B" / "02-B.wav").write_text("not audio")
    load_fake(fake_root)  # "components" never opens the mix
    with pytest.raises(ValueError, match="02-B.wav.*not a readable audio file"):
        load_fake(fake_root, "data.bach10.mixture=full")


# ---- inference never needs the training data (issue 9, bug 1) ----

@pytest.mark.slow  # trains or runs a real model for tens of seconds
def test_trained_model_exports_and_separates_without_its_data(tmp_path, monkeypatch):
    """Train a tiny Bach10 model on a fake layout, move its model_dir elsewhere and delete the data: restoring,
    exporting and separating still work (they read the run directory only)."""
    import shutil

    import cass_tf
    from cass_tf.export import export
    from cass_tf.separation import Separator
    from cass_tf.train import train

    root = tmp_path / "data" / "Bach10"
    for piece in ("01-A", "02-B", "03-C"):
        (root / piece).mkdir(parents=True)
        for stem in STEMS:
            write_wav(root / piece / f"{piece}-{stem}.wav", frames=4410)
    config = make_config(root, 'data.bach10.test_pieces=["03-C"]', "model.width=2", "patch.frequency_bins=16",
                         "patch.frames=16", "stft.n_fft=32", "stft.window=32", "stft.hop=8", "train.epochs=1",
                         "train.steps_per_epoch=1", "train.batch_size=2", f"output.model_dir={tmp_path / 'run'}")
    train(config, verbose=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(tmp_path / "run", elsewhere / "run")
    shutil.rmtree(tmp_path / "data")
    monkeypatch.chdir(elsewhere)
    version = export("run", "exports")
    x = np.random.default_rng(0).normal(size=1000).astype(np.float32)
    from_export = Separator(version)(x)
    from_run = cass_tf.separate(x, "run")
    assert set(from_export) == set(from_run) == {"bassoon", "saxophone"}
    for name in from_run:
        np.testing.assert_allclose(from_export[name], from_run[name], atol=1e-5 * max(1e-3, np.abs(from_run[name]).max()))
    with pytest.raises(FileNotFoundError, match="data.bach10.root"):
        train(config.replace([f"output.model_dir={elsewhere / 'run'}", "train.epochs=2"]), verbose=False)
