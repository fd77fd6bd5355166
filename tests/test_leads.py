"""Tests for the multi-lead synthetic abdominal ECG (cass_tf.data.leads): projections, noise, seeds, shapes."""

import pathlib

import numpy as np
import pytest

from cass_tf.config import ConfigError, load_config
from cass_tf.data import ecg, leads

REPO = pathlib.Path(__file__).resolve().parents[1]
SMALL = ["data.ecg.train_recordings=2", "data.ecg.test_recordings=1", "data.ecg.seconds=12", "data.cache_dir=null",
         "data.ecg.leads=5"]


def config(path="configs/ecg.json", *overrides):
    return load_config(REPO / path, overrides=[*SMALL, *overrides])


def one(still=False, path="configs/ecg.json", seed=0):
    c = config(path)
    return leads.recording(np.random.SeedSequence(seed), c.data.ecg, c.data.sample_rate,
                           round(c.data.ecg.seconds * c.data.sample_rate), still=still)


def singular(matrix):
    values = np.linalg.svd(np.asarray(matrix, dtype=np.float64), compute_uv=False)
    return values / values[0]


def test_lead_field_by_hand():
    # p = (0, 0, 2) at the origin; electrode at (0, 0, 0.1): 2 * 0.1 / 0.1^3 = 200; reference at (0.1, 0, 0): p is
    # perpendicular to it, 0; second electrode at (0, 0.2, 0.2): 2 * 0.2 / (0.2 sqrt 2)^3
    moment = np.tile([0.0, 0.0, 2.0], (3, 1))
    got = leads.lead_field(np.array([[0, 0, 0.1], [0, 0.2, 0.2]]), np.array([0.1, 0, 0]), np.zeros(3), moment)
    np.testing.assert_allclose(got, [[200.0] * 3, [0.4 / (0.2 * np.sqrt(2)) ** 3] * 3])


def test_each_heart_still_is_a_projection_of_one_3d_dipole():
    r = one(still=True)
    for heart in ("maternal", "fetal"):
        assert r[heart].shape == (5, r["mixture"].shape[1])
        values = singular(r[heart])
        assert values[2] > 1e-3 and values[3] < 1e-5, (heart, values)  # rank 3 of 5 leads: a 3-D dipole, no more
    assert singular(r["mixture"])[4] > 1e-3  # the noise has its own projections: the mixture fills all 5 leads


def test_respiration_and_fetal_movement_change_the_projections_a_little():
    changes = {"maternal": [], "fetal": []}
    for seed in range(6):
        moving, still = one(seed=seed), one(still=True, seed=seed)  # the same draws; `still` zeroes turns and shifts
        for heart in ("maternal", "fetal"):
            assert singular(moving[heart])[3] > 1e-4  # a moving dipole's leads leave its 3-D subspace
            changes[heart].append(np.linalg.norm(moving[heart] - still[heart]) / np.linalg.norm(still[heart]))
        np.testing.assert_array_equal(moving["maternal_events"], still["maternal_events"])
    # breathing turns the maternal heart by <= 10 degrees: every recording's maternal leads stay close; the fetus
    # turns by <= 60 degrees and moves by <= 2 cm, a lot for a lead it comes near: typically, not always, similar
    assert all(1e-4 < c < 0.3 for c in changes["maternal"]), changes
    assert min(changes["fetal"]) > 1e-4 and np.median(changes["fetal"]) < 0.7, changes


def test_plain_noise_is_the_breathing_with_one_projection():
    # configs/paper/ecg.json: no wander/mains/white noise, so mixture - components is one time course times a gain
    # per lead (rank 1)
    r = one(path="configs/paper/ecg.json")
    values = singular(r["mixture"] - r["maternal"] - r["fetal"])
    assert values[1] < 1e-5


def test_amplitudes_events_and_shapes():
    c = config()
    params, rate = c.data.ecg, c.data.sample_rate
    data = ecg.load(c)
    assert [len(data["train"]), len(data["test"])] == [2, 1]
    for recording in data["train"] + data["test"]:
        samples = round(params.seconds * rate)
        assert recording.mixture.shape == (5, samples) and len(recording) == samples
        assert recording.mixture.dtype == np.float32
        maternal, fetal = (np.max(np.ptp(recording.components[h], axis=1)) for h in ("maternal", "fetal"))
        assert maternal == pytest.approx(1.0, rel=1e-6)
        assert 1 / params.amplitude_ratio[1] - 1e-6 <= fetal <= 1 / params.amplitude_ratio[0] + 1e-6
        for heart, field in (("maternal", params.maternal_bpm), ("fetal", params.fetal_bpm)):
            events = recording.events[heart]
            assert events.min() >= 0 and events.max() < samples
            bpm = 60 * rate / np.median(np.diff(events))
            assert field[0] * 0.85 < bpm < field[1] * 1.15, (heart, bpm)
            # R peaks (cardiac phase 0) are where the lead with the largest swing of that heart has an extremum
            lead = recording.components[heart][np.argmax(np.ptp(recording.components[heart], axis=1))]
            window = round(0.03 * rate)
            near = [np.argmax(np.abs(lead[max(0, e - window):e + window + 1])) + max(0, e - window) for e in events]
            assert np.median(np.abs(np.array(near) - events)) <= round(0.015 * rate) + 1


def test_seeds_reproduce_and_differ():
    first, again = one(seed=3), one(seed=3)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.allclose(one(seed=4)["mixture"], first["mixture"])


def test_one_lead_keeps_the_cache_key_and_leads_are_checked():
    single = load_config(REPO / "configs/ecg.json")
    assert '"leads"' not in ecg._cache_key(single)  # the key (and cache files) of the configs before data.ecg.leads
    assert '"leads": 5' in ecg._cache_key(config())
    with pytest.raises(ConfigError, match=r"data\.ecg\.leads"):
        config("configs/ecg.json", "data.ecg.leads=0")


def test_one_lead_model_refuses_multi_lead_recordings():
    from cass_tf.data import pipeline

    with pytest.raises(ValueError, match=r"5 leads: a one-lead model takes each lead as a recording"):
        pipeline._check_lengths(ecg.load(config())["train"], 64, "train", config())
