"""Tests for cass_tf.metrics: eq. 6, SI-SDR and SDR on known signals, degenerate cases, batching, summary."""

import numpy as np
import pytest
import tensorflow as tf

from cass_tf import metrics

N = 1000
NORMS = [1, 2, np.inf]


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=N)


def orthogonal_noise(x, ratio, seed=1):
    """Noise exactly orthogonal to x (Gram-Schmidt) with ||n|| = ratio * ||x||."""
    n = np.random.default_rng(seed).normal(size=x.shape)
    n -= (n @ x) / (x @ x) * x
    return n * ratio * np.linalg.norm(x) / np.linalg.norm(n)


def test_identical_signals_are_perfect(x):
    for p in NORMS:
        assert metrics.relative_error(x, x, p).numpy() == 0
    assert metrics.si_sdr(x, x).numpy() == np.inf
    assert metrics.sdr(x, x).numpy() == np.inf


@pytest.mark.parametrize("p", NORMS)
@pytest.mark.parametrize("c", [0.5, 2.0, -1.0, 0.0])
def test_scaled_estimate_has_relative_error_abs_c_minus_1(x, p, c):
    np.testing.assert_allclose(metrics.relative_error(c * x, x, p).numpy(), abs(c - 1), rtol=1e-12)


@pytest.mark.parametrize("p", NORMS)
def test_relative_error_matches_numpy_norms(x, p):
    estimate = x + np.random.default_rng(2).normal(size=N)
    expected = np.linalg.norm(estimate - x, ord=p) / np.linalg.norm(x, ord=p)
    np.testing.assert_allclose(metrics.relative_error(estimate, x, p).numpy(), expected, rtol=1e-12)


def test_l_inf_is_max_abs(x):
    estimate = x + np.random.default_rng(3).uniform(-1, 1, size=N)
    expected = np.max(np.abs(estimate - x)) / np.max(np.abs(x))
    assert metrics.relative_error(estimate, x, np.inf).numpy() == expected


def test_unknown_norm_raises(x):
    with pytest.raises(ValueError, match="p must be"):
        metrics.relative_error(x, x, 3)


def test_orthogonal_noise_at_minus_20_db(x):
    estimate = x + orthogonal_noise(x, 0.1)
    np.testing.assert_allclose(metrics.si_sdr(estimate, x).numpy(), 20.0, rtol=1e-9)
    np.testing.assert_allclose(metrics.sdr(estimate, x).numpy(), 20.0, rtol=1e-9)
    np.testing.assert_allclose(metrics.relative_error(estimate, x, 2).numpy(), 0.1, rtol=1e-9)


@pytest.mark.parametrize("c", [0.3, 5.0, -2.0])
def test_si_sdr_is_invariant_to_scaling_the_estimate(x, c):
    estimate = x + np.random.default_rng(4).normal(size=N)
    np.testing.assert_allclose(metrics.si_sdr(c * estimate, x).numpy(), metrics.si_sdr(estimate, x).numpy(),
                               rtol=1e-9)


def test_si_sdr_matches_numpy(x):
    estimate = 0.7 * x + np.random.default_rng(5).normal(size=N)
    target = (estimate @ x) / (x @ x) * x
    expected = 10 * np.log10(np.sum(target**2) / np.sum((estimate - target) ** 2))
    np.testing.assert_allclose(metrics.si_sdr(estimate, x).numpy(), expected, rtol=1e-9)


def test_sdr_is_not_scale_invariant(x):
    assert metrics.sdr(2 * x, x).numpy() == 0.0  # ||x||^2 / ||x||^2


def test_degenerate_cases_are_infinite_not_nan(x):
    silent = np.zeros(N)
    assert metrics.relative_error(x, silent, 2).numpy() == np.inf
    assert metrics.relative_error(silent, silent, 2).numpy() == 0
    assert metrics.sdr(silent, silent).numpy() == np.inf
    assert metrics.sdr(x, silent).numpy() == -np.inf
    assert metrics.si_sdr(silent, x).numpy() == -np.inf
    assert metrics.si_sdr(x, silent).numpy() == -np.inf
    assert metrics.si_sdr(silent, silent).numpy() == -np.inf
    even, odd = np.tile([1.0, 0.0], N // 2), np.tile([0.0, 1.0], N // 2)
    assert metrics.si_sdr(odd, even).numpy() == -np.inf  # exactly orthogonal: nothing of the reference


def test_batched_input_matches_a_loop():
    rng = np.random.default_rng(6)
    reference = rng.normal(size=(3, N)).astype(np.float32)
    estimate = (reference + 0.2 * rng.normal(size=(3, N))).astype(np.float32)
    scores = {"l1": lambda e, r: metrics.relative_error(e, r, 1), "l2": lambda e, r: metrics.relative_error(e, r, 2),
              "linf": lambda e, r: metrics.relative_error(e, r, np.inf), "si_sdr": metrics.si_sdr,
              "sdr": metrics.sdr}
    for name, score in scores.items():
        batched = score(estimate, reference)
        assert batched.shape == (3,) and batched.dtype == tf.float64, name
        looped = [score(e, r).numpy() for e, r in zip(estimate, reference)]
        np.testing.assert_allclose(batched.numpy(), looped, rtol=1e-12, err_msg=name)


def test_runs_in_graph(x):
    graph = tf.function(lambda e, r: metrics.si_sdr(e, r))
    estimate = x + orthogonal_noise(x, 0.1)
    np.testing.assert_allclose(graph(tf.constant(estimate), tf.constant(x)).numpy(), 20.0, rtol=1e-9)


def test_summarize_known_array():
    assert metrics.summarize(np.array([1.0, 2.0, 3.0, 10.0])) == {"mean": 4.0, "median": 2.5, "count": 4}


def test_summarize_infinity_reaches_the_mean_not_the_median():
    assert metrics.summarize([1.0, 2.0, np.inf]) == {"mean": np.inf, "median": 2.0, "count": 3}


@pytest.mark.parametrize("values", [[], [[1.0, 2.0]]])
def test_summarize_rejects_empty_or_nested(values):
    with pytest.raises(ValueError, match="1-D"):
        metrics.summarize(values)


# ---- event-level scores ----

def spike_train(samples, positions, polarity=1.0):
    x = np.zeros(samples)
    x[np.asarray(positions)] = polarity
    return x


def test_match_events_one_miss_one_false_positive():
    reference = np.array([100, 300, 500, 700])
    detected = np.array([104, 296, 520, 900])  # 700 missed; 900 false; 520 is 20 samples off (inside 25)
    scores = metrics.match_events(detected, reference, tolerance=25)
    assert (scores["tp"], scores["fp"], scores["fn"]) == (3, 1, 1)
    assert scores["sensitivity"] == 3 / 4 and scores["ppv"] == 3 / 4 and scores["f1"] == 6 / 8


def test_match_events_is_one_to_one():
    # two detections near one reference count once; the second is a false positive
    scores = metrics.match_events(np.array([98, 102]), np.array([100]), tolerance=5)
    assert (scores["tp"], scores["fp"], scores["fn"]) == (1, 1, 0)
    # a detection between two references within tolerance of both is used once, then the next one still matches
    scores = metrics.match_events(np.array([105, 112]), np.array([100, 110]), tolerance=6)
    assert (scores["tp"], scores["fp"], scores["fn"]) == (2, 0, 0)


def test_match_events_empty_cases():
    assert metrics.match_events(np.array([], int), np.array([], int), 5)["f1"] == 1.0
    none_found = metrics.match_events(np.array([], int), np.array([10, 20]), 5)
    assert (none_found["sensitivity"], none_found["ppv"], none_found["f1"]) == (0.0, 1.0, 0.0)


@pytest.mark.parametrize("polarity", [1.0, -1.0])
def test_detect_qrs_finds_a_spike_train_of_either_polarity(polarity):
    rate, beats = 500, np.arange(250, 9750, 350)  # 85.7 BPM
    x = spike_train(10_000, beats, polarity) + 0.02 * np.sin(2 * np.pi * 0.3 * np.arange(10_000) / rate)
    detected = metrics.detect_qrs(x, rate, max_bpm=150)
    assert detected.size == beats.size
    assert np.max(np.abs(detected - beats)) <= 2


def test_detect_qrs_refractory_keeps_the_larger_peak_and_drops_small_ones():
    rate = 500
    x = spike_train(5000, [1000, 1050, 2000, 3000, 4000]) * np.array([1.0])
    x[1050] = 0.6  # 100 ms after a beat: inside the 400 ms refractory period of 150 BPM
    x[2500] = 0.1  # below 0.35 of the typical beat height
    np.testing.assert_array_equal(metrics.detect_qrs(x, rate, max_bpm=150), [1000, 2000, 3000, 4000])


def test_qrs_scores_on_a_spike_train_with_a_missing_beat():
    rate = 250
    truth = np.arange(100, 4900, 200)  # 75 BPM, 24 beats
    x = spike_train(5000, np.delete(truth, 5))
    scores = metrics.component_event_scores("maternal", x, truth, rate)
    assert scores == pytest.approx({"qrs_sensitivity": 23 / 24, "qrs_ppv": 1.0, "qrs_f1": 46 / 47})
    assert metrics.peak_scores(truth[1:], truth, rate) == pytest.approx(scores)


@pytest.mark.parametrize("hz", [0.25, 0.4])
def test_spectral_rate_of_a_sinusoid(hz):
    rate = 25
    t = np.arange(round(32 * rate)) / rate
    x = np.sin(2 * np.pi * hz * t + 0.3) + 0.3 * np.sin(2 * np.pi * 1.3 * t)  # a pulse outside the breathing band
    assert abs(metrics.spectral_rate(x, rate, metrics.BREATHING_BAND) - 60 * hz) <= 60 * metrics.RATE_RESOLUTION_HZ
    assert abs(metrics.spectral_rate(x, rate, metrics.PULSE_BAND) - 78.0) <= 60 * metrics.RATE_RESOLUTION_HZ


def test_windowed_rates_track_a_rate_change_with_both_estimators():
    rate, seconds = 25, 32
    t = np.arange(seconds * rate) / rate
    x = np.concatenate([np.sin(2 * np.pi * 0.2 * t), np.sin(2 * np.pi * 0.5 * t), np.zeros(10 * rate)])
    for method in ("spectral", "peaks"):
        rates = metrics.windowed_rates(x, rate, metrics.BREATHING_BAND, method=method)
        np.testing.assert_allclose(rates, [12.0, 30.0], atol=0.5)  # partial last window dropped


def test_event_rates_and_errors_by_hand():
    # events every 2 s at 10 Hz: 30 per minute in the first 32-s window; 3 s apart in the second: 20 per minute
    events = np.concatenate([np.arange(0, 320, 20), np.arange(320, 640, 30)])
    np.testing.assert_allclose(metrics.windowed_event_rates(events, 640, 10), [30.0, 20.0])
    assert np.isnan(metrics.event_rate(np.array([5]), 10))
    errors = metrics.rate_errors(np.array([31.0, 18.0, 5.0]), np.array([30.0, 20.0, np.nan]))
    assert errors == {"mae": 1.5, "median": 1.5, "count": 2}
    with pytest.raises(ValueError, match="shape"):
        metrics.rate_errors(np.zeros(2), np.zeros(3))


def test_bandpass_passes_the_band_and_rejects_outside():
    rate = 100
    t = np.arange(20 * rate) / rate
    inside, outside = np.sin(2 * np.pi * 1.0 * t), np.sin(2 * np.pi * 20.0 * t)
    y = metrics.bandpass(inside + outside, rate, (0.5, 3.0))
    core = slice(5 * rate, 15 * rate)  # away from the edges
    assert np.max(np.abs(y[core] - inside[core])) < 0.05
    with pytest.raises(ValueError, match="band"):
        metrics.bandpass(inside, rate, (3.0, 1.0))


@pytest.mark.parametrize("band", [(0.0, 2.0), (2.0, 100.0)])
def test_a_band_with_one_edge_is_a_low_or_high_pass_at_half_amplitude_on_the_edge(band):
    """Zero phase means the Butterworth's |H|^2: half the amplitude exactly at the cut-off, whichever edge is kept."""
    rate = 100
    t = np.arange(40 * rate) / rate
    core = slice(10 * rate, 30 * rate)
    amplitude = {f: np.sqrt(2 * np.mean(metrics.bandpass(np.sin(2 * np.pi * f * t), rate, band)[core] ** 2))
                 for f in (0.2, 2.0, 20.0)}
    kept, removed = (0.2, 20.0) if band[0] == 0 else (20.0, 0.2)
    assert amplitude[2.0] == pytest.approx(0.5, abs=0.01)
    assert amplitude[kept] > 0.99 and amplitude[removed] < 0.01
    with pytest.raises(ValueError, match="edge"):
        metrics.bandpass(t, rate, (0.0, 50.0))


def test_component_event_scores_per_kind():
    rate = 256
    truth = np.arange(50, 20 * rate, 110)  # fetal R peaks 430 ms apart (140 BPM)
    fetal = spike_train(20 * rate, np.delete(truth, [3, 4]))  # two beats missed
    scores = metrics.component_event_scores("fetal", fetal, truth, rate)
    n = truth.size
    assert scores == pytest.approx({"qrs_sensitivity": (n - 2) / n, "qrs_ppv": 1.0, "qrs_f1": 2 * (n - 2) / (2 * n - 2)})
    rate = 32
    t = np.arange(64 * rate) / rate
    breaths = np.round((np.arange(20) + 0.25) / 0.3 * rate).astype(int)  # maxima of sin(2 pi 0.3 t): 18 per minute
    breaths = breaths[breaths < t.size]
    exact = metrics.component_event_scores("respiratory", np.sin(2 * np.pi * 0.3 * t), breaths, rate)
    assert exact["rate_error"] < 0.3  # spectral resolution and sample rounding only
    off = metrics.component_event_scores("respiratory", np.sin(2 * np.pi * 0.4 * t), breaths, rate)
    assert off["rate_error"] == pytest.approx(6.0, abs=0.3)  # 24 vs 18 per minute
    short = metrics.component_event_scores("heart", np.sin(2 * np.pi * 1.0 * t[:20 * rate]), np.arange(0, 640, 32), rate)
    assert short["rate_error"] < 0.3  # a 20-s signal is scored as one window
    assert metrics.component_event_scores("violin", np.zeros(10), np.array([], int), rate) == {}


def test_rate_windows_with_a_hop_overlap_and_drop_the_partial_last():
    assert metrics.rate_windows(100, 1, 32) == [(0, 32), (32, 64), (64, 96)]
    assert metrics.rate_windows(100, 1, 32, hop=16) == [(0, 32), (16, 48), (32, 64), (48, 80), (64, 96)]
    with pytest.raises(ValueError, match="hop"):
        metrics.rate_windows(100, 1, 32, hop=0)
    # events every 2 s then every 3 s: the middle window (16-48 s) straddles both
    events = np.concatenate([np.arange(0, 320, 20), np.arange(320, 640, 30)])
    middle = events[(events >= 160) & (events < 480)]
    expected = [30.0, 60.0 * (middle.size - 1) * 10 / (middle[-1] - middle[0]), 20.0]
    np.testing.assert_allclose(metrics.windowed_event_rates(events, 640, 10, hop=16), expected)


def test_yule_walker_solves_the_normal_equations():
    x = np.random.default_rng(3).normal(size=300).cumsum()
    order = 5
    centred = x - x.mean()
    r = np.array([centred[: x.size - k] @ centred[k:] for k in range(order + 1)]) / x.size
    toeplitz = np.array([[r[abs(i - j)] for j in range(order)] for i in range(order)])
    np.testing.assert_allclose(metrics.yule_walker(x, order), np.linalg.solve(toeplitz, r[1:]), rtol=1e-10)
    assert metrics.yule_walker(np.zeros(300), order) is None
    assert metrics.yule_walker(x[:11], order) is None


def test_yule_walker_recovers_a_known_ar2_process():
    a = np.array([1.6, -0.9])  # poles at radius sqrt(0.9)
    e = np.random.default_rng(4).normal(size=20000)
    x = np.zeros_like(e)
    for n in range(2, x.size):
        x[n] = a[0] * x[n - 1] + a[1] * x[n - 2] + e[n]
    np.testing.assert_allclose(metrics.yule_walker(x, 2), a, atol=0.02)


@pytest.mark.parametrize("hz,rate", [(0.12, 125), (0.3, 32), (0.55, 125)])
def test_ar_rate_of_a_noisy_sinusoid(hz, rate):
    t = np.arange(32 * rate) / rate
    noise = np.random.default_rng(5).normal(size=t.size)
    x = np.sin(2 * np.pi * hz * t + 0.4) + 0.3 * np.sin(2 * np.pi * 1.2 * t) + 0.1 * noise
    assert metrics.ar_rate(x, rate, metrics.BREATHING_BAND) == pytest.approx(60 * hz, abs=0.6)
    assert np.isnan(metrics.ar_rate(np.zeros(t.size), rate, metrics.BREATHING_BAND))


def test_all_three_estimators_track_a_rate_change_in_overlapping_windows():
    rate = 25
    t = np.arange(32 * rate) / rate
    x = np.concatenate([np.sin(2 * np.pi * 0.2 * t), np.sin(2 * np.pi * 0.5 * t)])
    assert set(metrics.RATE_ESTIMATORS) == {"spectral", "peaks", "ar"}
    for method in metrics.RATE_ESTIMATORS:
        rates = metrics.windowed_rates(x, rate, metrics.BREATHING_BAND, method=method, hop=16)
        assert rates.shape == (3,)
        np.testing.assert_allclose(rates[[0, 2]], [12.0, 30.0], atol=0.6, err_msg=method)
        assert 12.0 - 0.6 <= rates[1] <= 30.0 + 0.6  # the middle window holds both rates


def test_every_estimator_band_passes_first_so_a_wave_below_the_band_does_not_win_at_its_edge():
    """Breathing at 0.3 Hz under a 0.05-Hz wave 20 times larger (a slow baseline below the breathing band): a window's
    periodogram without the band-pass peaks at the band's lower edge (the wave's Hann skirt), windowed_rates reads
    18 /min with every estimator."""
    rate = 25
    t = np.arange(96 * rate) / rate
    x = np.sin(2 * np.pi * 0.3 * t) + 20 * np.sin(2 * np.pi * 0.05 * t + 1.0)
    window = x[16 * rate:48 * rate]
    assert metrics.spectral_rate(window, rate, metrics.BREATHING_BAND) == pytest.approx(60 * 0.1)
    for method in metrics.RATE_ESTIMATORS:
        rates = metrics.windowed_rates(x, rate, metrics.BREATHING_BAND, method=method, hop=16)
        np.testing.assert_allclose(rates, 18.0, atol=0.6, err_msg=method)


def test_search_back_finds_a_beat_between_half_and_the_full_threshold_in_a_long_gap_only():
    rate, beats = 500, np.arange(250, 9750, 350)  # 85.7 BPM
    x = spike_train(10_000, beats)
    x[beats[10]] = 0.25  # below 0.35 of the typical height, above half of that: found again by the search-back
    x[beats[20]] = 0.10  # below half the threshold: stays lost
    x[beats[5] + 175] = 0.25  # halfway between two detected beats: no long gap there, not a beat
    envelope = metrics.qrs_envelope(x, rate)
    detected = metrics.envelope_qrs(envelope, rate, max_bpm=150)
    np.testing.assert_array_equal(detected, metrics.detect_qrs(x, rate, max_bpm=150))
    lost = np.delete(beats, [10, 20])
    assert detected.size == lost.size and np.max(np.abs(detected - lost)) <= 2
    found = metrics.search_back(envelope, detected, rate, max_bpm=150)
    expected = np.delete(beats, [20])
    assert found.size == expected.size and np.max(np.abs(found - expected)) <= 2
    level = metrics.qrs_level(envelope, rate, max_bpm=150)
    height = envelope[beats[10] - 2:beats[10] + 3].max()  # a quarter of the level: missed, but searched back
    assert metrics.SEARCH_BACK_THRESHOLD * metrics.QRS_THRESHOLD * level < height < metrics.QRS_THRESHOLD * level
    assert metrics.search_back(np.zeros(10_000), np.array([], np.int64), rate, max_bpm=150).size == 0
