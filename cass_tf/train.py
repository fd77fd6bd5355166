"""`python -m cass_tf.train`: the `cass-tf train` command; `import cass_tf.train` gives cass_tf.training itself."""

import importlib
import sys

if __name__ == "__main__":  # nothing heavy is imported before cass_tf.cli has quieted TensorFlow
    from cass_tf.cli import run_module  # the CLI: it quiets TensorFlow before anything loads it

    sys.exit(run_module("train"))
sys.modules[__name__] = importlib.import_module("cass_tf.training")
