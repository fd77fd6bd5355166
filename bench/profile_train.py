"""Profiles the training step: where its time goes, by kind of op, in each precision (TensorFlow's profiler).

    python bench/profile_train.py [--config configs/ecg.json] [--width 16] [--batch 16] [--steps 4]
                                  [--precisions float32 mixed_bfloat16] [--json PATH]

Builds the model as `bench/bench_train.py` does (the same data and overrides), runs two warm-up steps, then records
`--steps` graph-mode steps with `tf.profiler.experimental` and reads the trace it writes (the XSpace protobuf): the
time of every op executed on TensorFlow's inter-op threads, summed by kind (convolutions and their gradients,
BatchNorm, ReLU, pooling, spectral normalisation, the Adam updates, STFT/iSTFT, casts, the rest) and by op type.
Op times overlap on the two inter-op threads and include the profiler's overhead, so they are shares, not wall
time; the wall time per step is `bench/bench_train.py`'s. Prints a table per precision, and with --json writes
{precision: {"kinds": {kind: seconds}, "ops": {op type: seconds}, "steps", "meta"}}.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import tensorflow as tf  # noqa: E402

from bench_train import build, configure, device, materialise  # noqa: E402
from cass_tf.precision import CHOICES, resolve  # noqa: E402

# (kind, test on the op's name and type), first match wins
KINDS = (
    ("convolution", lambda name, op: "Conv2D" in op),
    ("batchnorm", lambda name, op: "_bn/" in name or "BatchNorm" in op),
    ("spectral norm", lambda name, op: "_sn/" in name),
    ("adam", lambda name, op: name.startswith("adam")),
    ("relu", lambda name, op: "Relu" in op),
    ("pooling", lambda name, op: "Pool" in op),
    ("stft/istft", lambda name, op: "stft" in name or "FFT" in op),
    ("cast", lambda name, op: op == "Cast"),
    ("other", lambda name, op: True),
)


def trace(step, batches, steps: int, logdir: str) -> str:
    """Runs `steps` profiled steps; the path of the XSpace file the profiler wrote."""
    for batch in batches[:2]:
        step(batch)
    tf.profiler.experimental.start(logdir)
    for batch in batches[2:2 + steps]:
        results = step(batch)
    tf.nest.map_structure(lambda t: t.numpy(), results)
    tf.profiler.experimental.stop()
    return sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))[-1]


def op_times(path: str) -> collections.Counter:
    """{(op name, op type): seconds} over the inter-op (tf_Compute) threads of an XSpace file."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    times: collections.Counter = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name, _, op = plane.event_metadata[event.metadata_id].name.partition(":")
                if op and not op.startswith(":"):  # not the executor's own events ("ExecutorState::Process")
                    times[(name, op)] += event.duration_ps / 1e12
    return times


def kind_of(name: str, op: str) -> str:
    return next(kind for kind, test in KINDS if test(name, op))


def profile(config, steps: int, precision: str, logdir: str) -> dict:
    model = build(config.replace([f"train.precision={precision}"]))
    times = op_times(trace(tf.function(model.train_step, autograph=False), materialise(config, steps), steps, logdir))
    kinds: collections.Counter = collections.Counter()
    ops: collections.Counter = collections.Counter()
    for (name, op), seconds in times.items():
        kinds[kind_of(name, op)] += seconds
        ops[op] += seconds
    return {"kinds": dict(kinds.most_common()), "ops": dict(ops.most_common(20)), "steps": steps}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/ecg.json")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"], choices=CHOICES)
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    results = {}
    with tempfile.TemporaryDirectory(prefix="cass_tf_profile_") as scratch:
        config, message = configure(args.config, args, scratch)
        if config is None:
            print(message)
            return 0
        for precision in args.precisions:
            policy = resolve(precision).policy
            results[policy] = profile(config, args.steps, precision, os.path.join(scratch, policy))
    print(f"TensorFlow {tf.__version__} on {device()}: {config.name} B={config.train.batch_size} "
          f"w={config.model.width}, op time over {args.steps} steps (s, share)")
    for policy, result in results.items():
        total = sum(result["kinds"].values())
        print(f"  {policy}: " + ", ".join(f"{k} {v:.3f} ({v / total:.0%})" for k, v in result["kinds"].items()))
    if args.json:
        meta = {"command": "python bench/profile_train.py " + " ".join(sys.argv[1:] if argv is None else argv),
                "machine": f"TensorFlow {tf.__version__} on {device()}"}
        pathlib.Path(args.json).write_text(json.dumps({**results, "meta": meta}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
