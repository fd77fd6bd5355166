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
