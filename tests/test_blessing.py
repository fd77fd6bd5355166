"""The blessing record (cass_tf.blessing): frozen bounds and blessing set, append-only entries, hashes."""

import json

import numpy as np
import pytest

from cass_tf import blessing
from cass_tf.config import load_config

from test_tfx import CONFIG, TINY

SET = {"split": "fresh", "count": 4, "data_seed": 1}


def test_freeze_writes_once_and_refuses_changed_bounds_set_or_config(tmp_path):
    path = str(tmp_path / "record.jsonl")
    config = load_config(CONFIG, TINY + ["output.bless_threshold=0.5"])
    frozen = blessing.freeze(path, config, SET)
    assert frozen["bounds"] == {"l2": 0.5} and frozen["blessing_set"] == SET
    assert frozen["blessing_set_sha256"] == blessing.sha256_json(dict(SET))
    text = open(path).read()
    assert blessing.freeze(path, config.replace(["train.epochs=7", "output.export_dir=x"]), SET) == frozen
    refusals = [(config.replace(["output.bless_threshold=1.5"]), SET, "froze its bounds"),
                (config, {**SET, "count": 64}, "froze its blessing set"),
                (config.replace(["model.width=4"]), SET, "froze its config")]
    for changed, blessing_set, message in refusals:
        with pytest.raises(blessing.BlessingError, match=message):
            blessing.freeze(path, changed, blessing_set)
    assert open(path).read() == text  # nothing appended by a refused rerun


def test_a_field_added_since_the_run_froze_is_no_change_at_its_default(tmp_path):
    """A record frozen by older code lacks today's newest fields: the rerun of the same run is accepted while the
    new field is at its default (what the run trained with), refused when it is not."""
    path = str(tmp_path / "record.jsonl")
    config = load_config(CONFIG, TINY)
    frozen = blessing.freeze(path, config, SET)
    assert blessing.completed(frozen["config"]) == config.to_dict()
    ppg = {k: v for k, v in frozen["config"]["data"]["ppg"].items() if k != "ectopic_rate"}
    older = {**frozen, "config": {**frozen["config"], "data": {**frozen["config"]["data"], "ppg": ppg}}}
    older["config_sha256"] = blessing.sha256_json({k: v for k, v in blessing.flatten(older["config"]).items()
                                                   if k not in blessing.RESUMABLE_FIELDS})
    assert older["config_sha256"] != frozen["config_sha256"]  # what the code of the day hashed
    with open(path, "w") as f:
        f.write(json.dumps(older) + "\n")
    assert blessing.freeze(path, config, SET) == older
    with pytest.raises(blessing.BlessingError, match="froze its config"):
        blessing.freeze(path, config.replace(["data.ppg.ectopic_rate=1"]), SET)


def test_entries_are_appended_in_order_and_non_finite_scores_written_as_strings(tmp_path):
    path = str(tmp_path / "record.jsonl")
    assert blessing.append(path, blessing.EVALUATION, {"candidate": {"fetal": {"qrs_f1": float("nan")}}}) == 1
    first = open(path).read()
    assert blessing.append(path, blessing.EVALUATION, {"candidate": {"fetal": {"qrs_f1": 0.9}}}) == 2
    assert open(path).read().startswith(first)
    lines = [json.loads(line) for line in open(path)]
    assert [e["candidate"]["fetal"]["qrs_f1"] for e in lines] == ["nan", 0.9]
    assert len(blessing.evaluations(path)) == 2


def test_config_hash_ignores_only_the_resumable_fields():
    config = load_config(CONFIG, TINY)
    same = config.replace(["train.epochs=99", "output.model_dir=a", "output.export_dir=b"])
    assert blessing.config_sha256(same) == blessing.config_sha256(config)
    for change in ("output.bless_threshold=0.3", "seed=5", "data.ppg.test_recordings=2"):
        assert blessing.config_sha256(config.replace([change])) != blessing.config_sha256(config)


def test_recordings_hash_changes_with_any_sample():
    a = [np.zeros(8, np.float32), np.ones(4, np.float32)]
    b = [np.zeros(8, np.float32), np.ones(4, np.float32)]
    assert blessing.recordings_sha256(a) == blessing.recordings_sha256(b)
    b[1][2] = 1.0001
    assert blessing.recordings_sha256(a) != blessing.recordings_sha256(b)
