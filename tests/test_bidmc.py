"""Tests for cass_tf.bidmc: summaries by hand, the push rule on hand-made scores, validate_real's model labels."""

import math
import pathlib
import runpy
import types

import numpy as np
import pytest

from cass_tf import bidmc, metrics

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def validate_real():
    return types.SimpleNamespace(**runpy.run_path(str(REPO / "pipelines" / "validate_real.py")))


def record(name, reference, sources):
    """A score_record-shaped dict for breathing and pulse alike: sources {label: {estimator: (mae, rates)}}."""
    result = {"record": name}
    for quantity in bidmc.QUANTITIES:
        result[f"{quantity}/reference"] = reference
        result[quantity] = {s: {e: {"mae": mae, "rates": rates} for e, (mae, rates) in per.items()}
                            for s, per in sources.items()}
    return result


def test_summary_by_hand():
    per = [record("a", [10.0, 12.0], {"m": {"spectral": (0.5, [11.0, 12.0])}}),
           record("b", [20.0, math.nan], {"m": {"spectral": (6.0, [14.0, 30.0])}}),
           record("c", [math.nan, math.nan], {"m": {"spectral": (math.nan, [1.0, 2.0])}})]
    got = bidmc.summary(per)["breathing"]["m"]["spectral"]
    # record MAEs 0.5, 6 (c has no reference window: left out); pooled windows |1|, |0|, |6|
    assert got == {"record_mean": 3.25, "record_median": 3.25, "pooled_mae": 7 / 3, "pooled_median": 1.0}


def scores(values):
    """A summary-shaped dict: values {source: {estimator: record_mean}}, the same for breathing and pulse."""
    return {q: {s: {e: {"record_mean": v} for e, v in per.items()} for s, per in values.items()}
            for q in bidmc.QUANTITIES}


ESTIMATORS = tuple(metrics.RATE_ESTIMATORS)


def test_push_rule_passes_a_candidate_no_worse_anywhere():
    values = {"new": dict.fromkeys(ESTIMATORS, 1.0), bidmc.BANDPASS: dict.fromkeys(ESTIMATORS, 1.5),
              "ppg/2": dict.fromkeys(ESTIMATORS, 1.0)}  # a tie is not worse
    assert bidmc.push_rule(scores(values), "new", [bidmc.BANDPASS, "ppg/2"]) == []


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_push_rule_refuses_a_candidate_worse_under_one_estimator(estimator):
    values = {"new": {**dict.fromkeys(ESTIMATORS, 1.0), estimator: 2.1},
              bidmc.BANDPASS: dict.fromkeys(ESTIMATORS, 2.0), "ppg/2": dict.fromkeys(ESTIMATORS, 3.0)}
    reasons = bidmc.push_rule(scores(values), "new", [bidmc.BANDPASS, "ppg/2"])
    # worse than the band-pass (2.1 > 2.0) under that estimator, for breathing and for pulse; not worse than ppg/2
    assert len(reasons) == 2 and all(estimator in r and bidmc.BANDPASS in r for r in reasons)


def test_push_rule_fails_closed_on_missing_or_nan_scores():
    values = {"new": {**dict.fromkeys(ESTIMATORS, 1.0), "ar": math.nan}, bidmc.BANDPASS: dict.fromkeys(ESTIMATORS, 2.0)}
    reasons = bidmc.push_rule(scores(values), "new", [bidmc.BANDPASS, "ppg/2"])
    assert any("ar" in r and "not finite" in r for r in reasons)
    assert sum("ppg/2" in r for r in reasons) == 2 * len(ESTIMATORS)  # no ppg/2 scores at all


def test_references_use_annotator_1_and_the_median_monitor_rate():
    rate, seconds = 10, 80
    breaths = (np.arange(0, seconds * rate, 30), np.arange(0, seconds * rate, 20))  # 20 and 30 per minute
    hr = np.full(seconds, 60.0)
    hr[:10] = 200.0  # an outlier stretch: the median ignores it, the mean would not
    pleth = np.zeros(seconds * rate)
    ppg = bidmc.realdata.PPGRecord("x", rate, pleth, breaths, hr, hr)
    refs = bidmc.references(ppg)
    np.testing.assert_allclose(refs["breathing"], [20.0] * 4)  # windows 0-32, 16-48, 32-64, 48-80 s
    np.testing.assert_allclose(refs["pulse"], [60.0] * 4)


def test_separated_feeds_the_pleth_as_recorded_or_minus_its_mean(monkeypatch):
    fed = []
    monkeypatch.setattr(bidmc, "separate", lambda x, model, sample_rate: fed.append((x, sample_rate)) or {"heart": x})
    pleth = np.array([1.0, 2.0, 3.0, 6.0])
    ppg = bidmc.realdata.PPGRecord("x", 4, pleth, (np.array([0]),) * 2, np.zeros(1), np.zeros(1))
    np.testing.assert_array_equal(bidmc.separated("model", ppg)["heart"], pleth)
    np.testing.assert_array_equal(bidmc.separated("model", ppg, bidmc.MEAN_REMOVED)["heart"], pleth - 3.0)
    assert [rate for _, rate in fed] == [4, 4] and fed[0][0].dtype == np.float32
    with pytest.raises(ValueError, match="offset must be one of"):
        bidmc.separated("model", ppg, "median removed")


def test_offset_section_sets_each_mean_beside_the_other(validate_real):
    """Mean of record MAEs as recorded -> mean removed, per quantity and estimator (record MAEs 1, 3 -> mean 2)."""
    def scores(a, b):
        per = {e: (a, [1.0]) for e in metrics.RATE_ESTIMATORS}
        return [record("r1", [1.0], {"m": per}), record("r2", [1.0], {"m": {e: (b, [1.0]) for e in per}})]
    lines = validate_real.offset_markdown(scores(1.0, 3.0), scores(4.0, 6.0))
    row = next(line for line in lines if line.startswith("| m |"))
    assert row == "| m | " + " | ".join(["2.000 -> 5.000"] * 2 * len(metrics.RATE_ESTIMATORS)) + " |"


def test_validate_real_labels(validate_real, tmp_path):
    for v in (1, 2, 10):
        (tmp_path / "ppg" / str(v)).mkdir(parents=True)
    assert validate_real.ppg_models([], str(tmp_path / "ppg")) == {
        "ppg/1": str(tmp_path / "ppg" / "1"), "ppg/2": str(tmp_path / "ppg" / "2"), "ppg/10": str(tmp_path / "ppg" / "10")}
    assert validate_real.ppg_models(["new=runs/x/serving_model", "saved_models/ppg/2"]) == {
        "new": "runs/x/serving_model", "ppg/2": "saved_models/ppg/2"}
    with pytest.raises(ValueError, match="given twice or reserved"):
        validate_real.ppg_models([f"{bidmc.BANDPASS}=a"])


def test_without_bidmc_a_ppg_candidate_is_refused(tmp_path):
    assert bidmc.check(str(tmp_path), "runs/x", None) == ({}, [
        f"BIDMC not found under {str(tmp_path)!r}: a PPG model is not pushed without its BIDMC check "
        "(--real_data names the folder holding BIDMC/)"])


def test_the_pipeline_applies_the_rule_to_ppg_models_only_and_bless_takes_its_reasons(tmp_path):
    from cass_tf import tfx
    from cass_tf.config import load_config

    pipeline = types.SimpleNamespace(**runpy.run_path(str(REPO / "pipelines" / "train_export.py")))
    assert pipeline.real_check(load_config(REPO / "configs" / "ecg.json"), "x", None, str(tmp_path)) == (None, [])
    real, reasons = pipeline.real_check(load_config(REPO / "configs" / "ppg.json"), "x", None, str(tmp_path))
    assert real == {} and len(reasons) == 1 and "BIDMC not found" in reasons[0]
    scores = {"heart": {"l2": 0.1}, "respiratory": {"l2": 0.1}}
    assert tfx.bless(scores, {"l2": 0.5}, None, str(tmp_path)) == (True, [])
    assert tfx.bless(scores, {"l2": 0.5}, None, str(tmp_path), also=reasons) == (False, reasons)
    assert (tmp_path / tfx.NOT_BLESSED).exists() and not (tmp_path / tfx.BLESSED).exists()


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_ppg_rate_traces_of_a_separated_ppg(estimator):
    from cass_tf import events

    rate, seconds = 25, 80
    t = np.arange(seconds * rate) / rate
    parts = {"heart": np.sin(2 * np.pi * 1.2 * t), "respiratory": np.sin(2 * np.pi * 0.25 * t + 1.0)}
    traces = events.ppg_rates(parts, rate, estimator)
    for quantity, expected in (("pulse", 72.0), ("breathing", 15.0)):
        centres, values = traces[quantity]
        np.testing.assert_allclose(centres, [16.0, 32.0, 48.0, 64.0])  # 32-s windows every 16 s
        np.testing.assert_allclose(values, expected, atol=0.6)
    with pytest.raises(ValueError, match="estimator must be one of"):
        events.ppg_rates(parts, rate, "fft")
    with pytest.raises(ValueError, match="no PPG component"):
        events.ppg_rates({"fetal": t}, rate)


def test_validate_real_ecg_only_wants_a_json_out_and_only_adfecgdb(validate_real, tmp_path, capsys):
    """--ecg_only writes JSON, so a page path (the default) is refused; it needs ADFECGDB/ but not BIDMC/."""
    with pytest.raises(SystemExit):
        validate_real.main(["--ecg_only", "--data", str(tmp_path)])
    assert "--out: with --ecg_only, the JSON file to write" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        validate_real.main(["--ecg_only", "--data", str(tmp_path), "--out", str(tmp_path / "x.json")])
    assert "no ADFECGDB/ folder" in capsys.readouterr().err
    (tmp_path / "ADFECGDB").mkdir()
    with pytest.raises(SystemExit):  # past the folder checks, a missing record file is one line
        validate_real.main(["--ecg_only", "--data", str(tmp_path), "--out", str(tmp_path / "x.json"),
                            "--ecg_model", "saved_models/ecg/2"])
    assert "ADFECGDB record 'r01': no file" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
