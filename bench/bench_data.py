"""Benchmarks the data side: waveform generation/loading (cold and cached) and train-pipeline throughput.

    python bench/bench_data.py [--configs configs/ecg.json configs/ppg.json configs/bach10.json] [--steps N]

Run from the repository root (the Bach10 config's data root is relative to it). Each config is used as shipped,
except that ECG's on-disk cache goes to a temporary directory so the repository is not touched. The cold load of a
source with a generation pool (ECG) is timed twice, serially (CASS_TF_DATA_WORKERS=1) and with the pool. Prints one
line per dataset, e.g.

    ecg: 1234.5 examples/s (batch 16, F×T 64×64), load cold: serial 40.1 s (13.0 recordings/s, 39.5 CPU s) /
    pool of 2 21.0 s (24.8 recordings/s, 41.2 CPU s); 0.05 s cached on disk; 504+8 recordings (10080 s train
    audio), machine: 2 cores
"""

from __future__ import annotations

import argparse
import importlib
import os
import pathlib
import resource
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the checkout's cass_tf, installed or not

import tensorflow as tf  # noqa: E402

from cass_tf.config import ConfigError, load_config  # noqa: E402
from common import DEFAULT_CONFIGS, append_run, cores  # noqa: E402
from cass_tf.data import load_recordings  # noqa: E402
from cass_tf.data.pipeline import train_dataset  # noqa: E402

WARMUP = 3


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def bench_loading(config, cache_dir: str):
    """(recordings, how the cold loads went, cached seconds, what 'cached' means) for the config's source. A source
    that generates with a process pool (ECG) is generated twice from scratch, serially and with its pool."""
    source = importlib.import_module(f"cass_tf.data.{config.data.source}")
    pooled = hasattr(source, "workers")
    runs = [("serial", 1), (f"pool of {source.workers()}", source.workers())] if pooled else [("one process", None)]
    cold = []
    for label, processes in runs:
        config = config.replace([f"data.cache_dir={tempfile.mkdtemp(dir=cache_dir)}"])  # nothing on disk yet
        if hasattr(source, "clear_cache"):
            source.clear_cache()  # nothing in memory: the first load generates (or reads) from scratch
        cpu = cpu_seconds()
        recordings, seconds = with_workers(source, processes, lambda: timed(lambda: load_recordings(config)))
        cold.append(f"{label} {seconds:.2f} s ({generated(config, recordings) / seconds:.1f} recordings/s, "
                    f"{cpu_seconds() - cpu:.1f} CPU s)")
    if config.data.source == "ecg":
        source.clear_cache()  # the second load comes from the on-disk cache, not memory
        what = "cached on disk"
    elif config.data.source == "bach10":
        what = "cached in memory"
    else:
        what = "regenerated, no cache"
    _, cached = timed(lambda: load_recordings(config))
    return recordings, " / ".join(cold), cached, what


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended."""
    usages = map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return sum(usage.ru_utime + usage.ru_stime for usage in usages)


def with_workers(source, processes, fn):
    """fn() with the source's generation pool set to `processes` (left as it is when None)."""
    if processes is None:
        return fn()
    previous = os.environ.get(source.WORKERS_ENV)
    os.environ[source.WORKERS_ENV] = str(processes)
    try:
        return fn()
    finally:
        os.environ.pop(source.WORKERS_ENV)
        if previous is not None:
            os.environ[source.WORKERS_ENV] = previous


def generated(config, recordings) -> int:
    """Recordings the load made or read: a synthetic source's train + test, held-out validation ones included."""
    section = getattr(config.data, config.data.source, None)
    if hasattr(section, "train_recordings"):
        return section.train_recordings + section.test_recordings
    return len(recordings["train"]) + len(recordings["test"])


def bench_pipeline(config, recordings, steps: int) -> float:
    """Training examples per second over `steps` batches after WARMUP batches."""
    batch = config.train.batch_size
    iterator = iter(train_dataset(config, recordings["train"], batch))
    for _ in range(WARMUP):
        next(iterator)[0].numpy()
    start = time.perf_counter()
    for _ in range(steps):
        mixture, parts = next(iterator)
        mixture.numpy()
        for value in parts.values():
            value.numpy()
    return steps * batch / (time.perf_counter() - start)


def bench(path: str, steps: int, cache_dir: str) -> str:
    try:
        config = load_config(path)
    except ConfigError as e:
        if "bach10.root" in str(e):
            return f"{os.path.basename(path)}: skipped, Bach10 data not found ({e})"
        raise
    recordings, cold, cached, what = bench_loading(config, cache_dir)
    rate = bench_pipeline(config, recordings, steps)
    train_seconds = sum(len(r) for r in recordings["train"]) / config.data.sample_rate
    return (f"{config.name}: {rate:.1f} examples/s (batch {config.train.batch_size}, "
            f"F×T {config.patch.frequency_bins}×{config.patch.frames}), "
            f"load cold: {cold}; {cached:.2f} s {what}; "
            f"{len(recordings['train'])}+{len(recordings['test'])} recordings ({train_seconds:.0f} s train audio), "
            f"machine: {cores()} cores")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS))
    parser.add_argument("--steps", type=int, default=30, help="timed batches per config (after %d warm-up)" % WARMUP)
    parser.add_argument("--json", default=None, help="also append the printed lines to this JSON file")
    args = parser.parse_args(argv)
    print(f"TensorFlow {tf.__version__}, {cores()} cores, {args.steps} timed batches after {WARMUP} warm-up",
          flush=True)
    lines = []
    with tempfile.TemporaryDirectory(prefix="cass_tf_bench_") as cache_dir:
        for path in args.configs:
            lines.append(bench(path, args.steps, cache_dir))
            print(lines[-1], flush=True)
    if args.json:
        append_run(args.json, "bench_data.py", argv, lines, tensorflow=tf.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
