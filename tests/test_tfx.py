"""TFX conventions: run_fn, blessing, pushing, and pipelines/train_export.py end to end on a tiny PPG model."""

import json
import os
import sys

import numpy as np
import pytest

import cass_tf
from cass_tf import atomic, bidmc, blessing, tfx
from cass_tf.config import ConfigError, load_config
from cass_tf.data.pipeline import make_datasets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "pipelines"))

import score_versions  # noqa: E402 (pipelines/ is on sys.path only from here)
import train_export  # noqa: E402

TINY = ["data.ppg.train_recordings=2", "data.ppg.test_recordings=1", "data.ppg.seconds=30", "data.cache_dir=null",
        "model.width=2", "patch.frequency_bins=16", "patch.frames=16", "train.batch_size=4",
        "train.steps_per_epoch=3"]
CONFIG = os.path.join(REPO, "configs", "paper", "ppg.json")


@pytest.fixture(autouse=True)
def bidmc_rule_passes(monkeypatch):
    """The pipelines here train tiny PPG models, which the BIDMC push rule would refuse (tests/test_bidmc.py tests
    the rule and its wiring)."""
    monkeypatch.setattr(bidmc, "check", lambda root, candidate, pushed: ({}, []))


def test_bless_needs_every_component_below_threshold(tmp_path):
    blessed, reasons = tfx.bless({"heart": {"l2": 0.2}, "respiratory": {"l2": 0.5}}, {"l2": 0.4}, None,
                                 str(tmp_path))
    assert not blessed and reasons == ["respiratory: l2 0.5 >= threshold 0.4"]
    assert os.listdir(tmp_path) == ["NOT_BLESSED"]
    assert os.path.getsize(tmp_path / "NOT_BLESSED") == 0


def test_bless_compares_with_the_pushed_model(tmp_path):
    pushed = {"a": {"l2": 0.35}, "b": {"l2": 0.3}}
    assert tfx.bless({"a": {"l2": 0.3}, "b": {"l2": 0.3}}, {"l2": 0.4}, pushed, str(tmp_path)) == (True, [])
    assert sorted(os.listdir(tmp_path)) == ["BLESSED"]  # a rerun replaces the other verdict
    blessed, reasons = tfx.bless({"a": {"l2": 0.3}, "b": {"l2": 0.31}}, {"l2": 0.4}, pushed, str(tmp_path))
    assert not blessed and reasons == ["b: l2 0.31 worse than the pushed model's 0.3"]
    assert sorted(os.listdir(tmp_path)) == ["NOT_BLESSED"]


def test_bless_bounds_event_scores_in_their_direction(tmp_path):
    candidate = {"maternal": {"l2": 0.2, "qrs_f1": 0.99, "qrs_ppv": 0.5}, "fetal": {"l2": 0.4, "qrs_f1": 0.85}}
    bounds = {"l2": 0.5, "qrs_f1": 0.9}
    # F1 must reach its bound (higher is better); unbounded scores (qrs_ppv) never block
    assert tfx.bless(candidate, bounds, None, str(tmp_path)) == (False, ["fetal: qrs_f1 0.85 < threshold 0.9"])
    pushed = {"maternal": {"l2": 0.1, "qrs_f1": 0.995, "qrs_ppv": 0.9}, "fetal": {"l2": 0.9, "qrs_f1": 0.5}}
    assert tfx.bless(candidate, {"l2": 0.5, "qrs_f1": 0.8}, pushed, str(tmp_path))[1] == [
        "maternal: l2 0.2 worse than the pushed model's 0.1", "maternal: qrs_f1 0.99 worse than the pushed model's 0.995"]
    # rate errors: lower is better
    rates = {"heart": {"l2": 0.1, "rate_error": 0.5}, "respiratory": {"l2": 0.1, "rate_error": 2.5}}
    assert tfx.bless(rates, {"l2": 1.0, "rate_error": 2.0}, None, str(tmp_path))[1] == [
        "respiratory: rate_error 2.5 >= threshold 2"]



@pytest.mark.parametrize("candidate, reason", [
    ({"maternal": {"l2": 0.2, "qrs_f1": 0.99}, "fetal": {"l2": 0.4}}, "fetal: qrs_f1 missing"),
    ({"maternal": {"l2": 0.2, "qrs_f1": 0.99}, "fetal": {"l2": 0.4, "qrs_f1": float("nan")}}, "fetal: qrs_f1 is nan"),
    ({"maternal": {"l2": float("inf"), "qrs_f1": 0.99}, "fetal": {"l2": 0.4, "qrs_f1": 0.95}}, "maternal: l2 is inf"),
    ({"maternal": {"qrs_f1": 0.99}, "fetal": {"l2": 0.4, "qrs_f1": 0.95}}, "maternal: l2 missing"),
    ({}, "no scores"),
])
def test_bless_fails_closed_on_a_missing_or_non_finite_bounded_score(tmp_path, candidate, reason):
    blessed, reasons = tfx.bless(candidate, {"l2": 0.5, "qrs_f1": 0.9}, None, str(tmp_path))
    assert not blessed and len(reasons) == 1 and reasons[0].startswith(reason)
    assert os.listdir(tmp_path) == ["NOT_BLESSED"]



def test_a_score_undefined_on_every_recording_is_kept_as_nan_and_refused(tmp_path):
    """No true events: the rate error is undefined on every recording. recording_scores keeps it as NaN (it used
    to drop it, and blessing then passed the bound unchecked); blessing refuses it."""
    from cass_tf.data import Recording
    from cass_tf.evaluate import recording_scores

    x = np.random.default_rng(0).normal(size=2000).astype(np.float32)
    none = np.array([], dtype=np.int64)
    recording = Recording("r", x, {"heart": x, "respiratory": 0 * x}, {"heart": none, "respiratory": none})
    scores = recording_scores(lambda m: {"heart": m, "respiratory": 0 * m}, [recording], ["heart", "respiratory"], 100)
    assert scores["heart"]["l2"] == 0.0 and np.isnan(scores["heart"]["rate_error"])
    blessed, reasons = tfx.bless(scores, {"l2": 0.5, "rate_error": 2.0}, None, str(tmp_path))
    assert not blessed and reasons[:2] == ["heart: rate_error is nan (a bounded score must be finite)",
                                           "respiratory: rate_error is nan (a bounded score must be finite)"]

def test_bless_refuses_a_bound_no_component_has(tmp_path):
    """A QRS bound on PPG components bounds nothing: refused rather than passed. Unbounded components (a Bach10
    instrument has no event score) are not held to an event bound that applies to other components."""
    blessed, reasons = tfx.bless({"heart": {"l2": 0.1}, "respiratory": {"l2": 0.1}}, {"l2": 0.5, "qrs_f1": 0.9},
                                 None, str(tmp_path))
    assert not blessed and reasons == ["qrs_f1: bounded, but no component (heart, respiratory) has that score"]
    mixed = {"fetal": {"l2": 0.1, "qrs_f1": 0.95}, "bassoon": {"l2": 0.1}}
    assert tfx.bless(mixed, {"l2": 0.5, "qrs_f1": 0.9}, None, str(tmp_path)) == (True, [])

def fake_saved_model(path):
    os.makedirs(os.path.join(path, "variables"))
    for name, text in (("saved_model.pb", "graph"), ("variables/variables.index", "index"),
                       ("variables/variables.data-00000-of-00001", "data")):
        with open(os.path.join(path, name), "w") as f:
            f.write(text)


def test_push_writes_versions_complete_in_one_rename(tmp_path, monkeypatch):
    source, base = str(tmp_path / "model"), str(tmp_path / "serving" / "ppg")
    fake_saved_model(source)
    complete_when_renamed = []
    real_rename = os.rename

    def spy(src, dst):
        if os.path.basename(dst).isdigit():  # the version appears: everything must be in it already
            assert not os.path.exists(dst)
            complete_when_renamed.append(sorted(os.listdir(src)) + sorted(os.listdir(os.path.join(src, "variables"))))
        real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", spy)
    assert tfx.push(source, base) == os.path.join(base, "1")
    assert tfx.push(source, base) == os.path.join(base, "2")
    expected = ["saved_model.pb", "variables", "variables.data-00000-of-00001", "variables.index"]
    assert complete_when_renamed == [expected] * 2
    with open(os.path.join(base, "2", "saved_model.pb")) as f:
        assert f.read() == "graph"
    assert sorted(os.listdir(base)) == ["1", "2", "models.config"]  # no temporaries left
    assert 'base_path: "/models/ppg"' in open(os.path.join(base, "models.config")).read()


def test_push_skips_an_existing_version(tmp_path):
    source, base = str(tmp_path / "model"), str(tmp_path / "base")
    fake_saved_model(source)
    tfx.push(source, base, version=3)
    with open(os.path.join(source, "saved_model.pb"), "w") as f:
        f.write("new graph")
    assert tfx.push(source, base, version=3) is None
    with open(os.path.join(base, "3", "saved_model.pb")) as f:
        assert f.read() == "graph"


def test_push_without_a_saved_model_fails(tmp_path):
    with pytest.raises(FileNotFoundError, match="saved_model.pb"):
        tfx.push(str(tmp_path), str(tmp_path / "base"))


def test_trainer_config_from_fn_args(tmp_path):
    args = tfx.FnArgs(serving_model_dir=str(tmp_path / "serving"), model_run_dir=str(tmp_path / "run"),
                      custom_config={"config": CONFIG, "overrides": TINY}, train_steps=7)
    config = tfx.trainer_config(args)
    assert config.output.model_dir == str(tmp_path / "run")
    assert config.train.epochs == 3  # ceil(7 / 3 steps per epoch)
    with pytest.raises(ValueError, match="custom_config"):
        tfx.trainer_config(tfx.FnArgs(str(tmp_path), str(tmp_path), {}))


@pytest.mark.slow  # trains or runs a real model for tens of seconds
def test_pipeline_freezes_bounds_appends_every_verdict_and_pushes_its_record(tmp_path, capsys):
    work, push_dir = str(tmp_path / "work"), str(tmp_path / "saved_models" / "ppg")
    common = ["--config", CONFIG, "--work_dir", work, "--push_dir", push_dir, "--train_steps", "6"]
    sets = [arg for item in TINY + ["output.bless_threshold=10"] for arg in ("--set", item)]
    assert train_export.main(common + sets) == 0
    serving = os.path.join(work, "Trainer", "serving_model")
    record = os.path.join(work, "Trainer", "model_run", "blessing_record.jsonl")
    assert os.path.exists(os.path.join(serving, "saved_model.pb"))
    assert os.path.exists(os.path.join(work, "Trainer", "model_run", "checkpoints", "checkpoint"))
    assert os.path.exists(os.path.join(work, "Evaluator", "BLESSED"))
    assert sorted(os.listdir(push_dir)) == ["1", "models.config"]
    assert f"resting on {record}, line 2" in capsys.readouterr().out
    entries = blessing.read(record)
    assert [e["event"] for e in entries] == ["frozen", "evaluation", "push"]
    assert entries[0]["bounds"] == {"l2": 10}
    assert entries[0]["blessing_set"]["split"] == "test" and entries[2]["rests_on"] == 2
    first_two = open(record).read().splitlines()[:2]
    assert open(os.path.join(push_dir, "1", "assets", "blessing_record.jsonl")).read().splitlines() == first_two

    # A rerun that changes a bound is refused before anything trains or is written: one error line.
    before = open(record).read()
    stricter = [arg for item in TINY + ["output.bless_threshold=0.01"] for arg in ("--set", item)]
    assert train_export.main(common + stricter) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "froze its bounds" in err[-1] and "Traceback" not in "".join(err)
    with pytest.raises(blessing.BlessingError, match="froze its blessing set"):
        train_export.run(CONFIG, TINY + ["output.bless_threshold=10"], work, push_dir, 6, None, fresh=2)
    assert open(record).read() == before

    # The same settings again: nothing left to train, so the candidate IS the pushed version 1 and scores exactly
    # the same through the pushed copy; the second evaluation is appended after the first, never replacing it.
    result = train_export.run(CONFIG, TINY + ["output.bless_threshold=10"], work, push_dir, 6, None)
    assert result["pushed_version"] == os.path.join(push_dir, "1")
    assert result["pushed"] == result["candidate"] and result["blessed"] and result["evaluation"] == 4
    assert open(record).read().startswith(before)
    assert [e["event"] for e in blessing.read(record)] == ["frozen", "evaluation", "push", "evaluation", "push"]
    carried = [json.loads(line) for line in open(os.path.join(push_dir, "2", "assets", "blessing_record.jsonl"))]
    assert [e["event"] for e in carried] == ["frozen", "evaluation", "push", "evaluation"]  # every earlier verdict
    # pipelines/score_versions.py (what docs/raw/*_blessing.json come from) gives the Evaluator's numbers again
    versions = [os.path.join(push_dir, "2"), os.path.join(push_dir, "1")]
    rescored = score_versions.score_versions(versions, 0)
    assert rescored["recordings"] == result["recordings"] == "the 1 test recordings"
    assert rescored["scores"] == {versions[0]: result["candidate"], versions[1]: result["pushed"]}
    # the Evaluator's scores are the served model's on the whole test recordings, recomputed here with NumPy
    config = load_config(CONFIG, TINY)
    recordings = make_datasets(config, train=False).recordings["test"]
    for name in config.components:
        errors = [np.linalg.norm(cass_tf.separate(r.mixture, serving)[name] - r.components[name])
                  / np.linalg.norm(r.components[name]) for r in recordings]
        assert result["candidate"][name]["l2"] == pytest.approx(np.mean(errors), rel=1e-4)
        assert carried[-1]["candidate"][name]["l2"] == pytest.approx(np.mean(errors), rel=1e-4)
        assert np.isfinite(result["candidate"][name]["rate_error"])


@pytest.mark.slow  # trains or runs a real model for tens of seconds
def test_a_refused_candidate_is_recorded_and_not_pushed(tmp_path):
    work, push_dir = str(tmp_path / "work"), str(tmp_path / "push")
    result = train_export.run(CONFIG, TINY + ["output.bless_threshold=0.01"], work, push_dir, 3, None)
    assert not result["blessed"] and all("threshold 0.01" in r for r in result["reasons"])
    assert result["pushed_to"] is None and not os.path.exists(push_dir)
    assert os.listdir(os.path.join(work, "Evaluator")) == ["NOT_BLESSED"]
    (entry,) = blessing.evaluations(result["record"])
    assert entry["blessed"] is False and entry["reasons"] == result["reasons"]
    assert entry["model"] == {"epoch": 1, "step": 3}


def test_fresh_evaluation_recordings_are_new_draws(tmp_path):
    config = load_config(CONFIG, TINY + ["data.ppg.seconds=20"])
    described, fresh = train_export.evaluation_recordings(config, 2)
    assert described == "2 fresh recordings (data seed 1)" and len(fresh) == 2
    splits = make_datasets(config).recordings
    seen = [r.mixture for split in ("train", "test") for r in splits[split]]
    assert all(f.mixture.shape == seen[0].shape for f in fresh)
    assert not any(np.allclose(f.mixture, s) for f in fresh for s in seen)  # neither trained nor tested on
    described, default = train_export.evaluation_recordings(config)
    assert described == "the 1 test recordings" and np.array_equal(default[0].mixture, splits["test"][0].mixture)
    with pytest.raises(ConfigError, match="--fresh: Bach10"):
        train_export.evaluation_recordings(load_config(os.path.join(REPO, "configs", "paper", "bach10.json")), 2)


def test_fresh_ecg_blessing_sets_draw_no_one_lead_training_recordings():
    """A one-lead model of both generators (data.ecg.one_lead_recordings): its fresh blessing set draws only the
    test recordings of the multi-lead generator, not thousands of one-lead training recordings it never scores."""
    config = load_config(os.path.join(REPO, "configs", "ecg_leads.json"),
                         ["model.multilead=false", "train.leads_kept=null", "data.ecg.one_lead_recordings=100"])
    drawn, frozen = train_export.blessing_set(config, 2)
    assert drawn.data.ecg.one_lead_recordings == 0 and frozen["data"]["ecg"]["one_lead_recordings"] == 0
    assert (drawn.data.ecg.leads, drawn.data.ecg.test_recordings, drawn.data.ecg.train_recordings) == (4, 2, 1)


def test_an_impossible_fresh_is_refused_before_training(tmp_path):
    work = tmp_path / "work"
    bach10 = os.path.join(REPO, "configs", "paper", "bach10.json")
    for config, sets, fresh, message in ((bach10, [], 2, "--fresh: Bach10"), (CONFIG, TINY, -1, "must be >= 0")):
        with pytest.raises(ConfigError, match=message):
            train_export.run(config, sets, str(work), str(tmp_path / "push"), None, None, fresh)
        assert not work.exists()


def test_a_run_started_without_a_blessing_record_is_refused(tmp_path):
    """A run directory whose bounds were never frozen (started before the record existed) cannot be blessed from:
    refused before anything trains, and nothing is written into it."""
    run_dir = tmp_path / "work" / "Trainer" / "model_run"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(load_config(CONFIG, TINY).to_json())
    with pytest.raises(blessing.BlessingError, match="without a blessing record"):
        train_export.run(CONFIG, TINY, str(tmp_path / "work"), str(tmp_path / "push"), 3, None)
    assert sorted(os.listdir(run_dir)) == ["config.json"]
