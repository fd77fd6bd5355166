"""Scores exported versions on the recordings the pipeline blesses on, as raw JSON: how blessing figures are backed.

    python pipelines/score_versions.py saved_models/ecg/2 saved_models/ecg/1 --fresh 64 --out docs/raw/ecg_blessing.json

The recordings are drawn from the FIRST version's asset config (the full training config travels with every export)
exactly as pipelines/train_export.py's Evaluator draws them (`evaluation_recordings`: `--fresh N` new synthetic
recordings with data seed seed + 1, else the validation split, else the test split; `--test`: the test split
whatever the config holds out), and every version is scored
through its serving_default signature (`saved_model_scores`): the same numbers the Evaluator computes. Scoring only:
nothing trains. The JSON holds {"meta": {"command", "machine", "recordings", "config_from"}, "scores": {version:
{component: {score: value}}}}; non-finite scores are written as the strings "nan"/"inf".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence

if __package__ in (None, ""):  # run as a script from a checkout: make the package importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cass_tf import contract  # noqa: E402
from cass_tf.atomic import write_text  # noqa: E402
from cass_tf.evaluate import jsonable  # noqa: E402


def score_versions(versions: Sequence[str], fresh: int, test: bool = False) -> dict[str, Any]:
    """{"recordings": what was scored, "scores": {version: scores}} (see the module docstring)."""
    from train_export import evaluation_recordings, saved_model_scores

    config = contract.read_asset(versions[0]).config
    if test:
        from cass_tf.data import as_recorded, load_recordings

        test_split = config.replace(["data.validation_recordings=0"])
        recordings = load_recordings(as_recorded(test_split))["test"]
        described = f"the {len(recordings)} test recordings"
    else:
        described, recordings = evaluation_recordings(config, fresh)
    return {"recordings": described, "scores": {v: saved_model_scores(v, recordings) for v in versions}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("versions", nargs="+", help="exported version directories; the first one's config draws")
    parser.add_argument("--fresh", type=int, default=0, help="N fresh synthetic recordings (default: the split)")
    parser.add_argument("--test", action="store_true", help="score the test split instead (synthetic sources)")
    parser.add_argument("--out", required=True, help="the raw JSON to write")
    args = parser.parse_args(argv)
    for version in args.versions:
        if not os.path.exists(os.path.join(version, "assets", contract.CONFIG_ASSET)):
            parser.error(f"{version}: not an exported version (no assets/{contract.CONFIG_ASSET})")
    if args.test and args.fresh:
        parser.error("--test and --fresh: choose one")
    result = score_versions(args.versions, args.fresh, args.test)
    command = "python pipelines/score_versions.py " + " ".join(sys.argv[1:] if argv is None else argv)
    meta = {"command": command, "machine": f"{os.cpu_count()}-core CPU, no GPU, shared with other work",
            "recordings": result["recordings"], "config_from": args.versions[0]}
    write_text(args.out, json.dumps(jsonable({"meta": meta, "scores": result["scores"]}), indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
