"""Unit tests for cass_tf.checks: each check passes good input through unchanged (values compared with NumPy) and
refuses bad input with one ValueError (TypeError for `progress`) that starts with the argument's name."""

import math

import numpy as np
import pytest
import soundfile as sf

from cass_tf import checks


def test_check_array_casts_to_float32_without_changing_values():
    x = np.linspace(-1, 1, 7)  # float64
    y = checks.check_array(x, "mixture")
    assert y.dtype == np.float32 and y.shape == (7,)
    np.testing.assert_array_equal(y, x.astype(np.float32))
    two = np.ones((2, 5), np.float32)
    assert checks.check_array(two, "mixture") is two  # already float32: no copy


@pytest.mark.parametrize("x, message", [
    (np.arange(4, dtype=np.int16), r"^mixture: expected a floating-point array, got dtype int16 \(integer PCM"),
    (np.zeros((1, 2, 3)), r"^mixture: expected \(samples,\) or \(channels, samples\), got a 3-D array"),
    (np.zeros((2, 0)), r"^mixture: empty \(shape \(2, 0\)\)"),
    (np.array([0.0, 1.0, np.nan, np.inf]), r"^mixture: 2 non-finite value\(s\) \(NaN or inf\), the first at index 2$"),
    (np.array([[0.0, 1.0], [np.inf, 0.0]]), r"^mixture: 1 non-finite .* at index \(1, 0\)$"),
    (np.array([1.0, 1e39]), r"^mixture: values exceed float32's range \(max \|x\| = 1e\+39"),
    ([[1.0, 2.0], [3.0]], r"^mixture: not an array"),
])
def test_check_array_refuses(x, message):
    with pytest.raises(ValueError, match=message):
        checks.check_array(x, "mixture")


def test_check_outputs_names_the_non_finite_component():
    x = np.full(3, 1e30, np.float32)
    good = {"heart": np.zeros(3, np.float32)}
    assert checks.check_outputs(good, x, "mixture") is good
    with pytest.raises(ValueError, match=r"^mixture: the 'lungs' output is not finite .*max \|x\| = 1e\+30"):
        checks.check_outputs({**good, "lungs": np.array([0, np.inf, 0], np.float32)}, x, "mixture")


@pytest.mark.parametrize("rate, expected", [(44100, 44100), (8000.0, 8000), (np.int64(64), 64),
                                            (checks.MAX_SAMPLE_RATE, checks.MAX_SAMPLE_RATE)])
def test_check_rate_accepts_whole_hz(rate, expected):
    result = checks.check_rate(rate)
    assert result == expected and type(result) is int


@pytest.mark.parametrize("rate", [True, 0, -8000, 44100.5, math.inf, math.nan, checks.MAX_SAMPLE_RATE + 1, "8000",
                                  None])
def test_check_rate_refuses(rate):
    with pytest.raises(ValueError, match=r"^sample_rate must be a positive integer \(Hz\)"):
        checks.check_rate(rate)


def test_check_block_seconds():
    assert checks.check_block_seconds(None) is None
    assert checks.check_block_seconds(5) == 5.0 and type(checks.check_block_seconds(5)) is float
    for bad in (0, -1.0, math.inf, math.nan, True, "10"):
        with pytest.raises(ValueError, match="^block_seconds must be a positive number"):
            checks.check_block_seconds(bad)


def test_check_progress():
    assert checks.check_progress(None) is None and checks.check_progress(print) is print
    with pytest.raises(TypeError, match="^progress must be callable"):
        checks.check_progress(0.5)


def test_load_mixtures_names_each_item():
    a, b = np.zeros(4), np.ones((2, 4))
    loaded, many = checks.load_mixtures([a, b], 100)
    assert many and [x.shape for x, _ in loaded] == [(4,), (2, 4)] and [r for _, r in loaded] == [100, 100]
    (single, rate), = checks.load_mixtures(a, None)[0]
    assert single.dtype == np.float32 and rate is None and checks.load_mixtures(a, None)[1] is False
    with pytest.raises(ValueError, match=r"^mixture\[1\]: 1 non-finite"):
        checks.load_mixtures([a, np.array([np.nan])], 100)  # the second item is named, before any work
    with pytest.raises(ValueError, match="^mixture: the list of mixtures is empty"):
        checks.load_mixtures([], 100)
    with pytest.raises(ValueError, match=r"^mixture\[0\]: a nested list"):
        checks.load_mixtures([[0.0, 1.0]], 100)
    with pytest.raises(ValueError, match=r"^mixture\[0\]: expected an array .*got float \(a list is taken"):
        checks.load_mixtures([0.0, 1.0], 100)
    with pytest.raises(ValueError, match=r"^mixture: shape \(100, 2\) looks like \(samples, channels\)"):
        checks.load_mixtures(np.zeros((100, 2)), 100)


def test_load_mixture_reads_a_file_at_its_own_rate(tmp_path):
    path = tmp_path / "a.wav"
    x = np.sin(np.arange(50) / 3).astype(np.float32)
    sf.write(path, x, 800, subtype="FLOAT")
    y, rate = checks.load_mixture(path, None, "mixture")
    assert rate == 800
    np.testing.assert_array_equal(y, x)
    with pytest.raises(ValueError, match=r"^mixture: sample_rate=8000 was given but .*a.wav' is at 800 Hz"):
        checks.load_mixture(path, 8000, "mixture")


def test_check_audio_files(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(10, np.float32), 800, subtype="FLOAT")
    (tmp_path / "sub").mkdir()
    sf.write(tmp_path / "sub" / "a.wav", np.zeros(10, np.float32), 800, subtype="FLOAT")
    sf.write(tmp_path / "nan.wav", np.array([0, np.nan], np.float32), 800, subtype="FLOAT")
    ((x, rate),) = checks.check_audio_files([tmp_path / "a.wav"])
    assert rate == 800 and x.shape == (10,)
    with pytest.raises(ValueError, match="^no input files given"):
        checks.check_audio_files([])
    with pytest.raises(ValueError, match=r"would both write to <out_dir>/a/; rename one"):
        checks.check_audio_files([tmp_path / "a.wav", tmp_path / "sub" / "a.wav"])
    with pytest.raises(ValueError, match=r"^audio file .*nan.wav' contains NaN or inf samples"):
        checks.check_audio_files([tmp_path / "nan.wav"])
