"""`python -m cass_tf.export`: the `cass-tf export` command; `import cass_tf.export` gives cass_tf.exporting itself."""

import importlib
import sys

if __name__ == "__main__":  # nothing heavy is imported before cass_tf.cli has quieted TensorFlow
    from cass_tf.cli import run_module  # the CLI: it quiets TensorFlow before anything loads it

    sys.exit(run_module("export"))
sys.modules[__name__] = importlib.import_module("cass_tf.exporting")
