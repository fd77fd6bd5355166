"""Owns the blessing record: the append-only JSON-lines file where a pipeline run freezes its bounds and blessing set
before training and then appends every evaluation, verdict and push (`<model_dir>/` + `rundir.BLESSING_RECORD`).

One JSON object a line, each with "event" and "time" (UTC):

    frozen      written once, when the run starts: "bounds" ({score: bound}), "blessing_set" (what is scored:
                split, count, data seed, the data section), "blessing_set_sha256", "config_sha256" (the config but
                for `rundir.RESUMABLE_FIELDS`) and "config" (the config itself). A rerun whose bounds, blessing set
                or config differ is refused; a field added to the code since the run froze, at its default, is no
                difference (the frozen config is completed with today's defaults before it is hashed).
    evaluation  every scoring, never replaced: the model's epoch and step, "recordings" (described),
                "recordings_sha256" (of the scored mixtures), "candidate", "pushed_version", "pushed", "bounds",
                "blessed", "reasons".
    push        "version_dir" (null when that version existed) and "rests_on": the line number (1-based) of the
                evaluation that blessed it. The pushed version carries the record up to that evaluation in assets/.

Non-finite scores are written as the strings "nan"/"inf" (JSON has neither).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from typing import Any, Mapping, Sequence

import numpy as np

from cass_tf.config import Config, completed, flatten
from cass_tf.reports import jsonable
from cass_tf.rundir import RESUMABLE_FIELDS

FROZEN, EVALUATION, PUSH = "frozen", "evaluation", "push"


class BlessingError(ValueError):
    """A rerun that would change what its run froze, or a record that cannot be read."""


def sha256_json(value: Any) -> str:
    """sha256 of `value` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(jsonable(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_sha256(config: Config | Mapping[str, Any]) -> str:
    """sha256 of the config (or its plain dict) without the fields a resume may change (`rundir.RESUMABLE_FIELDS`)."""
    plain = config.to_dict() if isinstance(config, Config) else config
    return sha256_json({k: v for k, v in flatten(plain).items() if k not in RESUMABLE_FIELDS})


def recordings_sha256(mixtures: Sequence[np.ndarray]) -> str:
    """sha256 of the scored mixtures (float32 bytes, in order): the same recordings give the same hash."""
    digest = hashlib.sha256()
    for mixture in mixtures:
        digest.update(np.ascontiguousarray(mixture, dtype=np.float32).tobytes())
    return digest.hexdigest()


def read(path: str) -> list[dict[str, Any]]:
    """The record's entries in order ([] when there is none)."""
    if not os.path.exists(path):
        return []
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        raise BlessingError(f"{path}: the blessing record cannot be read ({e})") from None


def append(path: str, event: str, fields: Mapping[str, Any]) -> int:
    """Appends one entry (flushed to disk before returning); returns its line number (1-based)."""
    entry = {"event": event, "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
             **fields}
    line = json.dumps(jsonable(entry), allow_nan=False)
    number = len(read(path)) + 1
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())
    return number


def freeze(path: str, config: Config, blessing_set: Mapping[str, Any]) -> dict[str, Any]:
    """Writes the run's frozen entry, or, on a rerun, refuses (BlessingError) bounds, a blessing set or a config
    that differ from the ones the run froze; returns the frozen entry."""
    wanted = {"bounds": config.output.bless_bounds(), "blessing_set": dict(blessing_set),
              "blessing_set_sha256": sha256_json(blessing_set), "config_sha256": config_sha256(config)}
    entries = read(path)
    if not entries:
        append(path, FROZEN, {**wanted, "config": config.to_dict()})
        return read(path)[0]
    frozen = entries[0]
    then = dict(frozen)
    if "config" in frozen:  # records older than this field carry the hash alone
        then["config_sha256"] = config_sha256(completed(frozen["config"]))
    checks = (("bounds", "bounds", "bounds"), ("blessing set", "blessing_set_sha256", "blessing_set"),
              ("config", "config_sha256", None))
    for what, key, shown in checks:
        if then.get(key) != jsonable(wanted[key]):
            detail = f" ({then.get(shown)} then, {jsonable(wanted[shown])} now)" if shown else ""
            raise BlessingError(f"{path}: this run froze its {what} when it started{detail}; a rerun may not "
                                "change it: rerun with the same settings or choose another --work_dir")
    return frozen


def evaluations(path: str) -> list[dict[str, Any]]:
    """The record's evaluation entries, in order."""
    return [e for e in read(path) if e.get("event") == EVALUATION]
