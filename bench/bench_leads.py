"""Benchmarks the multi-lead synthetic ECG generator (cass_tf.data.leads): seconds to generate a batch of recordings.

    python bench/bench_leads.py [--recordings 64] [--seconds 60] [--leads 4] [--rates 256 1000]
                                [--out docs/raw/bench_leads.json]

In one process (the generator's own speed; cass_tf.data.ecg spreads chunks over CASS_TF_DATA_WORKERS processes on
top), with configs/ecg.json's settings, after one warm-up recording; best of --repeats. Writes the JSON with the
command and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the checkout's cass_tf, installed or not

import numpy as np  # noqa: E402

from cass_tf.atomic import write_text  # noqa: E402
from cass_tf.config import load_config  # noqa: E402
from cass_tf.data import leads  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recordings", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--leads", type=int, default=4)
    parser.add_argument("--rates", type=int, nargs="+", default=[256, 1000])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="docs/raw/bench_leads.json")
    args = parser.parse_args()
    runs = []
    for rate in args.rates:
        config = load_config(REPO / "configs" / "ecg.json", overrides=[
            f"data.sample_rate={rate}", f"data.ecg.integration_rate={rate}", f"data.ecg.leads={args.leads}",
            f"data.ecg.seconds={args.seconds}"])
        samples = round(args.seconds * rate)
        seeds = np.random.SeedSequence(0).spawn(args.recordings)
        leads.chunk(seeds[:1], config.data.ecg, rate, samples)  # warm-up: imports, filter design
        times = []
        for _ in range(args.repeats):
            begin = time.perf_counter()
            leads.chunk(seeds, config.data.ecg, rate, samples)
            times.append(time.perf_counter() - begin)
        runs.append({"rate": rate, "recordings": args.recordings, "seconds": args.seconds, "leads": args.leads,
                     "best_s": min(times), "times_s": times, "load_average_1min": os.getloadavg()[0]})
        print(f"{args.recordings} x {args.seconds:g} s x {args.leads} leads at {rate} Hz: {min(times):.2f} s "
              f"(best of {args.repeats}; 1-min load {os.getloadavg()[0]:.1f})", flush=True)
    meta = {"command": "python " + " ".join(sys.argv), "machine": f"{os.cpu_count()}-core {platform.machine()} CPU, "
            "no GPU, shared with other work (see load_average_1min)"}
    write_text(args.out, json.dumps({"meta": meta, "runs": runs}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
