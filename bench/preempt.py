"""Preempts a tiny training with SIGTERM at random steps, resumes it each time, and compares the end with one
uninterrupted run: the same final weights?

    nice -n 10 python bench/preempt.py [--steps 20] [--stops 10] [--seed 0] [--work_dir runs/preempt]

Run from the repository root. A 20-step training (configs/paper/ppg.json shrunk to the tests' tiny model: width 2,
16x16 patches, batch 4, one component, 4 steps per epoch) is trained once without a stop, then again with `--stops`
stops: each run of `python -m cass_tf.train` (a real subprocess) is sent SIGTERM by itself (os.kill, delivered by
the kernel to the real handler) while checking a step drawn at random, after the previous stop; it must exit 143
having checkpointed that step, and the same command is run again. The last run trains to the end. Prints each stop
and the largest absolute difference between the two final checkpoints, tensor by tensor (weights, Adam moments and
counters, step, epoch), and whether history.csv agrees (all but the seconds column).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "paper", "ppg.json")
TINY = ["data.ppg.train_recordings=2", "data.ppg.test_recordings=1", "data.ppg.seconds=30", "data.cache_dir=null",
        "model.width=2", "patch.frequency_bins=16", "patch.frames=16", "stft.n_fft=32", "stft.window=32",
        "stft.hop=16", "train.batch_size=4", "train.steps_per_epoch=4", 'data.components=["heart"]', "loss.cross=[[0]]"]
# The training CLI, sending itself SIGTERM when step argv[1] is checked (cass_tf.train._check_finite runs after
# every step, before the loop looks for a stop).
CHILD = """
import os, signal, sys
import cass_tf.train as training
at, real = int(sys.argv.pop(1)), training._check_finite
def check(values, step, *args):
    if step == at and "ae_loss/heart" in values and "test_l2_waveform/heart" not in values:  # the step's check
        os.kill(os.getpid(), signal.SIGTERM)
    return real(values, step, *args)
training._check_finite = check
from cass_tf.cli import run_module
sys.exit(run_module("train"))
"""


def command(model_dir: str, steps: int) -> list[str]:
    sets = [a for o in TINY + [f"train.epochs={steps // 4}"] for a in ("--set", o)]
    return ["--config", CONFIG, *sets, "--model_dir", model_dir]


def run(args: list[str], stop_at: int | None) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONPATH=REPO)
    head = [sys.executable, "-c", CHILD, str(stop_at)] if stop_at else [sys.executable, "-m", "cass_tf.train"]
    return subprocess.run(head + args, cwd=REPO, env=env, capture_output=True, text=True)


def tensors(model_dir: str) -> dict:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "OBJECT_GRAPH" not in k and not k.startswith("save_counter")}


def history(model_dir: str) -> list[dict]:
    with open(os.path.join(model_dir, "history.csv"), newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads here (to compare the checkpoints)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="total steps (a multiple of 4)")
    parser.add_argument("--stops", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="draws the steps to stop at")
    parser.add_argument("--work_dir", default=None, help="default: a temporary directory")
    args = parser.parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix="preempt-")
    reference, preempted = os.path.join(work, "uninterrupted"), os.path.join(work, "preempted")
    done = run(command(reference, args.steps), None)
    if done.returncode:
        sys.exit(f"the uninterrupted run failed:\n{done.stderr[-2000:]}")
    stops = sorted(random.Random(args.seed).sample(range(1, args.steps), args.stops))
    for at in stops:
        proc = run(command(preempted, args.steps), at)
        line = [x for x in proc.stderr.splitlines() if x.startswith("stopped")]
        print(f"SIGTERM at step {at}: exit {proc.returncode}; {line[0] if line else proc.stderr[-500:]}", flush=True)
        if proc.returncode != 143 or f"after step {at}," not in line[0]:
            sys.exit("the stop did not go as it should")
    final = run(command(preempted, args.steps), None)
    if final.returncode:
        sys.exit(f"the last resume failed:\n{final.stderr[-2000:]}")
    a, b = tensors(reference), tensors(preempted)
    import numpy as np

    assert sorted(a) == sorted(b), "the checkpoints hold different tensors"
    worst = max(float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)))) if a[k].size else 0.0
                for k in a)
    same = all(np.array_equal(a[k], b[k]) for k in a)
    print(f"{len(stops)} stops at steps {stops}; final step {int(b['step/.ATTRIBUTES/VARIABLE_VALUE'])}; "
          f"{len(a)} tensors; identical: {same}; max abs difference {worst:.3g}; "
          f"history.csv the same but for seconds: {history(reference) == history(preempted)}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
