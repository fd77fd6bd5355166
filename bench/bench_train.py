"""Benchmarks the training step: samples/s and achieved FLOP/s in each precision, against bfloat16 matmuls.

    python bench/bench_train.py [--configs configs/ecg.json configs/ppg.json configs/bach10.json]
                                [--steps N] [--repeats R] [--width W] [--batch B] [--set dotted.path=value ...]
                                [--precisions float32 mixed_bfloat16] [--modes graph xla] [--json PATH]
                                [--discriminator_batch REPEATS]

Run from the repository root (the Bach10 config's data root is relative to it; without the data that config is
skipped with a message). For each config it builds CASSModel and its two Adam optimizers exactly as `cass_tf.train`
does (`train.build_model`), once per precision (`train.precision`) and mode ("graph": tf.function; "xla":
jit_compile=True), all in this process; traces/compiles each step (reported as "compile") and runs one warm-up step;
then times N steps of `model.train_step` on N distinct batches materialised beforehand (so the input pipeline's
cost, bench/bench_data.py, is not in the number), the variants in turns, R times each. Prints per variant the mean
± std samples/s over the repeats, the achieved FLOP/s as a fraction of the faster of the 2048² and 4096² bfloat16
matmuls measured at the start (what this hardware's matrix units reach), and the speed-up over the first variant,
e.g.

    ecg    graph mixed_bfloat16  B=16 w=16 F×T=64×64: 49.23 ± 1.38 samples/s (3×5 steps), 114.65 GFLOP/step, ...

With --discriminator_batch R it instead compares, per config and in graph mode, the step with each discriminator
called once per part (real, fake, each cross term: `model.discriminator_batch=separate`) against one call on their
concatenation, timed in turns R times each.

FLOPs per step: TensorFlow's graph profiler (`tf.compat.v1.profiler.profile(..., float_operation())`) on the
traced train-step graph (forward, both gradient tapes, optimizer updates; convolutions and their
Conv2DBackpropInput/Filter dominate, each multiply-add counted as 2). It counts the graph before Grappler prunes
it, so the few input-gradient convolutions nobody consumes (first layer of each network) are included: a slight
overestimate. The same count serves both modes (XLA fuses ops; it does not change the arithmetic the model needs).
The reference is the FLOP/s of n×n bfloat16 tf.matmul (2·n³ FLOPs each), n = 2048 and 4096, measured in the same
process (float32 matmuls are printed beside them). The FLOP count is the float32 graph's: bfloat16 does the same
arithmetic.

Synthetic sources are shrunk to 4 training + 1 test recordings by default (the step time does not depend on how
many recordings exist; --set data.ecg.train_recordings=48 restores them) and ECG's waveform cache goes to a
temporary directory. The paper-sized defaults (width 32, batch 50) take many seconds per step on a small CPU:
use --width/--batch/--steps to fit the machine.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the checkout's cass_tf, installed or not

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from common import DEFAULT_CONFIGS, append_run, cores  # noqa: E402
from cass_tf.config import ConfigError, load_config  # noqa: E402
from cass_tf.data import load_recordings  # noqa: E402
from cass_tf.data.pipeline import train_dataset  # noqa: E402
from cass_tf.models import resnet9  # noqa: E402
from cass_tf.models.cass import CASSModel  # noqa: E402
from cass_tf.precision import CHOICES, resolve  # noqa: E402
from cass_tf.train import build_model  # noqa: E402

MODES = {"graph": False, "xla": True}
MATMUL_SIZES = (2048, 4096)


def device() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU ({details.get('device_name', gpus[0].name)})"
    return f"CPU ({cores()} cores)"


def matmul_flops(n: int, dtype: tf.DType = tf.float32, repeats: int = 10) -> float:
    """FLOP/s of n×n `dtype` matmuls (2·n³ each), after one warm-up."""
    a = tf.cast(tf.random.normal([n, n]), dtype)
    b = tf.cast(tf.random.normal([n, n]), dtype)
    step = tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.linalg.matmul(a, b), tf.float32)))
    step(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        step(a, b).numpy()
    return repeats * 2 * n**3 / (time.perf_counter() - start)


def references() -> dict[str, float]:
    """FLOP/s of float32 and bfloat16 matmuls of each size in MATMUL_SIZES, measured in this process."""
    return {f"{dtype.name} {n}²": matmul_flops(n, dtype, repeats=10 if n <= 2048 else 3)
            for dtype in (tf.float32, tf.bfloat16) for n in MATMUL_SIZES}


def graph_flops(graph) -> int:
    """Floating-point operations of one run of `graph` (a traced tf.function), from TensorFlow's profiler."""
    options = (tf.compat.v1.profiler.ProfileOptionBuilder(tf.compat.v1.profiler.ProfileOptionBuilder.float_operation())
               .with_empty_output().build())
    level = tf.get_logger().level
    tf.get_logger().setLevel("ERROR")  # the profiler's v1 shape helper logs a deprecation warning
    try:
        return int(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)
    finally:
        tf.get_logger().setLevel(level)


def build(config) -> CASSModel:
    keras.utils.set_random_seed(config.seed)
    return build_model(config)


def configure(path: str, args, cache_dir: str):
    """The config at `path` with the bench's defaults and the user's overrides; None (and a message) to skip."""
    try:
        source = load_config(path).data.source
    except ConfigError as e:
        if "bach10.root" in str(e):
            return None, f"{os.path.basename(path)}: skipped, Bach10 data not found ({e})"
        raise
    overrides = ["data.validation_recordings=0"]  # the shipped configs hold out 8 of the (here 4) training recordings
    if source in ("ecg", "ppg"):
        overrides += [f"data.{source}.train_recordings=4", f"data.{source}.test_recordings=1"]
    if source == "ecg":
        overrides.append(f"data.cache_dir={cache_dir}")
    if args.width:
        overrides.append(f"model.width={args.width}")
    if args.batch:
        overrides.append(f"train.batch_size={args.batch}")
    return load_config(path, overrides + list(args.set)), None


def materialise(config, steps: int) -> list:
    """2 warm-up + `steps` timed training batches, all distinct, built before any timing."""
    iterator = iter(train_dataset(config, load_recordings(config)["train"], config.train.batch_size))
    return [next(iterator) for _ in range(steps + 2)]


def timed(step, batches, config) -> float:
    """Seconds for `step` over batches[2:] after two warm-up calls (the trace or compile happens there)."""
    loss = f"ae_loss/{config.components[0]}"
    for batch in batches[:2]:
        float(step(batch)[loss])
    start = time.perf_counter()
    for batch in batches[2:]:
        results = step(batch)
    float(results[loss])
    return time.perf_counter() - start


def compare_discriminator_batch(config, steps: int, repeats: int, reference: float) -> list[str]:
    """samples/s of the graph-mode train step with each D_i called once per part ("separate", the old code) and once
    on the concatenated batch, both built in this process and timed in turns, `repeats` times each."""
    import numpy as np

    batches = materialise(config, steps)
    variants = {}
    for calls in ("separate", "concatenated"):
        variant = config.replace([f"model.discriminator_batch={calls}"])
        step = tf.function(build(variant).train_step, autograph=False)  # as cass_tf.training traces it
        variants[calls] = (step, graph_flops(step.get_concrete_function(batches[0]).graph))
    rates = {calls: [] for calls in variants}
    for _ in range(repeats):
        for calls, (step, _) in variants.items():
            rates[calls].append(steps * config.train.batch_size / timed(step, batches, config))
    lines = []
    for calls, (_, flops) in variants.items():
        rate = np.array(rates[calls])
        achieved = rate.mean() / config.train.batch_size * flops
        lines.append(f"{config.name:<7}D {calls:<12} {config.loss.mode} B={config.train.batch_size} "
                     f"w={config.model.width}: {rate.mean():.2f} ± {rate.std(ddof=1) if repeats > 1 else 0:.2f} "
                     f"samples/s over {repeats} repeats of {steps} steps, {flops / 1e9:.2f} GFLOP/step, "
                     f"{achieved / reference:.3f} of bf16 matmul")
    return lines


def bench(config, steps: int, repeats: int, precisions: list[str], modes: list[str], reference: float) -> list[str]:
    """samples/s of the train step under each precision and mode, all built in this process and timed in turns on the
    same batches, `repeats` times each; each figure also as a fraction of `reference` FLOP/s (the bfloat16 matmul)."""
    import numpy as np

    batches = materialise(config, steps)
    variants, flops = {}, None
    for precision in precisions:
        model = build(config.replace([f"train.precision={precision}"]))
        for mode in modes:
            step = tf.function(model.train_step, jit_compile=MODES[mode], autograph=False)
            start = time.perf_counter()
            traced = step.get_concrete_function(batches[0])
            if flops is None:  # the float32 graph's count; the arithmetic is the same in every precision and mode
                flops = graph_flops(traced.graph)
            float(step(batches[0])[f"ae_loss/{config.components[0]}"])  # XLA compiles here
            variants[(resolve(precision).policy, mode)] = (step, time.perf_counter() - start)
    rates = {key: [] for key in variants}
    for _ in range(repeats):
        for key, (step, _) in variants.items():
            rates[key].append(steps * config.train.batch_size / timed(step, batches, config))
    first = next(iter(rates))
    lines = []
    for (policy, mode), values in rates.items():
        rate = np.array(values)
        spread = rate.std(ddof=1) if repeats > 1 else 0.0
        achieved = rate.mean() / config.train.batch_size * flops
        speedup = np.array(values) / np.array(rates[first])
        lines.append(f"{config.name:<7}{mode:<6}{policy:<15} B={config.train.batch_size} w={config.model.width} "
                     f"F×T={config.patch.frequency_bins}×{config.patch.frames}: {rate.mean():.2f} ± {spread:.2f} "
                     f"samples/s ({repeats}×{steps} steps), {flops / 1e9:.2f} GFLOP/step, {achieved / 1e9:.1f} GFLOP/s "
                     f"= {achieved / reference:.3f} of bf16 matmul, x{speedup.mean():.2f} of {first[0]} {first[1]}, "
                     f"compile {variants[(policy, mode)][1]:.1f} s")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS))
    parser.add_argument("--steps", type=int, default=10, help="timed steps per config and mode (after 2 warm-up)")
    parser.add_argument("--repeats", type=int, default=3, help="timings of each variant, taken in turns")
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"], choices=CHOICES,
                        help="train.precision values to compare (default: float32 mixed_bfloat16)")
    parser.add_argument("--modes", nargs="+", default=["graph"], choices=sorted(MODES),
                        help="graph (tf.function) and/or xla (jit_compile=True); default graph")
    parser.add_argument("--json", default=None, help="also append the printed lines and references to this JSON file")
    parser.add_argument("--keras_batchnorm", action="store_true",
                        help="build the autoencoders' BatchNorm as Keras' own layer (the code before issue 18) instead "
                             "of FusedBatchNorm, to measure what the fused kernel changes")
    parser.add_argument("--width", type=int, default=None, help="model.width (default: the config's)")
    parser.add_argument("--batch", type=int, default=None, help="train.batch_size (default: the config's)")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", help="config override (repeatable)")
    parser.add_argument("--discriminator_batch", type=int, default=0, metavar="REPEATS",
                        help="instead: compare separate vs concatenated discriminator calls (graph mode), timed in "
                             "turns REPEATS times each")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be >= 1")
    if args.keras_batchnorm:
        resnet9.batch_norm = lambda name: keras.layers.BatchNormalization(name=name)  # what the builders call
    matmuls = references()
    reference = max(v for k, v in matmuls.items() if k.startswith("bfloat16"))
    print(f"TensorFlow {tf.__version__} on {device()}; matmul GFLOP/s: "
          + ", ".join(f"{k} {v / 1e9:.0f}" for k, v in matmuls.items())
          + f"; reference: the faster bfloat16 one; {args.steps} timed steps per variant"
          + ("; Keras BatchNormalization" if args.keras_batchnorm else ""), flush=True)
    printed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="cass_tf_bench_") as cache_dir:
        for path in args.configs:
            try:
                config, message = configure(path, args, cache_dir)
            except ConfigError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            if config is None:
                print(message, flush=True)
                continue
            lines = (compare_discriminator_batch(config, args.steps, args.discriminator_batch, reference)
                     if args.discriminator_batch
                     else bench(config, args.steps, args.repeats, args.precisions, args.modes, reference))
            for line in lines:
                print(line, flush=True)
            printed += lines
    if args.json:
        append_run(args.json, "bench_train.py", argv, printed,
                   matmul_gflops={k: round(v / 1e9, 1) for k, v in matmuls.items()}, tensorflow=tf.__version__)
    return 0



if __name__ == "__main__":
    sys.exit(main())
