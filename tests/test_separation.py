"""Tests for cass_tf.separation: Separator over SavedModels and checkpoints, separate() inputs, blocks, CLI, errors."""

import shutil
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

import cass_tf
from cass_tf import audio
from cass_tf.checks import check_audio_files
from cass_tf.export import export
from cass_tf.separation import Separator, separate
from conftest import ENV, NAMES, RATE, assert_close, reference, run_cli, run_here, signal

pytestmark = pytest.mark.slow  # trainings, exports and real subprocesses throughout


@pytest.fixture(scope="module")
def base_dir(tiny_export, tmp_path_factory):
    """A copy of the session's tiny export base directory (a test here adds a version to it)."""
    base = tmp_path_factory.mktemp("separate_models") / "tiny"
    shutil.copytree(tiny_export.parent, base)
    return base


@pytest.fixture(scope="module")
def separator(base_dir):
    return Separator(base_dir)


# ---- Separator ----

def test_separator_sources_agree(base_dir, tiny_model_dir, separator, tiny_model):
    """Base dir (highest version), version dir, training model_dir and a copy all give the Keras model's result."""
    export(str(tiny_model_dir), base_dir)  # version 2: the base directory must pick it
    latest = Separator(base_dir)
    assert latest.source == str(base_dir / "2") and latest.kind == "savedmodel"
    version = Separator(base_dir / "1")
    checkpoint = Separator(str(tiny_model_dir))
    copy = Separator(version)
    x = signal(700)
    expected = reference(tiny_model, x)
    for sep in (separator, latest, version, checkpoint, copy):
        assert sep.sample_rate == RATE and sep.components == NAMES
        out = sep(x)
        assert set(out) == set(NAMES)
        for n in NAMES:
            assert out[n].shape == x.shape and out[n].dtype == np.float32
            assert_close(out[n], expected[n])
    batch = separator(np.stack([x, 2 * x]))
    assert batch["heart"].shape == (2, 700)
    assert_close(batch["heart"][0], expected["heart"])


def test_checkpoint_separator_traces_once(tiny_model_dir):
    sep = Separator(str(tiny_model_dir))
    for samples in (1, 333, 1500):
        out = sep(signal(samples))
        assert out["heart"].shape == (samples,)
    assert sep.function.experimental_get_tracing_count() == 1


def test_saved_model_separator_any_length(separator, tiny_model):
    for samples in (1, 333, 1500):
        x = signal(samples, seed=samples)
        out = separator(x)
        expected = reference(tiny_model, x)
        for n in NAMES:
            assert out[n].shape == (samples,)
            assert_close(out[n], expected[n])


def test_one_separator_shared_by_threads(separator, tiny_model_dir):
    """The thread-safety guarantee (docs/reliability.md): one Separator called from 4 threads at once, including its
    first (tracing) call, gives each input the result of sequential calls."""
    inputs = [signal(300 + 97 * k, seed=k) for k in range(12)]
    for sep in (Separator(str(tiny_model_dir)), separator):  # a fresh checkpoint one: traced under concurrency
        with ThreadPoolExecutor(4) as pool:
            threaded = list(pool.map(lambda x: sep.process(x, block_seconds=5.0), inputs))
        for x, got in zip(inputs, threaded):
            expected = sep.process(x, block_seconds=5.0)
            for n in NAMES:
                assert got[n].shape == x.shape
                assert_close(got[n], expected[n], tolerance=1e-6)


# ---- separate() ----

def test_separate_array_equals_separator(separator, base_dir):
    x = signal(1000)
    direct = separator(x)
    for model in (separator, str(base_dir)):
        out = separate(x, model)
        for n in NAMES:
            assert out[n].shape == (1000,) and out[n].dtype == np.float32
            assert_close(out[n], direct[n])
    out = separate(x.astype(np.float64), separator, sample_rate=RATE)
    assert_close(out["heart"], direct["heart"])


def test_channels_are_separated_one_by_one(separator):
    left, right = signal(800, seed=1), 3.0 * signal(800, seed=2)
    out = separate(np.stack([left, right]), separator, block_seconds=4)
    one = {side: separator(x) for side, x in (("left", left), ("right", right))}
    for n in NAMES:
        assert out[n].shape == (2, 800) and out[n].dtype == np.float32
        assert_close(out[n][0], one["left"][n])
        assert_close(out[n][1], one["right"][n])


def test_mono_averages_the_channels(separator):
    left, right = signal(800, seed=1), signal(800, seed=2)
    out = separate(np.stack([left, right]), separator, mono=True)
    mono = separator((left + right) / 2)
    for n in NAMES:
        assert out[n].shape == (800,)
        assert_close(out[n], mono[n])


def test_list_gives_list_in_order(separator):
    items = [signal(500, seed=3), signal(900, seed=4)]
    out = separate(items, separator)
    assert isinstance(out, list) and len(out) == 2
    for x, result in zip(items, out):
        expected = separator(x)
        for n in NAMES:
            assert result[n].shape == x.shape
            assert_close(result[n], expected[n])


def test_resampling_round_trip(separator):
    """At twice the model's rate: resampled down, separated, resampled up, cut to the input's length."""
    x = signal(1501, seed=5, rate=2 * RATE)
    out = separate(x, separator, sample_rate=2 * RATE)
    down = audio.resample(x, 2 * RATE, RATE)
    separated = separator(down)
    for n in NAMES:
        expected = audio.resample(separated[n], RATE, 2 * RATE)[:1501]
        assert out[n].shape == (1501,)
        assert_close(out[n], expected)
    # the model's own rate is a no-op resampling, and the identity pipeline keeps a band-limited signal
    assert np.allclose(audio.resample(audio.resample(x, 128, 64), 64, 128)[:1501][200:-200], x[200:-200], atol=0.2)


def test_file_input_uses_its_rate(separator, tmp_path):
    x = signal(1200, seed=6, rate=2 * RATE)
    stereo = np.stack([x, 0.5 * x])
    path = tmp_path / "mix.wav"
    audio.write_audio(path, stereo, 2 * RATE)
    out = separate(path, separator)
    expected = separate(stereo, separator, sample_rate=2 * RATE)
    mono = separate(0.75 * x, separator, sample_rate=2 * RATE)
    for n in NAMES:
        assert out[n].shape == (2, 1200)  # a stereo file: each channel separated
        assert_close(out[n], expected[n])
        assert_close(separate(path, separator, mono=True)[n], mono[n])
    assert separate(str(path), separator, sample_rate=2 * RATE)["heart"].shape == (2, 1200)


def test_blocks_equal_one_shot(separator):
    """Blocks on the patch grid, cross-faded where both are exact: equal to the whole-signal result up to float
    round-off (1e-5 of the peak)."""
    x = signal(6000, seed=7)
    blocks = separator.blocks(6000, block_seconds=10.0)
    assert len(blocks) >= 4
    total = np.zeros(6000)
    for start, end, weight in blocks:
        total[start:end] += weight
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    seen = []
    blocked = separate(x, separator, block_seconds=10.0, progress=seen.append)
    whole = separate(x, separator, block_seconds=None)
    for n in NAMES:
        assert_close(blocked[n], whole[n])
    assert len(seen) == len(blocks) and seen[-1] == 1.0 and seen == sorted(seen)


def test_progress_over_a_list(separator):
    seen = []
    separate([signal(3000), signal(1000)], separator, block_seconds=10.0, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and 0 < seen[0] < 0.75


def test_top_level_lazy_names(separator):
    assert cass_tf.Separator is Separator
    out = cass_tf.separate(signal(300), separator)  # the callable module or the function: same result
    assert_close(out["heart"], separator(signal(300))["heart"])
    result = subprocess.run([sys.executable, "-c", "import sys, cass_tf; assert 'tensorflow' not in sys.modules; "
                             "from cass_tf import separate, Separator; assert callable(separate)"],
                            capture_output=True, text=True, env=ENV)
    assert result.returncode == 0, result.stderr[-2000:]


# ---- bad input ----

@pytest.mark.parametrize("mixture, message", [
    (np.zeros(0, np.float32), "empty"),
    (np.array([0.0, np.nan, 1.0], np.float32), "non-finite"),
    (np.array([0.0, np.inf], np.float32), "non-finite"),
    (np.zeros(100, np.int16), "integer PCM"),
    (np.zeros((2, 3, 100), np.float32), "3-D"),
    (np.zeros((100, 2), np.float32), "looks like \\(samples, channels\\)"),
    ([], "list of mixtures is empty"),
    ([np.zeros(10, np.float32), 3.0], r"mixture\[1\]"),
    (np.zeros(10, np.complex64), "^mixture: expected a floating-point array, got dtype complex64"),
    ([np.zeros(10), np.zeros(10, object)], r"^mixture\[1\]: expected a floating-point array, got dtype object"),
])
def test_bad_arrays(separator, mixture, message):
    with pytest.raises(ValueError, match=message):
        separate(mixture, separator)


@pytest.mark.parametrize("many", [False, True])
def test_float64_beyond_float32_range(separator, many):
    """Finite float64 values that float32 cannot hold: named as the user's argument, said as what it is, and refused
    before the cast (which would print NumPy's overflow RuntimeWarning and then report 'non-finite')."""
    x = np.full(4000, 1e300)
    x[7] = -3e300
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError) as info:
            separate([signal(10).astype(np.float64), x] if many else x, separator)
    assert caught == []
    what = "mixture[1]" if many else "mixture"
    assert str(info.value).startswith(f"{what}: values exceed float32's range (max |x| = 3e+300 > 3.40282e+38)")
    assert "waveform" not in str(info.value) and "non-finite" not in str(info.value)
    with pytest.raises(ValueError, match="^waveform: values exceed float32's range"):  # Separator's own argument
        separator(x)
    big = separate(np.full(300, 1e30) * signal(300), separator)  # large but within range: separated, finite
    assert all(np.isfinite(v).all() for v in big.values())


def test_overflowing_outputs_refused(separator):
    """float32 values near its limit pass the input checks but overflow the STFT: an error, never inf/NaN out."""
    x = np.float32(3e38) * np.sign(signal(500))
    for call, what in ((lambda: separate(x, separator), "mixture"), (lambda: separator(x), "waveform"),
                       (lambda: separate(x, separator, sample_rate=2 * RATE), "mixture")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ValueError, match=f"^{what}: the 'heart' output is not finite for this input "
                                                 r"\(max \|x\| = 3e\+38\).*scale the input"):
                call()
        assert caught == []


@pytest.mark.parametrize("rate", [0, -16000, 1.5, float("nan"), "64", 10**9])  # 10**9: a ~20e9-tap resampler
def test_bad_sample_rate(separator, rate):
    with pytest.raises(ValueError, match="sample_rate"):
        separate(signal(100), separator, sample_rate=rate)


def test_bad_files(separator, tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(ValueError, match="notes.wav.*not a readable audio file"):
        separate(text, separator)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        separate(tmp_path / "missing.wav", separator)
    good = tmp_path / "good.wav"
    audio.write_audio(good, signal(200), RATE)
    with pytest.raises(ValueError, match="sample_rate=32 was given but .* is at 64 Hz"):
        separate(good, separator, sample_rate=32)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.0, np.nan, 0.5], np.float32), RATE, subtype="FLOAT")
    with pytest.raises(ValueError, match="non-finite"):
        separate(nan, separator)


@pytest.mark.parametrize("subtype, frame_bytes", [("FLOAT", 4), ("PCM_16", 2)])
def test_truncated_wav_refused(separator, tmp_path, subtype, frame_bytes):
    """A WAV cut short (its data chunk smaller than the header says) is refused, naming the file and both counts,
    by separate(), the file checks and read_audio; soundfile alone would read the frames present."""
    path = tmp_path / "cut.wav"
    sf.write(path, signal(1000), RATE, subtype=subtype)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 301 * frame_bytes)  # 300 whole frames and a byte of one more
    assert sf.info(path).frames == 699  # soundfile does not complain
    message = f"'{path}' is truncated: its header declares 1000 frames but only 699 are present"
    for call in (lambda: separate(path, separator), lambda: check_audio_files([path]),
                 lambda: audio.read_audio(path)):
        with pytest.raises(ValueError) as info:
            call()
        assert message in str(info.value)
    with open(path, "r+b") as f:  # the full length again (the cut frames now zeros): accepted
        f.truncate(size)
    assert separate(path, separator)["heart"].shape == (1000,)


def test_bad_separator_input(separator):
    with pytest.raises(ValueError, match="floating-point"):
        separator(np.zeros(10, np.int32))
    with pytest.raises(ValueError, match="3-D"):
        separator(np.zeros((1, 1, 10), np.float32))


def test_bad_models(tmp_path, base_dir):
    with pytest.raises(FileNotFoundError, match="model not found"):
        Separator(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no versions"):
        Separator(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a model directory"):
        Separator(tmp_path / "file")
    (tmp_path / "half" / "3").mkdir(parents=True)
    with pytest.raises(ValueError, match="highest version .*3.* has no saved_model.pb"):
        Separator(tmp_path / "half")

    class Other(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def double(self, x):
            return {"y": 2 * x}

    other = Other()
    tf.saved_model.save(other, str(tmp_path / "other" / "1"), signatures={"double": other.double})
    with pytest.raises(ValueError, match="is not a cass_tf export: no assets/cass_config.json"):
        Separator(tmp_path / "other")  # a SavedModel of something else: refused before TensorFlow loads it
    with pytest.raises(ValueError, match="block_seconds"):
        separate(signal(100), str(base_dir), block_seconds=-1)


# ---- command line ----

def test_cli_writes_components(base_dir, separator, tmp_path, capsys):
    first, second = tmp_path / "a.wav", tmp_path / "b.flac"
    audio.write_audio(first, signal(1000, seed=8), RATE)
    sf.write(second, np.stack([signal(700, seed=9, rate=2 * RATE)] * 2).T, 2 * RATE, subtype="PCM_16")
    out = tmp_path / "out"
    result = run_cli(first, second, "--model", base_dir, "--out_dir", out, "--block_seconds", "10",
                     module="cass_tf.separation")
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav")) == [
        "a/heart.wav", "a/respiratory.wav", "b/heart.wav", "b/respiratory.wav"]
    for stem, path, rate, shape in (("a", first, RATE, (1000,)), ("b", second, 2 * RATE, (2, 700))):
        expected = separate(path, separator)
        for n in NAMES:
            y, y_rate = audio.read_audio(out / stem / f"{n}.wav")
            assert y_rate == rate and y.shape == shape  # WAVs keep the input's channel count
            assert_close(y, expected[n])
    mono = run_here(capsys, "separate", second, "--model", base_dir, "--out_dir", tmp_path / "mono", "--mono",
                    "--quiet")
    assert mono.returncode == 0, mono.stderr[-3000:]
    assert audio.read_audio(tmp_path / "mono" / "b" / "heart.wav")[0].shape == (700,)
    assert "100.0%" in result.stderr  # the progress bar reached the end


def test_cli_validates_everything_before_writing(base_dir, tmp_path, capsys):
    """A bad second file or a bad model: one error line, no traceback, nothing written (not even out_dir). The first
    case in a subprocess, the second in this process (the same command)."""
    good = tmp_path / "good.wav"
    audio.write_audio(good, signal(300), RATE)
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    out = tmp_path / "out"
    runs = ((lambda *args: run_cli(*args, module="cass_tf.separation"), [good, bad], base_dir, "bad.wav"),
            (lambda *args: run_here(capsys, "separate", *args), [good], tmp_path / "no_model", "model not found"))
    for run, files, model, message in runs:
        result = run(*files, "--model", model, "--out_dir", out)
        assert result.returncode != 0
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
        assert "Traceback" not in result.stderr
        assert not out.exists()


def test_file_checks(tmp_path):
    good = tmp_path / "x" / "take.wav"
    audio.write_audio(good, signal(300), RATE)
    other = tmp_path / "y" / "take.flac"
    other.parent.mkdir()
    sf.write(other, signal(300), RATE)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.0, np.nan], np.float32), RATE, subtype="FLOAT")
    check_audio_files([good])
    for paths, error, message in (([], ValueError, "no input files"),
                                  ([good, tmp_path / "missing.wav"], FileNotFoundError, "missing.wav"),
                                  ([good, other], ValueError, "would both write to <out_dir>/take/"),
                                  ([nan], ValueError, "nan.wav.*NaN or inf"),
                                  ([tmp_path / "x"], ValueError, "is a directory")):
        with pytest.raises(error, match=message):
            check_audio_files(paths)


def test_separator_of_a_separator_shares_the_loaded_model(separator):
    """Separator(Separator) loads nothing: it holds the same loaded graph and describes the same model."""
    again = Separator(separator)
    assert again.function is separator.function
    assert (again.source, again.kind, again.sample_rate, again.components) == \
        (separator.source, separator.kind, separator.sample_rate, separator.components)
    x = signal(300, seed=9)
    for name, value in again(x).items():
        np.testing.assert_array_equal(value, separator(x)[name])
