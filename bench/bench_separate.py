"""Benchmarks inference: separate()'s real-time factor, its overhead over the bare signature, and memory on long input.

    python bench/bench_separate.py [--models saved_models/ecg saved_models/ppg]
                                   [--model_dirs runs/reproduce/bach10-cpu/cass_cross]
                                   [--seconds 60] [--hour_seconds 3600] [--repeats 3]

`--models` are TF Serving base directories (their highest version is used); `--model_dirs` are training model_dirs,
exported with cass_tf.export into a temporary directory first. A path that does not exist is skipped with a
message. The input is always Gaussian noise (std 0.1, float32, fixed seed) at the model's own sample rate, so
nothing is resampled; what the model makes of it does not change the time. For each model:

- RTF: the best of `--repeats` timed `cass_tf.separate(x, separator)` calls on `--seconds` of audio (the Separator
  loaded once beforehand; one untimed warm-up call first), divided by the audio's duration.
- separate()/signature: that best time over the best time of the bare `serving_default` signature of the same
  SavedModel (loaded again with tf.saved_model.load) on the same input, timed the same way and including the
  conversion of its outputs to NumPy, which separate() does too. What the ratio shows beyond 1 is separate()'s own
  work: input validation, the (here no-op) resampling, blocking (none up to the default 60 s block) and copies.
- Memory: a fresh child process (this script with the hidden `--_child` flag) imports TensorFlow, loads the model,
  separates 1 s once (so first-call runtime set-up is not counted against the long input), records its current
  RSS as the baseline, then generates `--hour_seconds` of noise at once (one float32 array) and separates it with
  the default 60 s blocks. Its peak RSS is the ru_maxrss that os.wait4 returns for that child (per child:
  getrusage(RUSAGE_CHILDREN) would give the maximum over all children so far). "arrays" is the input plus the
  outputs, samples × (1 + components) × 4 bytes, the least any whole-array API must hold.

Prints the machine first, then one line per model, e.g.

    ecg (256 Hz, 2 components): RTF 0.0123 on 60 s (best of 3); separate()/signature 1.05; 1 h input: peak RSS 812 MiB (baseline 650 MiB, arrays 8 MiB), 45.2 s
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the checkout's cass_tf, installed or not

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import logging  # noqa: E402

from cass_tf.contract import SERVING_SIGNATURE, WAVEFORM_INPUT  # noqa: E402
from cass_tf.export import export  # noqa: E402
from cass_tf.separation import Separator, separate  # noqa: E402
from common import cores  # noqa: E402

DEFAULT_MODELS = ("saved_models/ecg", "saved_models/ppg")
DEFAULT_MODEL_DIRS = ("runs/reproduce/bach10-cpu/cass_cross",)
MIB = 1 << 20


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    gpus = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
            for g in tf.config.list_physical_devices("GPU")]
    return f"{cores()} cores (nproc), {cpu}; GPU: {', '.join(gpus) or 'none'}; TensorFlow {tf.__version__}"


def noise(seconds: float, rate: int) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal(int(round(seconds * rate)), dtype=np.float32)
    x *= 0.1  # in place: no second full-length array while generating
    return x


def best_time(call, repeats: int) -> float:
    """The shortest of `repeats` timed calls, after one untimed warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def signature_call(version_dir: str, x: np.ndarray):
    signature = tf.saved_model.load(version_dir).signatures[SERVING_SIGNATURE]
    return lambda: {n: v.numpy() for n, v in signature(**{WAVEFORM_INPUT: tf.constant(x[None])}).items()}


def current_rss_mib() -> float:
    with open("/proc/self/status", encoding="utf-8") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kib / 1024


def child(version_dir: str, hour_seconds: float) -> None:
    """Runs in the fresh process: prints {"baseline_mib", "seconds"} as JSON on its last stdout line."""
    separator = Separator(version_dir)
    separate(noise(1.0, separator.sample_rate), separator)
    baseline = current_rss_mib()
    x = noise(hour_seconds, separator.sample_rate)
    start = time.perf_counter()
    separate(x, separator)
    print(json.dumps({"baseline_mib": baseline, "seconds": time.perf_counter() - start}), flush=True)


def long_input_memory(version_dir: str, hour_seconds: float) -> dict:
    """The child's report plus its peak RSS in MiB ("peak_mib"), from os.wait4."""
    command = [sys.executable, os.path.abspath(__file__), "--_child", version_dir, "--hour_seconds", str(hour_seconds)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"the memory child for {version_dir} exited with {process.returncode}")
    return {**json.loads(output.strip().splitlines()[-1]), "peak_mib": usage.ru_maxrss / 1024}


def duration(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds % 3600 == 0 else f"{seconds:g} s"


def bench(label: str, path: str, args) -> str:
    separator = Separator(path)
    version_dir, rate, components = separator.source, separator.sample_rate, len(separator.components)
    x = noise(args.seconds, rate)
    separated = best_time(lambda: separate(x, separator), args.repeats)
    bare = best_time(signature_call(version_dir, x), args.repeats)
    memory = long_input_memory(version_dir, args.hour_seconds)
    arrays = int(round(args.hour_seconds * rate)) * (1 + components) * 4 / MIB
    return (f"{label} ({rate} Hz, {components} components): RTF {separated / args.seconds:.4f} on "
            f"{args.seconds:g} s (best of {args.repeats}); separate()/signature {separated / bare:.2f}; "
            f"{duration(args.hour_seconds)} input: peak RSS {memory['peak_mib']:.0f} MiB "
            f"(baseline {memory['baseline_mib']:.0f} MiB, arrays {arrays:.1f} MiB), {memory['seconds']:.2f} s")


def targets(args, export_root: str):
    """(label, model path for Separator) per model that exists; prints a skip line for each that does not."""
    for path in args.models:
        if not os.path.exists(path):
            print(f"{path}: skipped, not found", flush=True)
            continue
        yield os.path.basename(os.path.normpath(path)), path
    for index, path in enumerate(args.model_dirs):
        if not os.path.exists(path):
            print(f"{path}: skipped, model_dir not found", flush=True)
            continue
        label = "/".join(pathlib.Path(path).parts[-2:])
        yield label, export(path, os.path.join(export_root, str(index)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=list(DEFAULT_MODELS), help="TF Serving base directories")
    parser.add_argument("--model_dirs", nargs="*", default=list(DEFAULT_MODEL_DIRS),
                        help="training model_dirs, exported to a temporary directory first")
    parser.add_argument("--seconds", type=float, default=60.0, help="audio length for the RTF and overhead timings")
    parser.add_argument("--hour_seconds", type=float, default=3600.0, help="audio length for the memory measurement")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (after 1 warm-up)")
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.hour_seconds <= 0 or args.repeats < 1:
        parser.error("--seconds and --hour_seconds must be > 0 and --repeats >= 1")
    if args._child:
        child(args._child, args.hour_seconds)
        return 0
    logging.set_verbosity(logging.WARNING)  # tf.saved_model.save's INFO lines are noise here
    print(machine(), flush=True)
    with tempfile.TemporaryDirectory(prefix="cass_tf_bench_") as export_root:
        for label, path in targets(args, export_root):
            print(bench(label, path, args), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
