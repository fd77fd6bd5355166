"""Unit tests for cass_tf.frontend (no model, no TensorFlow): a backend that doubles its input shows what the front
end does around it: the signals it is handed (at the model's rate), and what comes back (the input's rate, length
and shape), checked and named."""

import numpy as np
import pytest

from cass_tf import audio
from cass_tf.frontend import separate_mixtures


class Doubler:
    """A backend: {"twice": 2 x, "zero": 0 x} per signal; remembers what it was handed."""

    def __init__(self):
        self.handed = []

    def __call__(self, signals):
        self.handed.append(signals)
        return [{"twice": 2 * x, "zero": 0 * x} for x in signals]


def test_signals_at_the_model_rate_and_results_back_at_the_inputs():
    x = np.sin(np.arange(301) / 7).astype(np.float32)
    stereo = np.stack([x, -x])
    backend = Doubler()
    out = separate_mixtures([(x, 48), (stereo, None)], True, 32, backend)
    (handed,) = backend.handed  # all signals in one call
    np.testing.assert_array_equal(handed[0], audio.resample(x, 48, 32))
    assert handed[1] is stereo  # already at the model's rate: not resampled
    expected = audio.fit_length(audio.resample(2 * audio.resample(x, 48, 32), 32, 48), 301)
    np.testing.assert_array_equal(out[0]["twice"], expected)
    np.testing.assert_array_equal(out[1]["twice"], 2 * stereo)
    assert out[1]["zero"].shape == (2, 301)


def test_one_mixture_gives_one_dict_and_mono_averages_first():
    stereo = np.stack([np.ones(10, np.float32), 3 * np.ones(10, np.float32)])
    out = separate_mixtures([(stereo, None)], False, 16, Doubler(), mono=True)
    np.testing.assert_array_equal(out["twice"], np.full(10, 4.0, np.float32))


def test_a_rate_without_the_model_rate_is_refused_before_the_backend_runs():
    backend = Doubler()
    with pytest.raises(ValueError, match=r"^mixture\[1\] is at 8000 Hz but this client does not know"):
        separate_mixtures([(np.zeros(4, np.float32), None), (np.zeros(4, np.float32), 8000)], True, None, backend)
    assert backend.handed == []


def test_non_finite_outputs_are_named():
    def overflows(signals):
        return [{"a": np.full_like(x, np.inf)} for x in signals]

    with pytest.raises(ValueError, match=r"^mixture\[0\]: the 'a' output is not finite"):
        separate_mixtures([(np.ones(4, np.float32), None)], True, 8, overflows)
    with pytest.raises(ValueError, match=r"^'take.wav': the 'a' output"):
        separate_mixtures([(np.ones(4, np.float32), 8)], False, 8, overflows, names=["'take.wav'"])
