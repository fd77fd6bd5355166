"""Biosignal files through separation (cass_tf.records, cass_tf.events, cass_tf.biosignal, `cass-tf separate`):
round trips per format, events against known beats, hostile files, and the real ADFECGDB / BIDMC commands."""

import datetime
import json
import os
import pathlib

import numpy as np
import pytest

from conftest import REPO, RATE, signal

pyedflib = pytest.importorskip("pyedflib")
wfdb = pytest.importorskip("wfdb")

import cass_tf  # noqa: E402
from cass_tf import biosignal, cli, contract, events, fusion, metrics, realdata, records  # noqa: E402

DATA = REPO.parent / "shared" / "data"
START = datetime.datetime(2021, 3, 4, 5, 6, 7)
SECONDS = 40  # longer than one 32-s rate window of the PPG events
PHYSICAL = 10.0  # the EDF test files' physical range, +-


def ppg_channels(samples=SECONDS * RATE):
    """Two channels: a PPG-like PLETH and another lead (not the PPG model's default)."""
    return {"PLETH": signal(samples, seed=1).astype(np.float64) + 0.3, "II": signal(samples, seed=2) * 0.5}


def write_edf(path, channels, bdf=False, annotations=((1.5, "event A"), (20.25, "event B"))):
    """An EDF+ (or BDF+) file of `channels` at RATE with START, units, +-PHYSICAL and annotations; returns its path."""
    kind = pyedflib.FILETYPE_BDFPLUS if bdf else pyedflib.FILETYPE_EDFPLUS
    digital = 8388607 if bdf else 32767
    writer = pyedflib.EdfWriter(str(path), len(channels), kind)
    writer.setSignalHeaders([{"label": n, "dimension": "mV", "sample_frequency": RATE, "physical_min": -PHYSICAL,
                              "physical_max": PHYSICAL, "digital_min": -digital - 1, "digital_max": digital,
                              "transducer": "", "prefilter": ""} for n in channels])
    writer.setStartdatetime(START)
    writer.writeSamples([np.asarray(x) for x in channels.values()])
    for onset, text in annotations:
        writer.writeAnnotation(onset, -1, text)
    writer.close()
    return str(path)


def write_input(folder, kind, channels):
    """An input file of `kind` holding `channels`; returns (path, the CLI's extra arguments)."""
    folder = pathlib.Path(folder)
    if kind in ("edf", "bdf"):
        return write_edf(folder / f"rec.{kind}", channels, bdf=kind == "bdf"), []
    if kind == "wfdb":
        wfdb.wrsamp("rec", fs=RATE, units=["mV"] * len(channels), sig_name=list(channels),
                    p_signal=np.stack(list(channels.values()), axis=1), fmt=["16"] * len(channels),
                    base_time=START.time(), base_date=START.date(), write_dir=str(folder))
        wfdb.wrann("rec", "atr", np.array([96, 1000]), symbol=["N", "V"], fs=RATE, write_dir=str(folder))
        return str(folder / "rec.hea"), []
    if kind == "csv":
        rows = ["Time [s]," + ",".join(f"{n} [mV]" for n in channels)]
        values = np.stack(list(channels.values()), axis=1)
        rows += [f"{2.5 + i / RATE!r}," + ",".join(repr(float(v)) for v in row) for i, row in enumerate(values)]
        (folder / "rec.csv").write_text("\n".join(rows) + "\n")
        return str(folder / "rec.csv"), []
    np.save(folder / "rec.npy", np.stack(list(channels.values())).astype(np.float32))
    return str(folder / "rec.npy"), ["--sample_rate", str(RATE), "--channels", "0"]


def quantum(kind, record, k):
    """The largest error the format's storage adds to channel k of a written record."""
    if kind in ("edf", "bdf"):
        return 2 * PHYSICAL / (2 ** (24 if kind == "bdf" else 16) - 1)
    if kind == "wfdb":
        return float(np.ptp(record.signals[k])) / (2 ** 16 - 2) + 1e-9
    return 1e-6  # CSV (repr of float64) and NPY (float32) of float32 outputs


@pytest.mark.parametrize("kind", ["edf", "bdf", "wfdb", "csv", "npy"])
def test_round_trip(tiny_separator, tmp_path, kind):
    """read -> separate -> write -> read keeps the samples (within the format's quantisation), rate, labels, units,
    start time and annotations; the samples are the (PPG) model's outputs on the channel as recorded."""
    from cass_tf.separation import separate

    channels = ppg_channels()
    path, extra = write_input(tmp_path, kind, channels)
    out = tmp_path / "out"
    assert cli.main(["separate", path, "--model", str(tiny_separator.source), "--out_dir", str(out), "--quiet",
                     "--events", *extra]) == 0
    source = records.read_record(path, RATE if kind == "npy" else None)
    chosen = "0" if kind == "npy" else "PLETH"
    x = np.asarray(source.signals[source.names.index(chosen)], np.float32)
    expected = separate(x[np.newaxis], tiny_separator, sample_rate=RATE)
    written = records.read_record(biosignal.output_path(source, str(out)), RATE if kind == "npy" else None)
    if kind == "npy":  # rows: one per component and channel
        assert len(written.signals) == 2 and written.signals[0].size == x.size
    else:
        labels = ("heart/PLETH", "respiratory/PLETH")
        assert written.names == (tuple(records.edf_labels(["heart", "respiratory"], ["PLETH"]))
                                 if kind in ("edf", "bdf") else labels)
        assert written.units == ("mV", "mV") and written.rates == (RATE, RATE)
    for k, name in enumerate(("heart", "respiratory")):
        np.testing.assert_allclose(written.signals[k], expected[name][0], rtol=0, atol=quantum(kind, written, k))
    if kind in ("edf", "bdf", "wfdb"):
        assert written.start == START
    if kind == "csv":
        assert written.header["time_offset"] == 2.5
    if kind in ("edf", "bdf"):
        assert [(a.onset, a.label) for a in written.annotations] == [(1.5, "event A"), (20.25, "event B")]
    if kind == "wfdb":
        atr = wfdb.rdann(str(out / "rec" / "rec"), "atr")
        assert list(atr.sample) == [96, 1000] and list(atr.symbol) == ["N", "V"]
    rates = (out / "rec" / "rates.csv").read_text().splitlines()
    assert rates[0] == "channel,start_s,end_s,estimator,breathing_per_min,pulse_per_min"
    spectral = [r.split(",") for r in rates[1:] if r.split(",")[3] == "spectral"]
    pulse = metrics.windowed_rates(written.signals[0], RATE, metrics.PULSE_BAND, "spectral", hop=16)
    assert len(spectral) == pulse.size == (SECONDS - 32) // 16 + 1  # 32-s windows every 16 s
    assert float(spectral[0][5]) == pytest.approx(pulse[0], abs=1e-3)


def test_edf_output_opens_in_a_second_reader(tiny_separator, tmp_path):
    """MNE reads the written EDF+ with the same labels, rate, start and units (in volts) as pyedflib."""
    mne = pytest.importorskip("mne")
    path = write_edf(tmp_path / "rec.edf", ppg_channels())
    assert cli.main(["separate", path, "--model", str(tiny_separator.source), "--out_dir", str(tmp_path / "o"),
                     "--quiet"]) == 0
    raw = mne.io.read_raw_edf(str(tmp_path / "o" / "rec" / "rec.edf"), preload=True, verbose=False)
    mine = records.read_record(tmp_path / "o" / "rec" / "rec.edf")
    assert raw.ch_names == list(mine.names) and raw.info["sfreq"] == RATE
    assert raw.info["meas_date"].replace(tzinfo=None) == START
    np.testing.assert_allclose(raw.get_data()[0] * 1e3, mine.signals[0], atol=1e-9)  # MNE: volts; the file: mV


def spikes(beats_per_minute, samples, rate, jitter=0.0, seed=0):
    """A spike train (one 3-sample spike per beat) and its beat indices."""
    rng = np.random.default_rng(seed)
    step = 60 * rate / beats_per_minute
    beats = np.round(np.arange(step / 2, samples - 3, step) + jitter * step * rng.uniform(-1, 1, 200)[
        :len(np.arange(step / 2, samples - 3, step))]).astype(int)
    x = np.zeros(samples)
    for b in beats:
        x[b - 1:b + 2] = [0.5, 1.0, 0.5]
    return x, beats


def test_ecg_events_find_known_beats_and_pick_the_regular_channel(tmp_path):
    rate, samples = 500, 500 * 30
    fetal_regular, truth = spikes(140, samples, rate)
    fetal_jittered, _ = spikes(140, samples, rate, jitter=0.3, seed=1)
    maternal, maternal_truth = spikes(80, samples, rate)
    parts = {"maternal": np.stack([maternal, maternal]), "fetal": np.stack([fetal_jittered, fetal_regular])}
    found = events.detect(parts, ["A", "B"], rate)
    assert found.chosen["fetal"] == 1
    assert metrics.match_events(found.peaks["fetal"][1], truth, 5)["f1"] == 1.0
    assert metrics.match_events(found.peaks["maternal"][0], maternal_truth, 5)["f1"] == 1.0
    fetal_rates = found.rates[("fetal", "detector")][1]
    assert fetal_rates.size == 6 and np.all(np.abs(fetal_rates - 140) < 2)
    written = events.write(found, str(tmp_path), str(tmp_path / "rec.edf"))
    fqrs = wfdb.rdann(str(tmp_path / "rec.edf"), "fqrs")
    assert fqrs.fs == rate and metrics.match_events(fqrs.sample, truth, 0)["f1"] == 1.0 and set(fqrs.chan) == {1}
    beats = (tmp_path / "beats.csv").read_text().splitlines()
    assert beats[0] == "component,channel,sample,time_s,rr_bpm,chosen"
    assert sum(1 for b in beats[1:] if b.startswith("fetal,B,") and b.endswith(",1")) == truth.size
    assert sorted(os.path.basename(p) for p in written) == ["beats.csv", "heart_rate.csv", "rec.edf.fqrs",
                                                           "rec.edf.mqrs"]


def test_fused_events_are_one_more_channel_and_the_chosen_one(tmp_path):
    """With fused outputs (any ECG model's, on two or more leads), the annotation files hold the fused beats, the
    CSVs name the fused channel, and fused.csv / fused.json hold the fused signals and their weights over the leads
    (checked by hand)."""
    rate, samples = 500, 500 * 30
    fetal_regular, truth = spikes(140, samples, rate)
    fetal_jittered, _ = spikes(140, samples, rate, jitter=0.3, seed=1)
    maternal, _ = spikes(80, samples, rate)
    parts = {"maternal": np.stack([maternal, 0.5 * maternal]), "fetal": np.stack([fetal_jittered, fetal_regular])}
    fused = fusion.fuse_outputs(parts, rate)
    found = events.detect(parts, ["A", "B"], rate, fused=fused)
    assert found.channels == ("A", "B", "fused") and found.chosen == {"maternal": 2, "fetal": 2}
    assert metrics.match_events(found.peaks["fetal"][2], truth, 5)["f1"] == 1.0
    assert found.rates[("fetal", "detector")].shape[0] == 3
    written = events.write(found, str(tmp_path), str(tmp_path / "rec.edf"))
    fqrs = wfdb.rdann(str(tmp_path / "rec.edf"), "fqrs")
    np.testing.assert_array_equal(fqrs.sample, fused["fetal"].peaks)
    table = np.genfromtxt(tmp_path / "fused.csv", delimiter=",", names=True)
    np.testing.assert_allclose(table["fetal"], fused["fetal"].weights @ parts["fetal"], atol=1e-6)
    np.testing.assert_allclose(table["time_s"], np.arange(samples) / rate, atol=1e-6)
    choice = json.loads((tmp_path / "fused.json").read_text())
    assert choice["fetal"]["channels"] == ["A", "B"] and choice["fetal"]["candidate"] == fused["fetal"].candidate
    assert choice["fetal"]["beats_from"] == list(fused["fetal"].combined)
    assert {os.path.basename(p) for p in written} >= {"fused.csv", "fused.json", "rec.edf.fqrs"}
    assert sum(1 for b in (tmp_path / "beats.csv").read_text().splitlines() if b.startswith("fetal,fused,")) \
        == fused["fetal"].peaks.size


def test_edf_labels_fit_sixteen_characters():
    assert records.edf_labels(["maternal", "fetal"], ["Abdomen_1"]) == ["matern/Abdomen_1", "fetal/Abdomen_1"]
    with pytest.raises(ValueError, match="unique"):
        records.edf_labels(["maternal", "material"], ["Abdomen_1_long_x"])


# ---- hostile files: one error line naming the file, nothing written ----

def edf_bytes(tmp_path):
    return pathlib.Path(write_edf(tmp_path / "good.edf", ppg_channels(10 * RATE), annotations=())).read_bytes()


def patched(data, offset, width, text):
    return data[:offset] + text.ljust(width).encode() + data[offset + width:]


def hostile(tmp_path, case):
    """(path, extra CLI arguments, a phrase the error must contain) for one hostile input."""
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    if case.startswith("edf"):
        data, ns = edf_bytes(folder), 3  # PLETH, II and the EDF+ annotation signal
        spr = 256 + 216 * ns  # samples-per-record field of signal 0
        data = {"edf_truncated": data[:-100],
                "edf_more_records": patched(data, 236, 8, "11"),
                "edf_fewer_records": patched(data, 236, 8, "9"),
                "edf_million_channels": patched(data, 252, 4, "9999"),  # the 4-character field's largest
                "edf_zero_hz": patched(data, spr, 8, "0"),
                "edf_absurd_rate": patched(data, 244, 8, "0.00001"),
                "edf_duplicates": data.replace(b"II      ", b"PLETH   ", 1)}[case]
        path = folder / "bad.edf"
        path.write_bytes(data)
        phrase = {"edf_truncated": "truncated", "edf_more_records": "truncated", "edf_fewer_records": "longer",
                  "edf_million_channels": "9999 signals", "edf_zero_hz": "0 samples per data record",
                  "edf_absurd_rate": "sample rate", "edf_duplicates": "duplicate channel names"}[case]
        return str(path), [], phrase
    if case.startswith("wfdb"):
        path, _ = write_input(folder, "wfdb", ppg_channels(10 * RATE))
        dat = folder / "rec.dat"
        if case == "wfdb_missing_signal_file":
            dat.unlink()
            return path, [], "missing"
        if case == "wfdb_short_signal_file":
            dat.write_bytes(dat.read_bytes()[:500])
            return path, [], "shorter than declared"
        header = (folder / "rec.hea").read_text().splitlines()
        header[0] = header[0].replace("rec 2", "rec 1000000")
        (folder / "rec.hea").write_text("\n".join(header) + "\n")
        return path, [], "1000000 signals"
    if case.startswith("csv"):
        lines = ["Time [s],PLETH,II"] + [f"{i / RATE},{np.sin(i / 5):.4f},0.5" for i in range(300)]
        phrase = {"csv_ragged": "ragged", "csv_nan": "NaN", "csv_text": "not a number", "csv_duplicates": "duplicate",
                  "csv_zero_hz": "not uniformly sampled", "csv_absurd_rate": "sample rate",
                  "csv_no_rate": "no time column"}[case]
        if case == "csv_ragged":
            lines[50] += ",7"
        elif case == "csv_nan":
            lines[60] = lines[60].rsplit(",", 1)[0] + ",nan"
        elif case == "csv_text":
            lines[70] = lines[70].rsplit(",", 1)[0] + ",oops"
        elif case == "csv_duplicates":
            lines[0] = "Time [s],PLETH,PLETH"
        elif case == "csv_zero_hz":
            lines = [lines[0]] + [f"0,{k},1" for k in range(300)]
        elif case == "csv_absurd_rate":
            lines = [lines[0]] + [f"{k * 1e-9!r},{k},1" for k in range(300)]
        else:
            lines = ["PLETH,II"] + [f"{k},1" for k in range(300)]
        path = folder / "bad.csv"
        path.write_text("\n".join(lines) + "\n")
        return str(path), [], phrase
    path = write_edf(folder / "fine.edf", ppg_channels(10 * RATE))
    return path, ["--channels", "Nope"], "no channel named 'Nope'"


HOSTILE = ["edf_truncated", "edf_more_records", "edf_fewer_records", "edf_million_channels", "edf_zero_hz",
           "edf_absurd_rate", "edf_duplicates", "wfdb_missing_signal_file", "wfdb_short_signal_file",
           "wfdb_million_channels", "csv_ragged", "csv_nan", "csv_text", "csv_duplicates", "csv_zero_hz",
           "csv_absurd_rate", "csv_no_rate", "channels_naming_nothing"]


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_file(tiny_separator, tmp_path, capsys, case):
    path, extra, phrase = hostile(tmp_path, case)
    out = tmp_path / "out"
    status = cli.main(["separate", path, "--model", str(tiny_separator.source), "--out_dir", str(out), "--quiet",
                       "--events", *extra])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert status == 1 and len(lines) == 1 and lines[0].startswith("error: "), lines
    assert os.path.splitext(path)[0] in lines[0] and phrase in lines[0], lines[0]
    assert not out.exists() or not any(out.rglob("*"))


def test_default_channels_missing_lists_the_file_channels(tiny_separator, tmp_path):
    path = write_edf(tmp_path / "x.edf", {"EEG1": np.zeros(640), "EEG2": np.ones(640)})
    with pytest.raises(ValueError, match=r"no channel matches the ppg model's default .* the file has: EEG1, EEG2"):
        biosignal.prepare([path], tiny_separator, None, None, events=False)


def test_separate_reads_a_biosignal_file(tiny_separator, tmp_path):
    from cass_tf.separation import separate

    channels = ppg_channels()
    path = write_edf(tmp_path / "rec.edf", channels)
    out = separate(path, tiny_separator, channels=["II"])
    x = records.read_record(path).signals[1].astype(np.float32)
    direct = separate(x[np.newaxis], tiny_separator, sample_rate=RATE)  # a PPG as recorded, its level included
    np.testing.assert_array_equal(out["heart"], direct["heart"])
    assert not np.array_equal(direct["heart"], separate((x - np.median(x))[np.newaxis], tiny_separator,
                                                        sample_rate=RATE)["heart"])  # the level matters to a model


# ---- the real recordings (validation data; skipped without ../shared/data) ----

needs_data = pytest.mark.skipif(not (DATA / "ADFECGDB").is_dir() or not (DATA / "BIDMC").is_dir(),
                                reason="needs ../shared/data (ADFECGDB, BIDMC)")


@pytest.mark.slow  # trains or runs a real model for tens of seconds
@needs_data
def test_adfecgdb_fqrs_scores_as_validate_real_reports(tmp_path):
    """`cass-tf separate r01.edf --events` with the shipped ECG model: the .fqrs F1 against the reference equals what
    pipelines/validate_real.py reported for the fused output of the 4 leads (docs/results/real.json, the newest
    model's tables; the fused output is channel 4, after the leads), one-lead and multi-lead models alike."""
    out = tmp_path / "out"
    assert cli.main(["separate", str(DATA / "ADFECGDB" / "r01.edf"), "--model", str(REPO / "saved_models" / "ecg"),
                     "--out_dir", str(out), "--quiet", "--events"]) == 0
    fqrs = wfdb.rdann(str(out / "r01" / "r01.edf"), "fqrs")
    reference = wfdb.rdann(str(DATA / "ADFECGDB" / "r01.edf"), "qrs").sample
    reported = next(r for r in json.loads((REPO / "docs" / "results" / "real.json").read_text())["adfecgdb"]
                    if r["record"] == "r01")
    assert set(fqrs.chan) == {4}
    reported_f1 = reported["leads"]["model_fused"]["f1"]
    assert metrics.match_events(fqrs.sample, reference, 50)["f1"] == pytest.approx(reported_f1, abs=1e-12)
    edf = pyedflib.EdfReader(str(out / "r01" / "r01.edf"))
    assert edf.getSignalLabels()[4:] == [f"fetal/Abdomen_{k}" for k in range(1, 5)]
    assert set(edf.getSampleFrequencies()) == {1000} and edf.getPhysicalDimension(0) == "uV"
    edf.close()


@pytest.mark.slow  # trains or runs a real model for tens of seconds
@needs_data
def test_bidmc_csv_rates_are_the_library_traces_of_the_same_input(tmp_path):
    """A BIDMC CSV through `--events` with the shipped PPG model: rates.csv's breathing rates, every estimator, are
    events.ppg_rates of cass_tf.separate on the PLETH as recorded, and the rates pipelines/validate_real.py reported
    for that record and model (docs/results/real.json, issue 21's protocol)."""
    out = tmp_path / "out"
    model = str(REPO / "saved_models" / "ppg")
    assert cli.main(["separate", str(DATA / "BIDMC" / "bidmc_01_Signals.csv"), "--model", model,
                     "--out_dir", str(out), "--quiet", "--events"]) == 0
    rows = [r.split(",") for r in (out / "bidmc_01_Signals" / "rates.csv").read_text().splitlines()[1:]]
    pleth = realdata.read_bidmc("01", str(DATA)).pleth.astype(np.float32)
    parts = cass_tf.separate(pleth, model, sample_rate=realdata.BIDMC_RATE)
    label = f"ppg/{contract.versions(model)[-1]}"
    reported = next(r for r in json.loads((REPO / "docs" / "results" / "real.json").read_text())["bidmc"]
                    if r["record"] == "bidmc_01")["breathing"][label]
    for estimator in metrics.RATE_ESTIMATORS:
        breathing = np.array([float(r[4]) if r[4] else np.nan for r in rows if r[3] == estimator])
        _, expected = events.ppg_rates(parts, realdata.BIDMC_RATE, estimator)["breathing"]
        np.testing.assert_allclose(breathing, expected, atol=1e-3, err_msg=estimator)
        np.testing.assert_allclose(breathing, np.array(reported[estimator]["rates"], dtype=float), atol=1e-3,
                                   err_msg=estimator)


def maximum_matching(reference, detected, tolerance):
    """The largest one-to-one matching within `tolerance` (augmenting paths), the count metrics.match_events claims."""
    neighbours = [[j for j, d in enumerate(detected) if abs(int(d) - int(r)) <= tolerance] for r in reference]
    owner = {}

    def augment(i, seen):
        for j in neighbours[i]:
            if j not in seen:
                seen.add(j)
                if j not in owner or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return sum(augment(i, set()) for i in range(len(reference)))


def test_match_events_is_a_maximum_matching_where_wfdb_differs():
    """Why the hand-written matching stays (docs/biosignal.md): it finds the maximum number of one-to-one matches;
    wfdb.processing.compare_annotations counts other numbers on some event sets."""
    import wfdb.processing

    rng = np.random.default_rng(0)
    differ = 0
    for _ in range(150):
        reference = np.sort(rng.choice(3000, rng.integers(1, 25), replace=False))
        detected = np.sort(rng.choice(3000, rng.integers(1, 25), replace=False))
        ours = metrics.match_events(detected, reference, 50)["tp"]
        assert ours == maximum_matching(reference, detected, 50)
        differ += wfdb.processing.compare_annotations(reference, detected, 50).tp != ours
    assert differ > 0
