"""Writes the weight-space interpolation of an export and a fine-tuning of it as a new export (WiSE-FT).

    python pipelines/interpolate.py runs/p1_export/1 runs/p2/push/3 --weight 0.5 --export_dir runs/wise50

The new version holds (1 - weight) * FIRST + weight * SECOND for every autoencoder variable and FIRST's config
(cass_tf.exporting.interpolate, where the method is cited). It carries no blessing record: score it before using it
(pipelines/score_versions.py, pipelines/validate_real.py --ecg_only).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

if __package__ in (None, ""):  # run as a script from a checkout: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cass_tf import contract  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("first", help="an exported version directory (its config travels)")
    parser.add_argument("second", help="an exported version directory fine-tuned from FIRST")
    parser.add_argument("--weight", type=float, required=True, help="SECOND's share, in [0, 1]")
    parser.add_argument("--export_dir", required=True, help="base directory for the new version")
    parser.add_argument("--version", type=int, default=None, help="default: the next free one")
    args = parser.parse_args(argv)
    for option, version in (("first", args.first), ("second", args.second)):
        if not os.path.exists(os.path.join(version, "assets", contract.CONFIG_ASSET)):
            parser.error(f"{option}: {version!r} is not an exported version (no assets/{contract.CONFIG_ASSET})")
    from cass_tf.exporting import interpolate  # TensorFlow only once the paths are known to be exports

    try:
        print(interpolate(args.first, args.second, args.weight, args.export_dir, args.version))
    except ValueError as e:
        parser.error(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
