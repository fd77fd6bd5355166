"""Tests for cass_tf.realdata: readers against direct reads, classical references on synthetic and real excerpts."""

import csv
import importlib.util
import pathlib
import runpy
import types

import numpy as np
import pytest

from cass_tf import cancellation, metrics, realdata
from cass_tf.config import load_config
from cass_tf.data import ecg

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
HAS_READERS = all(importlib.util.find_spec(m) is not None for m in ("pyedflib", "wfdb"))
needs_adfecgdb = pytest.mark.skipif(
    not (DATA / "ADFECGDB").is_dir() or not HAS_READERS,
    reason="needs ../shared/data/ADFECGDB and pyedflib + wfdb (pip install '.[biosignal]')")
needs_bidmc = pytest.mark.skipif(not (DATA / "BIDMC").is_dir(), reason="needs ../shared/data/BIDMC")
EXCERPT = slice(60_000, 80_000)  # 20 s of r01 at 1 kHz


# ---- classical reference on synthetic data (no real data needed) ----

def test_template_subtraction_uncovers_the_fetal_beats_of_synthetic_mixtures():
    config = load_config(REPO / "configs" / "paper" / "ecg.json", overrides=[
        "data.ecg.train_recordings=2", "data.ecg.test_recordings=1", "data.ecg.seconds=12", "data.cache_dir=null"])
    rate = config.data.sample_rate
    tolerance = round(metrics.MATCH_SECONDS * rate)
    for recording in ecg.load(config)["train"]:
        truth = recording.events["fetal"]
        classical = metrics.match_events(realdata.classical_fetal_peaks(recording.mixture, rate), truth, tolerance)
        raw = metrics.match_events(realdata.fetal_peaks(recording.mixture, rate), truth, tolerance)
        assert raw["f1"] < 0.4  # on the raw mixture the detector finds maternal beats
        assert classical["f1"] >= 0.85
        _, maternal = cancellation.template_subtraction(recording.mixture, rate)
        assert metrics.match_events(maternal, recording.events["maternal"], tolerance)["f1"] == 1.0


# ---- ADFECGDB ----

@pytest.fixture(scope="module")
def r01():
    return realdata.read_adfecgdb("r01", str(DATA))


@needs_adfecgdb
def test_adfecgdb_reader_equals_direct_reads(r01):
    import pyedflib
    import wfdb

    path = str(DATA / "ADFECGDB" / "r01.edf")
    with pyedflib.EdfReader(path) as reader:
        labels = reader.getSignalLabels()
        direct = {label: reader.readSignal(i) for i, label in enumerate(labels)}
    assert r01.rate == 1000 and r01.abdomen.shape == (4, 300_000)
    for k, name in enumerate(realdata.ABDOMINAL_CHANNELS):
        np.testing.assert_array_equal(r01.abdomen[k], direct[name])
    np.testing.assert_array_equal(r01.direct, direct["Direct_1"])
    np.testing.assert_array_equal(r01.fetal_peaks, wfdb.rdann(path, "qrs").sample)


@needs_adfecgdb
def test_adfecgdb_excerpt_detector_and_classical_reference(r01):
    reference = r01.fetal_peaks[(r01.fetal_peaks >= EXCERPT.start) & (r01.fetal_peaks < EXCERPT.stop)] - EXCERPT.start
    tolerance = round(metrics.MATCH_SECONDS * r01.rate)
    # the detector on the scalp electrode (the reference's own source) finds the reference beats
    assert metrics.match_events(realdata.fetal_peaks(r01.direct[EXCERPT], r01.rate), reference, tolerance)["f1"] >= 0.97
    channel = r01.abdomen[0][EXCERPT]
    raw = metrics.match_events(realdata.fetal_peaks(channel, r01.rate), reference, tolerance)
    classical = metrics.match_events(realdata.classical_fetal_peaks(channel, r01.rate), reference, tolerance)
    # Abdomen_1 is maternal-dominated: peaks on the raw channel are maternal beats. F1 >= 0.9 on ~43 beats means
    # the maternal beats were removed and at most ~4 fetal beats missed or added.
    assert raw["f1"] < 0.3
    assert classical["f1"] >= 0.9


def test_missing_record_is_a_clear_error(tmp_path):
    if HAS_READERS:
        with pytest.raises(FileNotFoundError, match="r99"):
            realdata.read_adfecgdb("r99", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="bidmc_99_Signals.csv"):
        realdata.read_bidmc("99", str(tmp_path))


# ---- BIDMC ----

def read_columns(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = [h.strip() for h in rows[0]]
    return {name: [row[i] for row in rows[1:]] for i, name in enumerate(header)}


@needs_bidmc
def test_bidmc_reader_equals_the_csv_files():
    record = realdata.read_bidmc("01", str(DATA))
    signals = read_columns(DATA / "BIDMC" / "bidmc_01_Signals.csv")
    numerics = read_columns(DATA / "BIDMC" / "bidmc_01_Numerics.csv")
    breaths = read_columns(DATA / "BIDMC" / "bidmc_01_Breaths.csv")
    assert record.rate == 125 and record.pleth.size == 60_001  # 8 min at 125 Hz, both ends included
    np.testing.assert_array_equal(record.pleth, [float(v) for v in signals["PLETH"]])
    np.testing.assert_array_equal(record.heart_rate, [float(v) for v in numerics["HR"]])
    assert np.isnan(record.pulse_rate).any()  # "NaN" cells stay missing, not zero
    for annotated, column in zip(record.breaths, breaths.values()):
        np.testing.assert_array_equal(annotated, [int(v) for v in column if v.strip()])


@needs_bidmc
def test_bidmc_excerpt_rates_by_hand():
    record = realdata.read_bidmc("01", str(DATA))
    window = 32 * record.rate
    breathing = metrics.windowed_event_rates(record.breaths[0], record.pleth.size, record.rate)
    inside = record.breaths[0][record.breaths[0] < window]  # annotator 1, the breaths cass_tf.bidmc scores against
    assert breathing[0] == pytest.approx(60 * (inside.size - 1) / ((inside[-1] - inside[0]) / record.rate))
    monitor = realdata.monitor_rates(record.heart_rate, record.pleth.size, record.rate)
    assert monitor[0] == pytest.approx(np.nanmean(record.heart_rate[:32]))
    # the pulse rate of the band-passed PPG (the classical reference) agrees with the monitor's ECG heart rate
    pulse = metrics.windowed_rates(metrics.bandpass(record.pleth, record.rate, metrics.PULSE_BAND), record.rate,
                                   metrics.PULSE_BAND)
    assert abs(pulse[0] - monitor[0]) < 2.0
    assert monitor.size == breathing.size == 15  # 480 s in whole 32-s windows


# ---- pipelines/validate_real.py: its blind-channel rules and summaries, by hand ----

@pytest.fixture(scope="module")
def validate_real():
    return types.SimpleNamespace(**runpy.run_path(str(REPO / "pipelines" / "validate_real.py")))


def test_blind_channel_rules_by_hand(validate_real):
    assert validate_real.rr_irregularity(np.array([0, 100, 200, 310])) == pytest.approx(5 / 100)  # |dRR| 0, 10
    assert validate_real.rr_irregularity(np.array([0, 100])) == np.inf
    outputs = {"fetal": np.array([3.0, 0.0]), "maternal": np.array([0.0, 1.0])}
    assert validate_real.fetal_share(outputs) == pytest.approx(9 / 10)


def test_channel_choices_by_hand(validate_real):
    """Share-blind takes the largest fetal share for all methods; each method's own blind its most regular RR."""
    def channel(share, irregular, f1):
        return {"share": share, "irregularity": dict(zip(("model", "raw", "classical"), irregular)),
                **{m: {"f1": f} for m, f in zip(("model", "raw", "classical"), f1)}}
    channels = [channel(0.1, (0.3, 0.1, 0.2), (0.9, 0.2, 0.5)),
                channel(0.4, (0.2, 0.5, np.inf), (0.6, 0.7, 0.8)),
                channel(0.2, (0.1, 0.4, 0.05), (0.7, 0.1, 0.95))]
    chosen = validate_real.channel_choices(channels)
    assert chosen["blind_channel"] == 1 and chosen["blind"] == {"model": 0.6, "raw": 0.7, "classical": 0.8}
    assert chosen["own_blind_channel"] == {"model": 2, "raw": 0, "classical": 2}
    assert chosen["own_blind"] == {"model": 0.7, "raw": 0.2, "classical": 0.95}
    assert chosen["best"] == {"model": 0.9, "raw": 0.7, "classical": 0.95}


def test_missing_data_folder_is_a_usage_error(validate_real, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        validate_real.main(["--data", str(tmp_path)])
    assert exit_info.value.code == 2 and "no ADFECGDB/ folder" in capsys.readouterr().err


def test_fetal_overlap_recall_by_hand():
    """pipelines/fetal_overlap.py: beats within 50 ms of a maternal peak count as overlapping; recalled within the
    50-ms match tolerance (rate 1000: 50 samples each)."""
    tool = types.SimpleNamespace(**runpy.run_path(str(REPO / "pipelines" / "fetal_overlap.py")))
    fetal = np.array([1000, 1500, 2000, 2500])
    maternal = np.array([1040, 2600])  # 40 ms from beat 1000 (overlapping), 100 ms from 2500 (apart)
    detected = np.array([1049, 1560, 2010])  # 1000 and 2000 recalled; 1500 missed by 60 ms; 2500 missed
    assert tool.recall_by_overlap(detected, fetal, maternal, 1000) == {
        "overlapping": {"recalled": 1, "beats": 1}, "apart": {"recalled": 1, "beats": 3}}
    assert tool.recall_by_overlap(np.array([], int), fetal, np.array([], int), 1000) == {
        "overlapping": {"recalled": 0, "beats": 0}, "apart": {"recalled": 0, "beats": 4}}


@needs_adfecgdb
def test_adfecgdb_excerpt_multilead_reference(r01):
    """All 4 leads of the excerpt together, no reference in any choice: the fused fetal peaks match the reference."""
    reference = r01.fetal_peaks[(r01.fetal_peaks >= EXCERPT.start) & (r01.fetal_peaks < EXCERPT.stop)] - EXCERPT.start
    fused = realdata.multilead_fetal(r01.abdomen[:, EXCERPT], r01.rate)
    np.testing.assert_allclose(fused.signal, fused.weights @ cancellation.template_subtraction_leads(
        r01.abdomen[:, EXCERPT], r01.rate)[0])
    assert metrics.match_events(fused.peaks, reference, round(metrics.MATCH_SECONDS * r01.rate))["f1"] >= 0.95
