"""`python -m cass_tf.separation`: the `cass-tf separate` command; `import cass_tf.separation` gives cass_tf.files itself."""

import importlib
import sys

if __name__ == "__main__":  # nothing heavy is imported before cass_tf.cli has quieted TensorFlow
    from cass_tf.cli import run_module  # the CLI: it quiets TensorFlow before anything loads it

    sys.exit(run_module("separate"))
sys.modules[__name__] = importlib.import_module("cass_tf.files")
