"""Owns what the bench scripts share: the default configs, the machine's core count, the raw-figure file."""

import os

DEFAULT_CONFIGS = ("configs/ecg.json", "configs/ppg.json", "configs/bach10.json")


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def append_run(path: str, script: str, argv, lines: list[str], **extra) -> None:
    """Appends one run of `script` (its command line, the machine, `extra` figures, the lines it printed and, as JSON
    numbers, every decimal in those lines) to the JSON list at `path`: the raw file that docs/benchmarks.md's figures
    are checked against (docs/README.md; the check reads JSON numbers, not text)."""
    import json
    import platform
    import re
    import sys

    runs = json.loads(open(path, encoding="utf-8").read()) if os.path.exists(path) else []
    command = f"python bench/{script} " + " ".join(sys.argv[1:] if argv is None else argv)
    numbers = [float(x) for line in lines for x in re.findall(r"(?<![\d.])\d+\.\d+(?![\w.]*\d)", line)]
    runs.append({"meta": {"command": command, "machine": f"{platform.machine()}, {cores()} cores"}, **extra,
                 "lines": lines, "numbers": numbers})
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(runs, indent=1, ensure_ascii=False) + "\n")
