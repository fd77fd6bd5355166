"""The package's import surface: `cass_tf.separate` is a function whatever was imported first, and `import cass_tf`
does not import TensorFlow."""

import subprocess
import sys

import pytest

from conftest import ENV

IMPORT_ORDER = """
import sys
import cass_tf
assert "tensorflow" not in sys.modules, "import cass_tf imported TensorFlow"
function = cass_tf.separate
import cass_tf.separation as m
assert m.Separator is cass_tf.Separator
assert callable(function) and type(function).__name__ == "function", type(function)
assert cass_tf.separate is m.separate is function
"""


@pytest.mark.slow  # a subprocess that imports TensorFlow
def test_separate_is_a_function_in_any_import_order():
    result = subprocess.run([sys.executable, "-c", IMPORT_ORDER], capture_output=True, text=True, env=ENV)
    assert result.returncode == 0, result.stderr


DATA_WORKER = """
import sys
import numpy as np
from cass_tf.data import ecg, leads, ppg
rng = np.random.default_rng(0)
motion = ppg._motion(rng, 30.0, 100, 6000)  # band-passes its bursts (cass_tf.filters.bandpass)
drift = leads._electrode_motion(rng, 250, 2500, 3)
assert np.abs(motion).max() > 0 and drift.shape == (3, 2500), (motion.shape, drift.shape)
assert "tensorflow" not in sys.modules, "the synthetic generators imported TensorFlow"
"""


def test_the_synthetic_generators_run_without_tensorflow():
    # their process-pool workers filter with SciPy only: TensorFlow would cost each worker its import time and memory
    result = subprocess.run([sys.executable, "-c", DATA_WORKER], capture_output=True, text=True, env=ENV)
    assert result.returncode == 0, result.stderr
