"""`python -m cass_tf <command> ...`: the `cass-tf` command (cass_tf.cli)."""

import sys

from cass_tf.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m cass_tf"))
