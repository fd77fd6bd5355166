"""Tests for cass_tf.fusion (FastICA, the blind fused output) and realdata.multilead_fetal on hand-made and
synthetic multi-lead signals."""

import pathlib
import runpy
import types

import numpy as np
import pytest

from cass_tf import fusion, metrics, realdata
from cass_tf.events import r_peaks
from cass_tf.config import load_config
from cass_tf.data import leads

REPO = pathlib.Path(__file__).resolve().parents[1]
RATE = 250


def spikes(times, samples, width=0.008):
    """A train of Gaussian QRS-like pulses (sd `width` s) at `times` (s)."""
    t = np.arange(samples) / RATE
    return np.sum(np.exp(-0.5 * ((t[:, None] - np.asarray(times)[None, :]) / width) ** 2), axis=1)


def beat_times(bpm, seconds, rng, spread=0.02):
    rr = 60 / bpm * (1 + spread * rng.standard_normal(int(seconds * bpm / 60) + 2))
    times = np.cumsum(rr) - rr[0] / 2
    return times[times < seconds - 0.05]


def test_fastica_recovers_independent_sources():
    rng = np.random.default_rng(1)
    n = 20000
    sources = np.stack([np.sign(np.sin(np.arange(n) / 37.0)), rng.laplace(size=n), rng.uniform(-1, 1, n)])
    mixing = np.array([[1.0, 0.5, 0.2], [0.3, 1.0, -0.4], [-0.6, 0.2, 1.0]])
    found, unmixing = fusion.fastica(mixing @ sources)
    np.testing.assert_allclose(np.cov(found, bias=True), np.eye(3), atol=1e-9)  # unit variance, uncorrelated
    product = np.abs(unmixing @ mixing)  # a scaled permutation: one large entry per row and column
    product /= product.max(axis=1, keepdims=True)
    assert sorted(np.argmax(product, axis=1)) == [0, 1, 2]
    assert np.sort(product, axis=1)[:, -2].max() < 0.05


def test_fuse_of_silent_or_single_leads():
    silent = fusion.fuse(np.zeros((3, 10 * RATE)), RATE)
    assert silent.peaks.size == 0 and silent.irregularity == np.inf and silent.candidate == "lead 0"
    times = beat_times(140, 10, np.random.default_rng(4))
    single = fusion.fuse(spikes(times, 10 * RATE)[None, :], RATE)
    assert metrics.match_events(single.peaks, np.round(times * RATE).astype(int), 12)["f1"] == 1.0
    with pytest.raises(ValueError, match=r"fuse: leads must be \(leads, samples\), got shape \(2500,\)"):
        fusion.fuse(np.zeros(10 * RATE), RATE)


def test_fuse_picks_the_lead_with_the_fetal_beats_not_the_regular_maternal_one():
    rng = np.random.default_rng(2)
    seconds, samples = 30, 30 * RATE
    fetal, maternal = beat_times(140, seconds, rng), beat_times(80, seconds, rng, spread=0.0)
    f, m = spikes(fetal, samples), spikes(maternal, samples, width=0.012)
    noise = rng.standard_normal((4, samples))
    x = np.stack([5 * m, 4 * m, 0.0 * m, 3 * m]) + np.stack([0.0 * f, 0.0 * f, f, 0.0 * f]) + 0.05 * noise
    fused = fusion.fuse(x, RATE, "fetal", maternal_peaks=np.round(maternal * RATE).astype(int))
    found = metrics.match_events(fused.peaks, np.round(fetal * RATE).astype(int), round(0.05 * RATE))
    assert found["f1"] == 1.0
    np.testing.assert_allclose(fused.signal, fused.weights @ x)
    assert np.argmax(np.abs(fused.weights) * x.std(axis=1)) == 2  # lead 2 carries it
    np.testing.assert_allclose(np.nanmedian(fused.heart_rate), 140, rtol=0.05)
    # without the maternal peaks, on leads with no fetal beats, the rule still refuses the clean, perfectly regular
    # maternal train: it is below the fetal heart-rate limits (80 < 90 BPM)
    alone = fusion.fuse(x[[0, 1, 3]], RATE, "fetal")
    assert metrics.match_events(alone.peaks, np.round(maternal * RATE).astype(int), 12)["tp"] < 0.5 * alone.peaks.size


def test_fuse_prefers_the_cleaner_of_leads_carrying_the_same_beats():
    rng = np.random.default_rng(3)
    seconds, samples = 30, 30 * RATE
    times = beat_times(150, seconds, rng)
    clean = spikes(times, samples)
    sigma = np.array([0.6, 0.3, 0.05, 0.8])  # lead 2 is the cleanest; leads 0 and 3 lose beats to noise
    noise = sigma[:, None] * rng.standard_normal((4, samples))
    fused = fusion.fuse(clean[None, :] + noise, RATE)
    truth = np.round(times * RATE).astype(int)
    assert metrics.match_events(fused.peaks, truth, round(0.05 * RATE))["f1"] == 1.0
    snr = np.var(fused.weights.sum() * clean) / np.var(fused.weights @ noise)
    assert snr >= 0.5 * np.var(clean) / sigma[2] ** 2  # at least half the best lead's SNR (4 x any other lead's)


def test_multilead_reference_finds_synthetic_fetal_beats():
    # configs/ecg.json's ranges (fetal 1:1.5-1:15 of the maternal peak, noise down to 10 dB): some recordings are
    # hard (one of these six scores 0.32 with every lead and component under 0.65), most are not
    c = load_config(REPO / "configs/ecg.json", overrides=["data.ecg.leads=4", "data.ecg.seconds=30",
                                                           "data.cache_dir=null"])
    rate = c.data.sample_rate
    scores = []
    for seed in range(6):
        r = leads.recording(np.random.SeedSequence(seed), c.data.ecg, rate, 30 * rate)
        fused = realdata.multilead_fetal(r["mixture"].astype(np.float64), rate)
        scores.append(metrics.match_events(fused.peaks, r["fetal_events"], round(0.05 * rate))["f1"])
    assert np.mean(scores) > 0.8 and np.median(scores) > 0.95, scores


def test_fetal_beats_combine_the_three_most_regular_candidates():
    """Leads 0-2 carry the same fetal train, each with its own two beats missing; combined_peaks of the three finds
    every beat, which no lead's detector does alone; a fourth lead of noise is not among the combined candidates."""
    rng = np.random.default_rng(5)
    seconds, samples = 30, 30 * RATE
    times = beat_times(140, seconds, rng, spread=0.01)
    truth = np.round(times * RATE).astype(int)
    missing = [[5, 30], [12, 40], [20, 50]]
    x = np.stack([spikes(np.delete(times, m), samples) for m in missing] + [np.zeros(samples)])
    x += 0.01 * rng.standard_normal(x.shape)
    tolerance = round(0.05 * RATE)
    for k in range(3):
        alone = metrics.match_events(r_peaks(x[k], RATE, "fetal"), truth, tolerance)
        assert alone["fn"] == 2 and alone["fp"] == 0
    combined = fusion.combined_peaks(x[:3], RATE, "fetal")
    assert metrics.match_events(combined, truth, tolerance)["f1"] == 1.0
    fused = fusion.fuse(x, RATE, "fetal")
    assert len(fused.combined) == 3 and fused.combined[0] == fused.candidate and "lead 3" not in fused.combined
    assert metrics.match_events(fused.peaks, truth, tolerance)["f1"] == 1.0
    np.testing.assert_allclose(fused.signal, fused.weights @ x)
    # pipelines/fetal_beats_rule.py's rules: "combined" is fuse's, "single" the most regular candidate's own peaks
    tool = types.SimpleNamespace(**runpy.run_path(str(REPO / "pipelines" / "fetal_beats_rule.py")))
    found = fusion.candidates(x, RATE, "fetal")
    rules = tool.rule_peaks(found, RATE)
    np.testing.assert_array_equal(rules["combined"], fused.peaks)
    np.testing.assert_array_equal(rules["single"], r_peaks(fused.signal, RATE, "fetal"))
    # maternal beats stay the chosen candidate's own detector peaks
    maternal = fusion.fuse(x, RATE, "maternal")
    np.testing.assert_array_equal(maternal.peaks, r_peaks(maternal.signal, RATE, "maternal"))
    assert maternal.combined == (maternal.candidate,)
