"""Owns evaluation runs (`cass-tf evaluate`): restore each run, score it on one config's test data beside the
oracles (cass_tf.scoring), write the report (cass_tf.reports).

    cass-tf evaluate --model_dir runs/ppg [--model_dir runs/ppg-baseline ...] [--config CFG] [--out DIR]
                     [--protocol waveform|paper ...]

`evaluate_runs` (the `cass-tf evaluate` command, also `python -m cass_tf.evaluate`) writes `<out>/evaluation.json`
and `<out>/evaluation.md` (default out: the model_dir, or with several model_dirs their common parent); the
command also prints one table per component and test set. `cass_tf.evaluate` is this module, and it also gives
the names of cass_tf.scoring and cass_tf.reports, so `cass_tf.evaluate.crop_errors` etc. work as before.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Sequence

from cass_tf.config import Config, ConfigError, flatten, load_config
from cass_tf.data.pipeline import make_datasets
from cass_tf.models.cass import restore
from cass_tf.reports import *  # noqa: F401,F403 (re-exported: cass_tf.evaluate.<name> as before the split)
from cass_tf.reports import report, write_outputs
from cass_tf.rundir import RunDir
from cass_tf.scoring import *  # noqa: F401,F403 (re-exported, likewise)
from cass_tf.scoring import PROTOCOLS, crop_errors, event_scores, oracle_errors, paper_errors, signal_errors

# What a trained network depends on: an evaluation config must agree with the run on these (`check_compatible`).
NETWORK_FIELDS = ("data.sample_rate", "data.components", "data.mixture_domain", "stft", "patch", "scaling",
                  "model.output", "model.input", "model.consistency", "model.input_rms")


def evaluate_run(model_dir: str, config: Config | None = None, data=None, signals: bool = True,
                 model: Any = None, protocols: Sequence[str] = ("waveform",)) -> dict[str, Any]:
    """Scores the run in `model_dir` on `config`'s test data (default: the run's own config), under each of
    `protocols` ("waveform", "paper"; see `PROTOCOLS`; `signals`: whether the waveform protocol scores the whole
    test signals too).

    `model`: the run's model if the caller has already restored it (default: restored here).
    Raises FileNotFoundError for a missing run or checkpoint and ConfigError when `config` disagrees with the
    run on what the networks depend on (`NETWORK_FIELDS`).
    """
    check_protocols(protocols)
    model = restore(model_dir) if model is None else model
    config = config or model.config
    check_compatible(model.config, config, model_dir)
    data = make_datasets(config) if data is None else data
    result: dict[str, Any] = {
        "model_dir": model_dir,
        "mode": model.config.loss.mode,
        "checkpoint": RunDir(model_dir).latest_checkpoint(),
        "protocols": list(protocols),
    }
    if "waveform" in protocols:
        result["crops"] = crop_errors(model, data, config).to_dict()
        result["crops_component_phase"] = crop_errors(model, data, config, phase="component").to_dict()
        if signals:
            result["signals"] = signal_errors(model, data, config).to_dict()
            result["events"] = event_scores(model, data, config)
    if "paper" in protocols:
        result["crops_paper"] = paper_errors(model, data, config).to_dict()
    return result


def check_protocols(protocols: Sequence[str]) -> None:
    """Raises ValueError naming `protocol` unless `protocols` is a non-empty list of PROTOCOLS' names."""
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown or not protocols:
        raise ValueError(f"protocol: must be one or more of {sorted(PROTOCOLS)}, got {list(protocols)}")


def check_compatible(trained: Config, evaluation: Config, model_dir: str) -> None:
    """Raises ConfigError unless both configs agree on the network-relevant fields."""
    a, b = flatten(trained.to_dict()), flatten(evaluation.to_dict())
    differing = sorted(k for k in set(a) | set(b) if k.startswith(NETWORK_FIELDS) and a.get(k) != b.get(k))
    if differing:
        raise ConfigError(f"{model_dir} was trained with different {', '.join(differing)} than the evaluation "
                          "config; omit --config to use the run's own config.json, or --set the same values")


def run_names(model_dirs: Sequence[str]) -> list[str]:
    """Short unique row names: the directory base names, or the paths when base names repeat."""
    bases = [os.path.basename(os.path.normpath(d)) for d in model_dirs]
    return bases if len(set(bases)) == len(bases) else [os.path.normpath(d) for d in model_dirs]


def evaluate_runs(model_dirs: Sequence[str], config_path: str | None = None, overrides: Sequence[str] = (),
                  out: str | None = None, signals: bool = True,
                  log: Callable[[str], None] | None = None, protocols: Sequence[str] = ("waveform",)) -> dict[str, Any]:
    """Scores runs on one config's test data beside the ideal magnitudes and writes the report (`cass-tf evaluate`).

    The config is `config_path` (default: the first run's config.json) with `overrides`. Every model_dir is checked
    to be a run before any work. Writes `<out>/evaluation.json` and `.md` (default out: the model_dir, or the runs'
    common parent). Returns {"runs": {name: evaluate_run(...)}, "oracle": ..., "report": Markdown, "paths": (json,
    md)}; `log` is called with a line as each run starts.
    """
    if not model_dirs:
        raise ValueError("model_dirs: no run to evaluate")
    check_protocols(protocols)
    for model_dir in model_dirs:
        RunDir(model_dir).load_config()
    with contextlib.ExitStack() as locks:  # no training (or other writer) may change a run while it is scored
        for model_dir in dict.fromkeys(os.path.abspath(d) for d in model_dirs):
            locks.enter_context(RunDir(model_dir).lock("evaluate"))
        config = load_config(config_path or RunDir(model_dirs[0]).config, overrides)
        data = make_datasets(config)
        results = {}
        for name, model_dir in zip(run_names(model_dirs), model_dirs):
            if log:
                log(f"evaluating {model_dir} ...")
            results[name] = evaluate_run(model_dir, config, data, signals=signals, protocols=protocols)
        oracle = oracle_errors(data, config, signals)
        out = out or (model_dirs[0] if len(model_dirs) == 1 else os.path.commonpath(model_dirs))
        paths = write_outputs(results, config.components, out, config, oracle)
    return {"runs": results, "oracle": oracle, "report": report(results, config.components, oracle), "paths": paths}
