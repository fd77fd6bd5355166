"""Tests for the synthetic sources cass_tf.data.ecg and cass_tf.data.ppg on tiny configs."""

import hashlib
import pathlib

import numpy as np
import pytest
import signalz
import signalz.misc
from scipy.signal import find_peaks
from scipy.stats import norm

from cass_tf.config import ConfigError, load_config
from cass_tf.data import ecg, ecg_model, leads, ppg

REPO = pathlib.Path(__file__).resolve().parents[1]
ECG_SMALL = ["data.ecg.train_recordings=2", "data.ecg.test_recordings=1", "data.ecg.seconds=12", "data.cache_dir=null"]
PPG_SMALL = ["data.sample_rate=64", "stft.n_fft=128", "stft.window=128", "stft.hop=16",
             "data.ppg.train_recordings=4", "data.ppg.test_recordings=2", "data.ppg.seconds=30", "data.cache_dir=null"]
TOLERANCE = 0.03  # relative slack on measured heart rates


def ecg_config(*overrides):
    return load_config(REPO / "configs" / "paper" / "ecg.json", overrides=[*ECG_SMALL, *overrides])


def ppg_config(*overrides):
    return load_config(REPO / "configs" / "paper" / "ppg.json", overrides=[*PPG_SMALL, *overrides])


@pytest.fixture(scope="module")
def ecg_data():
    ecg.clear_cache()
    return ecg.load(ecg_config())


@pytest.fixture(scope="module")
def ppg_data():
    return ppg.load(ppg_config())


def all_recordings(data):
    return data["train"] + data["test"]


def assert_same(a, b):
    assert [r.name for r in all_recordings(a)] == [r.name for r in all_recordings(b)]
    for x, y in zip(all_recordings(a), all_recordings(b)):
        np.testing.assert_array_equal(x.mixture, y.mixture)
        for name in x.components:
            np.testing.assert_array_equal(x.components[name], y.components[name])
        assert x.events.keys() == y.events.keys()
        for name in x.events:
            np.testing.assert_array_equal(x.events[name], y.events[name])


def bpm(peaks, rate):
    return 60 * rate / np.median(np.diff(peaks))


def zero_crossings(signal):
    return int(np.count_nonzero(np.diff(np.signbit(signal))))


# ---- both sources ----

@pytest.mark.parametrize("source", ["ecg", "ppg"])
def test_shapes_dtype_finite(source, request):
    data = request.getfixturevalue(f"{source}_data")
    config = ecg_config() if source == "ecg" else ppg_config()
    params = config.data.params
    assert len(data["train"]) == params.train_recordings and len(data["test"]) == params.test_recordings
    samples = round(params.seconds * config.data.sample_rate)
    for recording in all_recordings(data):
        assert tuple(recording.components) == config.data.components
        for signal in (recording.mixture, *recording.components.values()):
            assert signal.shape == (samples,)
            assert signal.dtype == np.float32
            assert np.all(np.isfinite(signal))
            assert np.ptp(signal) > 0
    assert not np.array_equal(data["train"][0].mixture, data["test"][0].mixture)


@pytest.mark.parametrize("module, config", [
    (ecg, lambda: ecg_config("data.ecg.maternal_bpm=[0, 90]")),
    (ppg, lambda: ppg_config("data.ppg.heart_bpm=[0, 90]")),
])
def test_zero_heart_rate_is_a_clear_error(module, config):
    with pytest.raises(ValueError, match=r"data\.(ecg\.maternal|ppg\.heart)_bpm"):
        module.load(config())


# ---- ECG ----

def test_ecg_is_deterministic_and_leaves_global_state_alone(ecg_data):
    ecg.clear_cache()
    np.random.seed(123)
    again = ecg.load(ecg_config())
    after = np.random.random(3)
    np.random.seed(123)
    np.testing.assert_array_equal(after, np.random.random(3))
    assert_same(ecg_data, again)


def test_ecg_seed_changes_the_recordings(ecg_data):
    other = ecg.load(ecg_config("seed=1", "data.ecg.train_recordings=1"))
    assert not np.allclose(other["train"][0].mixture, ecg_data["train"][0].mixture)
    assert not np.allclose(other["test"][0].mixture, ecg_data["test"][0].mixture)


def test_ecg_heart_rates(ecg_data):
    config = ecg_config()
    rate, params = config.data.sample_rate, config.data.ecg
    for recording in all_recordings(ecg_data):
        for name, (low, high) in (("maternal", params.maternal_bpm), ("fetal", params.fetal_bpm)):
            signal = recording.components[name]
            peaks, _ = find_peaks(signal, height=0.5 * signal.max(), distance=0.5 * 60 * rate / high)
            assert low * (1 - TOLERANCE) <= bpm(peaks, rate) <= high * (1 + TOLERANCE), name


def test_ecg_amplitude_ratio(ecg_data):
    low, high = ecg_config().data.ecg.amplitude_ratio
    for recording in all_recordings(ecg_data):
        maternal, fetal = recording.components["maternal"], recording.components["fetal"]
        assert np.ptp(maternal) == pytest.approx(1, rel=1e-6)
        assert low * (1 - 1e-5) <= np.ptp(maternal) / np.ptp(fetal) <= high * (1 + 1e-5)


def test_ecg_mixture_is_components_plus_slow_respiratory_noise(ecg_data):
    config = ecg_config()
    rate, params = config.data.sample_rate, config.data.ecg
    for recording in all_recordings(ecg_data):
        noise = recording.mixture.astype(np.float64) - recording.components["maternal"] - recording.components["fetal"]
        peak = np.abs(noise).max() / np.ptp(recording.components["maternal"])
        assert params.noise_amplitude[0] * 0.98 <= peak <= params.noise_amplitude[1] * 1.001
        power = np.abs(np.fft.rfft(noise * np.hanning(len(noise)))) ** 2
        frequencies = np.fft.rfftfreq(len(noise), 1 / rate)
        assert power[frequencies > 1.5].sum() < 1e-4 * power.sum()
        seconds = len(noise) / rate
        assert 2 * params.noise_hz[0] * seconds - 1 <= zero_crossings(noise) <= 2 * params.noise_hz[1] * seconds + 1


def test_ecg_components_are_selected(ecg_data):
    only = ecg.load(ecg_config('data.components=["fetal"]', "loss.cross=[]"))
    for full, picked in zip(all_recordings(ecg_data), all_recordings(only)):
        assert tuple(picked.components) == ("fetal",)
        np.testing.assert_array_equal(picked.mixture, full.mixture)
        np.testing.assert_array_equal(picked.components["fetal"], full.components["fetal"])


def test_ecg_redraws_when_ecgsyn_fails(monkeypatch):
    original = ecg._ode
    calls = []

    def flaky(seed, **kwargs):
        calls.append(kwargs["hrmean"])
        if len(calls) == 1:
            raise IndexError("index 8192 is out of bounds")
        return original(seed, **kwargs)

    monkeypatch.setattr(ecg, "_ode", flaky)
    monkeypatch.setenv(ecg.WORKERS_ENV, "1")  # the calls are counted in this process
    data = ecg.load(ecg_config("seed=2", "data.ecg.train_recordings=1"))
    assert len(calls) == 5  # 2 recordings x (maternal + fetal), plus the redrawn one
    assert calls[0] != calls[1] and all(80 <= rate <= 90 for rate in calls[:2])
    assert all(np.all(np.isfinite(r.mixture)) for r in all_recordings(data))


def test_ecg_disk_cache(tmp_path, monkeypatch):
    config = ecg_config(f"data.cache_dir={tmp_path}", "seed=3", "data.ecg.train_recordings=1")
    ecg.clear_cache()
    first = ecg.load(config)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 1 and files[0].startswith("ecg-") and files[0].endswith(".npz")

    def refuse(odes):
        raise AssertionError("ECGSYN integrated although the recordings are cached")

    monkeypatch.setattr(ecg, "_integrate", refuse)
    ecg.clear_cache()
    assert_same(first, ecg.load(config))
    assert sorted(p.name for p in tmp_path.iterdir()) == files


def classical_rk4(f, x, t, dt, *args):
    k1 = dt * f(t, x, *args)
    k2 = dt * f(t + 0.5 * dt, x + 0.5 * k1, *args)
    k3 = dt * f(t + 0.5 * dt, x + 0.5 * k2, *args)
    k4 = dt * f(t + dt, x + k3, *args)
    return x + (k1 + 2 * k2 + 2 * k3 + k4) / 6


def test_ecg_batched_integration_is_bit_identical_to_signalz_with_a_classical_rk4(monkeypatch):
    # hearts of different rates, variabilities, morphologies and lengths, integrated together as one batch
    default = {name: list(values) for name, values in ecg_model.ECGSYN_WAVES.items()}
    runs = [dict(seed=1, n=5, hrmean=63.7, hrstd=1.0, **default),
            dict(seed=2, n=9, hrmean=151.3, hrstd=5.0, ti=[-60, -17, 0, 13, 110], ai=[1.0, -4, 33, -8, 0.9],
                 bi=[0.3, 0.11, 0.09, 0.1, 0.35]),
            dict(seed=3, n=6, hrmean=97.0, hrstd=2.0, **default)]
    batch = ecg._integrate([ecg._ode(sfecg=128, sfint=256, **run) for run in runs])
    monkeypatch.setattr(signalz.misc, "ode45_step", classical_rk4)
    for run, fast in zip(runs, batch):
        np.random.seed(run["seed"])
        reference, _ = signalz.ecgsyn(sfecg=128, sfint=256, **{k: v for k, v in run.items() if k != "seed"})
        assert fast.shape == reference.shape
        assert np.array_equal(fast, reference)


def test_ecg_pool_gives_the_serial_arrays_and_says_how_far_it_is(monkeypatch, capsys):
    config = ecg_config("data.ecg.seconds=5", "data.ecg.train_recordings=2", "data.ecg.test_recordings=1",
                        "data.ecg.integration_rate=256")
    monkeypatch.setattr(ecg, "CHUNK", 3)  # serial: one batch of 3; pool: batches of 2 and 1, one per worker
    monkeypatch.setenv(ecg.WORKERS_ENV, "1")
    serial = ecg._generate(config)
    monkeypatch.setenv(ecg.WORKERS_ENV, "2")
    pooled = ecg._generate(config)
    assert sorted(serial) == sorted(pooled)
    for name in serial:
        assert serial[name].dtype == pooled[name].dtype and np.array_equal(serial[name], pooled[name]), name
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("data: generated")]
    assert lines == [f"data: generated {i}/3 synthetic ECG recordings" for i in (3, 2, 3)]


def test_ecg_chunks_are_even_and_shared_evenly_by_the_workers(monkeypatch):
    monkeypatch.setattr(ecg, "CHUNK", 64)
    assert [len(c) for c in ecg._chunks(list(range(520)), 2)] == [52] * 10
    assert [len(c) for c in ecg._chunks(list(range(520)), 1)] == [58] * 8 + [56]
    assert [len(c) for c in ecg._chunks(list(range(3)), 4)] == [1, 1, 1]
    assert sum(ecg._chunks(list(range(130)), 3), []) == list(range(130))


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_ecg_bad_worker_count_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv(ecg.WORKERS_ENV, value)
    with pytest.raises(ValueError, match=rf"{ecg.WORKERS_ENV}: .*{value!r}"):
        ecg.workers()


def test_ecg_events_are_the_r_peaks_of_the_clean_components(ecg_data):
    config = ecg_config()
    rate, params = config.data.sample_rate, config.data.ecg
    for recording in all_recordings(ecg_data):
        for name, (low, high) in (("maternal", params.maternal_bpm), ("fetal", params.fetal_bpm)):
            signal, events = recording.components[name], recording.events[name]
            seconds = len(signal) / rate
            assert seconds * low / 60 - 2 <= events.size <= seconds * high / 60 + 1, name
            # every event is the maximum of the component within +-100 ms, and the R wave is its tallest wave
            for e in events:
                window = signal[max(0, e - rate // 10):e + rate // 10 + 1]
                assert signal[e] == window.max()
            assert signal[events].min() > 0.5 * signal.max()


REALISTIC = ["data.ecg.wander_amplitude=[0.5, 0.5]", "data.ecg.powerline_amplitude=[0.2, 0.2]",
             "data.ecg.noise_snr_db=[20, 20]", "data.ecg.polarity_flip=true", "data.ecg.morphology_jitter=0.2",
             "data.ecg.fetal_hr_std=[4, 4]"]


@pytest.fixture(scope="module")
def realistic_ecg():
    return ecg.load(ecg_config(*REALISTIC))


def nuisance_only(*overrides):
    """Recordings whose mixture minus components is exactly the one nuisance switched on (no respiration)."""
    data = ecg.load(ecg_config("data.ecg.noise_amplitude=[0, 0]", "data.ecg.train_recordings=1", *overrides))
    return [(r.mixture.astype(np.float64) - r.components["maternal"] - r.components["fetal"], r)
            for r in all_recordings(data)]


def test_ecg_realistic_components_stay_clean(realistic_ecg):
    rate = ecg_config().data.sample_rate
    for recording in all_recordings(realistic_ecg):
        for name, signal in recording.components.items():
            power = np.abs(np.fft.rfft(signal * np.hanning(len(signal)))) ** 2
            frequencies = np.fft.rfftfreq(len(signal), 1 / rate)
            mains = (np.abs(frequencies - 50) < 0.5) | (np.abs(frequencies - 60) < 0.5)
            assert power[mains].sum() < 1e-3 * power.sum(), name  # no mains in the clean hearts


def test_ecg_white_noise_at_the_configured_snr():
    for noise, recording in nuisance_only("data.ecg.noise_snr_db=[20, 20]"):
        clean = recording.components["maternal"].astype(np.float64) + recording.components["fetal"]
        snr = 10 * np.log10(np.mean(clean ** 2) / np.mean(noise ** 2))
        assert snr == pytest.approx(20, abs=0.05)  # float32 rounding of the mixture only
        spectrum = np.abs(np.fft.rfft(noise)) ** 2
        halves = np.array_split(spectrum, 2)
        assert 0.8 < halves[0].sum() / halves[1].sum() < 1.25  # broadband: as much power above 64 Hz as below


def test_ecg_power_line_is_50_or_60_hz_with_harmonics():
    rate = ecg_config().data.sample_rate
    for noise, _ in nuisance_only("data.ecg.powerline_amplitude=[0.2, 0.2]", "seed=5"):
        spectrum = np.abs(np.fft.rfft(noise)) / (len(noise) / 2)
        frequencies = np.fft.rfftfreq(len(noise), 1 / rate)
        fundamental = frequencies[np.argmax(spectrum)]
        assert fundamental in (50.0, 60.0)
        assert spectrum.max() == pytest.approx(0.2, rel=1e-3)  # 12 s holds whole cycles of 50 and 60 Hz
        harmonic = spectrum[np.argmin(np.abs(frequencies - 2 * fundamental))]
        assert harmonic <= 0.2 / 2 * 1.001


def test_ecg_baseline_wander_is_slow_with_the_configured_peak():
    rate = ecg_config().data.sample_rate
    for noise, _ in nuisance_only("data.ecg.wander_amplitude=[0.5, 0.5]"):
        assert np.abs(noise).max() == pytest.approx(0.5, rel=1e-4)
        power = np.abs(np.fft.rfft(noise * np.hanning(len(noise)))) ** 2
        assert power[np.fft.rfftfreq(len(noise), 1 / rate) > 1.0].sum() < 1e-3 * power.sum()


def test_ecg_realistic_polarity_variability_and_events(realistic_ecg, ecg_data):
    rate = ecg_config().data.sample_rate
    signs, spread = set(), {"realistic": [], "plain": []}
    for kind, data in (("realistic", realistic_ecg), ("plain", ecg_data)):
        for recording in all_recordings(data):
            for name, signal in recording.components.items():
                events = recording.events[name]
                sign = np.sign(np.median(signal[events]))
                assert np.all(np.sign(signal[events]) == sign)  # every R peak on the same side
                if kind == "realistic":
                    signs.add(sign)
            spread[kind].append(np.std(np.diff(recording.events["fetal"])) / rate)
    assert signs == {-1.0, 1.0}  # 6 hearts: both polarities appear
    assert np.median(spread["realistic"]) > 2 * np.median(spread["plain"])  # fetal_hr_std 4 BPM vs ECGSYN's 1


def fwhm(signal):
    """Samples above half the largest value, in the contiguous run around it."""
    peak, half = int(np.argmax(signal)), signal.max() / 2
    left, right = peak, peak
    while left > 0 and signal[left - 1] > half:
        left -= 1
    while right < signal.size - 1 and signal[right + 1] > half:
        right += 1
    return right - left + 1


def test_ecg_fetal_qrs_scale_narrows_the_r_wave_and_keeps_its_height():
    # one heart at 140 BPM integrated at 2 kHz, as is and with its QRS at 0.6: the R wave (the beat's largest
    # value after the baseline) is 0.6 times as wide and as high above the T wave
    default = {name: list(values) for name, values in ecg_model.ECGSYN_WAVES.items()}
    narrow = ecg_model.narrowed_qrs(default, 0.6)
    assert narrow["ti"][0] == default["ti"][0] and narrow["ai"][4] == default["ai"][4]  # P and T untouched
    runs = [ecg._integrate([ecg._ode(seed=5, sfecg=2000, n=12, hrmean=140.0, hrstd=1e-6, sfint=2000, **waves)])[0]
            for waves in (default, narrow)]
    widths, heights = [], []
    for z in runs:
        r = 3 * 857 + int(np.argmax(z[3 * 857:4 * 857]))  # an R peak past the start-up (857 samples a beat)
        one = z[r - 428:r + 429] - np.median(z[r - 428:r + 429])
        widths.append(fwhm(one))
        heights.append(one[428] / one[428 + 100:428 + 429].max())  # R over T (T: 50-214 ms after R)
    assert abs(widths[1] / widths[0] - 0.6) < 0.08
    assert abs(heights[1] / heights[0] - 1) < 0.15


def test_multilead_fetal_qrs_scale_narrows_the_dipole_r_wave():
    theta = np.linspace(-np.pi, np.pi, 20001)
    dipoles = [leads._dipole(np.random.default_rng(3), theta, 140.0, 0.0, qrs) for qrs in (1.0, 0.7)]
    along = [np.abs(d).max(axis=1) for d in dipoles]  # the largest axis' magnitude: the R wave dominates
    assert abs(fwhm(along[1]) / fwhm(along[0]) - 0.7) < 0.05
    assert abs(along[1].max() / along[0].max() - 1) < 0.02


def test_ecg_realistic_fields_are_in_the_cache_key():
    assert ecg._cache_key(ecg_config()) != ecg._cache_key(ecg_config("data.ecg.polarity_flip=true"))
    assert ecg._cache_key(ecg_config()) != ecg._cache_key(ecg_config("data.ecg.fetal_qrs_scale=[0.6,0.8]"))


# ---- PPG ----

def test_ppg_mixture_is_exact_sum(ppg_data):
    for recording in all_recordings(ppg_data):
        np.testing.assert_array_equal(recording.mixture, recording.components["heart"] + recording.components["respiratory"])


def test_ppg_is_deterministic(ppg_data):
    assert_same(ppg_data, ppg.load(ppg_config()))
    other = ppg.load(ppg_config("seed=1"))
    assert not np.allclose(other["train"][0].mixture, ppg_data["train"][0].mixture)


def test_ppg_heart_rate(ppg_data):
    config = ppg_config()
    rate, (low, high) = config.data.sample_rate, config.data.ppg.heart_bpm
    rates = []
    for recording in all_recordings(ppg_data):
        peaks, _ = find_peaks(recording.components["heart"], prominence=0.5)
        rates.append(bpm(peaks, rate))
        assert low * (1 - TOLERANCE) <= rates[-1] <= high * (1 + TOLERANCE)
    assert np.ptp(rates) > 1  # drawn per recording


def test_ppg_respiration(ppg_data):
    config = ppg_config()
    params = config.data.ppg
    for recording in all_recordings(ppg_data):
        respiratory = recording.components["respiratory"]
        assert params.respiratory_depth[0] * 0.99 <= np.abs(respiratory).max() <= params.respiratory_depth[1]
        seconds = len(respiratory) / config.data.sample_rate
        crossings = zero_crossings(respiratory)
        assert 2 * params.breathing_hz[0] * seconds - 1 <= crossings <= 2 * params.breathing_hz[1] * seconds + 1


@pytest.mark.parametrize("variability", [0.0, 0.2])
def test_ppg_beat_variability(variability):
    config = ppg_config(f"data.ppg.beat_variability={variability}", "data.sample_rate=256", "data.ppg.seconds=60")
    for recording in all_recordings(ppg.load(config)):
        peaks, _ = find_peaks(recording.components["heart"], prominence=0.5)
        intervals = np.diff(peaks)
        spread = np.std(intervals) / np.mean(intervals)
        if variability == 0:
            assert np.ptp(intervals) <= 1
        else:
            assert 0.5 * variability <= spread <= 1.5 * variability


def test_ppg_components_are_ordered(ppg_data):
    swapped = ppg.load(ppg_config('data.components=["respiratory", "heart"]'))
    for full, picked in zip(all_recordings(ppg_data), all_recordings(swapped)):
        assert tuple(picked.components) == ("respiratory", "heart")
        np.testing.assert_array_equal(picked.mixture, full.mixture)


def test_ppg_events_are_systolic_peaks_and_breath_maxima(ppg_data):
    rate = ppg_config().data.sample_rate
    for recording in all_recordings(ppg_data):
        heart, respiratory = recording.components["heart"], recording.components["respiratory"]
        found, _ = find_peaks(heart, prominence=0.5)
        # the true systolic peaks are the prominent maxima, to within one sample (times are rounded to samples)
        assert abs(found.size - recording.events["heart"].size) <= 1
        inner = recording.events["heart"][(recording.events["heart"] > 2) & (recording.events["heart"] < heart.size - 3)]
        assert np.all(np.min(np.abs(inner[:, None] - found[None, :]), axis=1) <= 1)
        breaths = recording.events["respiratory"]
        assert np.all(respiratory[breaths] >= 0.99 * np.abs(respiratory).max())
        rate_from_crossings = zero_crossings(respiratory) / 2 / (respiratory.size / rate)
        assert 60 * rate_from_crossings == pytest.approx(
            60 * (breaths.size - 1) * rate / (breaths[-1] - breaths[0]), abs=60 / (respiratory.size / rate))


PPG_REALISTIC = ["data.ppg.morphology_jitter=0.25", "data.ppg.amplitude_modulation=[0.3, 0.3]",
                 "data.ppg.frequency_modulation=[0.1, 0.1]", "data.ppg.noise_snr_db=[20, 20]",
                 "data.ppg.scale=[0.01, 100]"]


def test_ppg_realistic_noise_snr_scale_and_clean_components():
    realistic = all_recordings(ppg.load(ppg_config(*PPG_REALISTIC)))
    plain = all_recordings(ppg.load(ppg_config()))
    factors = []
    for r in realistic:
        clean = r.components["heart"].astype(np.float64) + r.components["respiratory"]
        noise = r.mixture - clean
        centred = clean - clean.mean()
        assert 10 * np.log10(np.mean(centred ** 2) / np.mean(noise ** 2)) == pytest.approx(20, abs=0.1)
        factors.append(np.ptp(r.components["heart"]))
    assert max(factors) / min(factors) > 3  # one log-uniform scale per recording over 4 decades
    # the components are still clean two-Gaussian pulses and a sinusoid: no noise in them
    for r in realistic:
        heart = r.components["heart"] / np.ptp(r.components["heart"])
        assert np.std(np.diff(heart, 2)) < 0.1
    assert not np.allclose(realistic[0].components["heart"], plain[0].components["heart"])


def test_ppg_frequency_and_amplitude_modulation_follow_breathing():
    config = ppg_config("data.ppg.frequency_modulation=[0.1, 0.1]", "data.ppg.amplitude_modulation=[0.3, 0.3]",
                        "data.ppg.beat_variability=0", "data.sample_rate=256", "data.ppg.seconds=60")
    rate = config.data.sample_rate
    for recording in all_recordings(ppg.load(config)):
        peaks, breaths = recording.events["heart"], recording.events["respiratory"]
        intervals, heights = np.diff(peaks) / rate, recording.components["heart"][peaks]
        # both swing with the breathing: intervals by +-10% (well above the 1-sample rounding), heights by +-0.3
        assert 0.12 < np.ptp(intervals) / np.mean(intervals) < 0.3
        assert np.ptp(heights) > 0.4  # 1 +- 0.3 pulse heights (the mean is removed from the component)
        assert breaths.size >= 2


def test_ppg_breathing_variability_and_breath_shape():
    config = ppg_config("data.ppg.breathing_variability=0.3", "data.ppg.breathing_hz=[0.3, 0.3]",
                        "data.sample_rate=64", "data.ppg.seconds=60")
    rate = config.data.sample_rate
    for recording in all_recordings(ppg.load(config)):
        respiratory, breaths = recording.components["respiratory"], recording.events["respiratory"]
        intervals = np.diff(breaths) / rate
        assert 0.7 / 0.3 <= intervals.min() and intervals.max() <= 1 / (0.7 * 0.3)  # f within 0.3 (1 +- 0.3)
        assert np.std(intervals) / np.mean(intervals) > 0.03  # it wanders (constant: < 1 sample = 0.5%)
        assert np.all(respiratory[breaths] >= 0.98 * np.abs(respiratory).max())  # still the sinusoid's maxima
    shaped = ppg_config("data.ppg.breath_harmonic=[0.4, 0.4]", "data.ppg.breathing_hz=[0.25, 0.25]",
                        "data.ppg.seconds=40")  # whole cycles: the two tones fall on FFT bins
    for recording in all_recordings(ppg.load(shaped)):
        respiratory = recording.components["respiratory"].astype(np.float64)
        spectrum = np.abs(np.fft.rfft(respiratory * np.hanning(respiratory.size)))
        frequencies = np.fft.rfftfreq(respiratory.size, 1 / shaped.data.sample_rate)
        fundamental, second = (spectrum[np.argmin(np.abs(frequencies - f))] for f in (0.25, 0.5))
        assert second / fundamental == pytest.approx(0.4, rel=0.05)
        assert np.abs(respiratory).max() <= shaped.data.ppg.respiratory_depth[1] * (1 + 1e-6)


# sha256 of these small draws (mixtures, components, events in order) made by the generator BEFORE irregular breathing
# and motion were added (commit 9fab3e3): the paper data and ppg/2's data stay bit-identical with those fields at 0.
BEFORE_IRREGULAR = {
    "paper": "86ffd8986777c2748b0c0277d0fed4271f5f9006a12f8c29afc0a536da192699",
    "ppg2": "9fb50966080aa7832a33d9c1ec5f87abdf5d7f77137a4ff25609bf83afdf42a6",
}


def data_sha256(data):
    digest = hashlib.sha256()
    for r in all_recordings(data):
        for array in (r.mixture, *r.components.values(), *r.events.values()):
            digest.update(array.tobytes())
    return digest.hexdigest()


def test_ppg_irregular_breathing_fields_off_leave_the_data_bit_identical():
    assert data_sha256(ppg.load(ppg_config())) == BEFORE_IRREGULAR["paper"]
    off = ["data.ppg.breathing_hz=[0.1, 0.6]"] + [f"data.ppg.{f}=0" for f in
                                                  ("sigh_rate", "pause_rate", "rate_changes", "motion_rate")]
    ppg2 = load_config(REPO / "configs" / "ppg.json", overrides=[*PPG_SMALL, *off])
    assert data_sha256(ppg.load(ppg2)) == BEFORE_IRREGULAR["ppg2"]


def test_ppg_pauses_hold_the_breathing_still():
    config = ppg_config("data.ppg.pause_rate=6", "data.ppg.breathing_hz=[0.3, 0.3]", "data.ppg.seconds=60")
    rate = config.data.sample_rate
    for recording in all_recordings(ppg.load(config)):
        respiratory, breaths = recording.components["respiratory"], recording.events["respiratory"]
        gaps = np.diff(breaths) / rate
        # 6 pauses a minute of 3-10 s: some breath-to-breath gap spans a pause (a plain cycle is 3.33 s)
        assert gaps.max() > 1 / 0.3 + 2.5
        # inside the longest gap there is a stretch of >= 2 s where the baseline does not move
        a, b = breaths[np.argmax(gaps)], breaths[np.argmax(gaps) + 1]
        still = np.abs(np.diff(respiratory[a:b])) < 1e-4 * np.ptp(respiratory)
        longest = max((len(run) for run in "".join("1" if s else "0" for s in still).split("0")), default=0)
        assert longest >= 2 * rate


def test_ppg_sighs_deepen_single_breaths_and_every_modulation():
    common = ["data.ppg.breathing_hz=[0.25, 0.25]", "data.ppg.seconds=60", "data.ppg.respiratory_depth=[0.5, 0.5]",
              "data.ppg.amplitude_modulation=[0.2, 0.2]"]
    sighing = all_recordings(ppg.load(ppg_config(*common, "data.ppg.sigh_rate=2")))
    plain = all_recordings(ppg.load(ppg_config(*common)))
    deepest = []
    for s, p in zip(sighing, plain):
        # same breathing (phase and rate), deeper breaths where a sigh falls: peaks up to 0.5 x 3
        np.testing.assert_array_equal(s.events["respiratory"], p.events["respiratory"])
        heights = s.components["respiratory"][s.events["respiratory"]]
        assert heights.max() <= 0.5 * 3 * (1 + 1e-6)
        assert np.median(heights) == pytest.approx(0.5, rel=0.05)  # most breaths are untouched
        deepest.append(heights.max())
    assert max(deepest) > 0.5 * 1.7
    deeper = [np.ptp(s.components["heart"][s.events["heart"]]) > np.ptp(p.components["heart"][p.events["heart"]])
              for s, p in zip(sighing, plain)]
    assert any(deeper)  # the pulse heights (RIAV) swing more around a sigh too


def test_ppg_rate_changes_move_the_breathing_rate_within_the_range():
    config = ppg_config("data.ppg.rate_changes=3", "data.ppg.breathing_hz=[0.1, 0.6]", "data.ppg.seconds=120")
    rate = config.data.sample_rate
    spans = []
    for recording in all_recordings(ppg.load(config)):
        intervals = np.diff(recording.events["respiratory"]) / rate
        assert 1 / 0.6 - 0.1 <= intervals.min() and intervals.max() <= 1 / 0.1 + 0.1
        spans.append(intervals.max() / intervals.min())
    assert max(spans) > 1.5  # a constant rate would give 1 (to a sample)


def test_ppg_motion_artefacts_are_in_the_mixture_only():
    config = ppg_config("data.ppg.motion_rate=5", "data.ppg.seconds=60")
    moving, plain = all_recordings(ppg.load(config)), all_recordings(ppg.load(ppg_config("data.ppg.seconds=60")))
    for m, p in zip(moving, plain):
        for name in m.components:
            np.testing.assert_array_equal(m.components[name], p.components[name])
        artefact = m.mixture.astype(np.float64) - p.mixture
        assert np.sqrt(np.mean(artefact ** 2)) > 0.05  # bursts of RMS 0.2-2 over part of the minute
        spectrum = np.abs(np.fft.rfft(artefact)) ** 2
        frequencies = np.fft.rfftfreq(artefact.size, 1 / config.data.sample_rate)
        assert spectrum[frequencies > 6].sum() < 0.01 * spectrum.sum()  # band-limited to 0.1-4 Hz


@pytest.mark.parametrize("field", ["sigh_rate", "pause_rate", "rate_changes", "motion_rate", "ectopic_rate"])
def test_ppg_irregular_rates_must_be_sane(field):
    with pytest.raises(ConfigError, match=rf"data\.ppg\.{field}"):
        ppg_config(f"data.ppg.{field}=-1")


def test_ppg_vasomotion_is_a_slow_wave_in_heart_only():
    """vasomotion [0.3, 0.3]: the heart component gains a zero-mean wave below 0.15 Hz (two bands at RMS 0.3 each,
    Butterworth skirts aside), breathing and its events are untouched, and the mixture is still heart + respiratory."""
    common = ["data.ppg.seconds=120", "data.ppg.heart_bpm=[60, 90]"]
    slow, plain = (all_recordings(ppg.load(ppg_config(*common, *extra)))
                   for extra in (["data.ppg.vasomotion=[0.3, 0.3]"], []))
    rate = ppg_config().data.sample_rate
    for s, p in zip(slow, plain):
        np.testing.assert_array_equal(s.components["respiratory"], p.components["respiratory"])
        for name in s.events:
            np.testing.assert_array_equal(s.events[name], p.events[name])
        np.testing.assert_array_equal(s.mixture, s.components["heart"] + s.components["respiratory"])
        wave = s.components["heart"].astype(np.float64) - p.components["heart"]
        assert abs(wave.mean()) < 1e-6
        # two independent bands at RMS 0.3: sqrt(0.09 + 0.09) = 0.42, give or take their (small) correlation
        assert 0.3 < np.sqrt(np.mean(wave ** 2)) < 0.55
        spectrum = np.abs(np.fft.rfft(wave)) ** 2
        frequencies = np.fft.rfftfreq(wave.size, 1 / rate)
        assert spectrum[frequencies > 0.3].sum() < 0.01 * spectrum.sum()  # Butterworth skirts above 0.15 Hz
        assert spectrum[frequencies < 0.04].sum() > 0.2 * spectrum.sum()  # the VLF band is there
        assert spectrum[(frequencies > 0.05) & (frequencies < 0.14)].sum() > 0.2 * spectrum.sum()  # and the LF one
    assert data_sha256(ppg.load(ppg_config("data.ppg.vasomotion=null"))) == BEFORE_IRREGULAR["paper"]


def test_ppg_vasomotion_bands_choose_where_the_slow_wave_lies():
    """vasomotion_bands [[0.01, 0.04]]: the VLF drift alone, one band at RMS 0.3, with almost nothing left at the
    breathing band's lowest rates (0.08 Hz and up; the default bands put a fifth of it in 0.05-0.14 Hz)."""
    common = ["data.ppg.seconds=120", "data.ppg.heart_bpm=[60, 90]", "data.ppg.train_recordings=4"]
    slow, plain = (all_recordings(ppg.load(ppg_config(*common, *extra))) for extra in
                   (["data.ppg.vasomotion=[0.3, 0.3]", "data.ppg.vasomotion_bands=[[0.01, 0.04]]"], []))
    rate = ppg_config().data.sample_rate
    for s, p in zip(slow, plain):
        np.testing.assert_array_equal(s.components["respiratory"], p.components["respiratory"])
        wave = s.components["heart"].astype(np.float64) - p.components["heart"]
        assert 0.27 < np.sqrt(np.mean(wave ** 2)) < 0.33
        spectrum = np.abs(np.fft.rfft(wave)) ** 2
        frequencies = np.fft.rfftfreq(wave.size, 1 / rate)
        assert spectrum[frequencies > 0.08].sum() < 0.03 * spectrum.sum()
        assert spectrum[(frequencies > 0.008) & (frequencies < 0.045)].sum() > 0.8 * spectrum.sum()


@pytest.mark.parametrize("value", ["[]", "[[0.04, 0.01]]", "[[0, 0.04]]", "[[0.01, 500]]", "[[0.01]]"])
def test_ppg_vasomotion_bands_must_be_sane(value):
    with pytest.raises(ConfigError, match=r"data\.ppg\.vasomotion_bands"):
        ppg_config(f"data.ppg.vasomotion_bands={value}")


@pytest.mark.parametrize("value", ["[0.5, 0.2]", "[-0.1, 0.2]", "[0.1, 11]"])
def test_ppg_vasomotion_must_be_a_sane_range(value):
    with pytest.raises(ConfigError, match=r"data\.ppg\.vasomotion: must be \[low, high\]"):
        ppg_config(f"data.ppg.vasomotion={value}")


def test_ppg_breathing_target_is_the_breath_wave_at_the_pulse_amplitude():
    """respiratory_target "breathing": the mixture, heart and events stay those of "wander"; respiratory is the
    wander's own waveform at peak BREATHING_PEAK (1 pulse amplitude) instead of the recording's depth, so it is
    not in the mixture: mixture - heart is the wander, not it. With sighs and scale on (configs/ppg.json) the ratio
    to the wander is still one constant per recording."""
    for config, overrides in ((ppg_config, []), (lambda *o: load_config(REPO / "configs" / "ppg.json", [*PPG_SMALL, *o]),
                                                 ["data.ppg.sigh_rate=6"])):
        wander, breathing = (all_recordings(ppg.load(config(*overrides, f"data.ppg.respiratory_target={target}")))
                             for target in ("wander", "breathing"))
        for w, b in zip(wander, breathing):
            np.testing.assert_array_equal(b.mixture, w.mixture)
            np.testing.assert_array_equal(b.components["heart"], w.components["heart"])
            for name in w.events:
                np.testing.assert_array_equal(b.events[name], w.events[name])
            ratio = b.components["respiratory"].astype(np.float64) / w.components["respiratory"]
            finite = np.abs(w.components["respiratory"]) > 1e-3 * np.abs(w.components["respiratory"]).max()
            np.testing.assert_allclose(ratio[finite], np.median(ratio[finite]), rtol=1e-4)
            if not overrides:  # no scale, no sighs: a sine of peak 1, sampled
                assert 0.99 < np.abs(b.components["respiratory"]).max() <= 1.0 + 1e-6
                assert np.median(ratio[finite]) > 1  # respiratory_depth [0.2, 1.0] in the paper config
            assert not np.allclose(b.mixture - b.components["heart"], b.components["respiratory"], atol=1e-3)


def test_ppg_breathing_prior_draws_log_normal_rates_inside_the_range():
    """breathing_prior [median, sigma]: the draws' median and log-spread match it (20000 draws, NumPy's own
    log-normal as the reference), every draw stays inside breathing_hz (truncated), and recordings breathe at them."""
    params = ppg_config("data.ppg.breathing_hz=[0.067, 0.667]", "data.ppg.breathing_prior=[0.267, 0.3]").data.ppg
    rates = np.array([ppg._breathing_rate(np.random.default_rng(i), params) for i in range(20000)])
    reference = np.random.default_rng(0).lognormal(np.log(0.267), 0.3, 20000)
    assert np.median(rates) == pytest.approx(np.median(reference), rel=0.02)
    assert np.std(np.log(rates)) == pytest.approx(0.3, rel=0.03)
    assert rates.min() >= 0.067 and rates.max() <= 0.667
    tight = ppg_config("data.ppg.breathing_hz=[0.25, 0.3]", "data.ppg.breathing_prior=[0.267, 0.3]").data.ppg
    clipped = np.array([ppg._breathing_rate(np.random.default_rng(i), tight) for i in range(2000)])
    assert clipped.min() >= 0.25 and clipped.max() <= 0.3
    # truncated, not clipped onto the edges: the share below the median, from the log-normal CDF
    low, high = (norm.cdf(np.log(edge / 0.267) / 0.3) for edge in (0.25, 0.3))
    assert np.mean(clipped < 0.267) == pytest.approx((0.5 - low) / (high - low), abs=0.03)
    config = ppg_config("data.ppg.breathing_hz=[0.2, 0.4]", "data.ppg.breathing_prior=[0.3, 0.1]",
                        "data.ppg.seconds=60")
    for recording in all_recordings(ppg.load(config)):
        period = np.median(np.diff(recording.events["respiratory"])) / config.data.sample_rate
        assert 0.2 - 0.01 <= 1 / period <= 0.4 + 0.01


@pytest.mark.parametrize("prior", ["[0.05, 0.3]", "[0.267, 0]", "[0.267, NaN]"])
def test_ppg_breathing_prior_must_sit_inside_the_range(prior):
    with pytest.raises(ConfigError, match=r"data\.ppg\.breathing_prior"):
        ppg_config("data.ppg.breathing_hz=[0.067, 0.667]", f"data.ppg.breathing_prior={prior}")


def test_ppg_premature_beats_come_early_smaller_and_keep_the_next_beat_in_time():
    """ectopic_rate 6 /min at a steady 60 BPM: the breathing stays that of the plain recording; a premature beat's
    peak comes 0.2-0.5 s early (after 0.5-0.8 of its interval) at under 0.8 of its height, every other peak is where
    it was, and the mixture is still heart + respiratory."""
    common = ["data.ppg.seconds=60", "data.ppg.heart_bpm=[60, 60]", "data.ppg.beat_variability=0"]
    early, plain = (all_recordings(ppg.load(ppg_config(*common, *extra))) for extra in (["data.ppg.ectopic_rate=6"], []))
    rate = ppg_config().data.sample_rate
    moved = 0
    for e, p in zip(early, plain):
        np.testing.assert_array_equal(e.components["respiratory"], p.components["respiratory"])
        np.testing.assert_array_equal(e.mixture, e.components["heart"] + e.components["respiratory"])
        mine, theirs = e.events["heart"], p.events["heart"]
        new = mine[np.min(np.abs(mine[:, None] - theirs[None, :]), axis=1) > 1]  # peaks the plain one lacks
        gone = theirs[np.min(np.abs(theirs[:, None] - mine[None, :]), axis=1) > 1]
        for peak in new[(new > rate) & (new < mine[-1] - rate)]:  # inside: its plain self is 0.2-0.5 s later
            later = (gone - peak) / rate
            assert np.any((later >= 0.2 - 1 / rate) & (later <= 0.5 + 1 / rate))
            plain_height = p.components["heart"][gone[np.argmin(np.abs(later - 0.35))]]
            assert e.components["heart"][peak] < 0.8 * 1.1 * plain_height + 0.1  # AM 0.1; the diastole beneath
            moved += 1
        assert abs(new.size - gone.size) <= 2  # at the edges a peak may move in or out
    assert 3 <= moved <= 40  # about 6 a minute over 6 recordings of a minute, fewer where two would touch
    assert data_sha256(ppg.load(ppg_config("data.ppg.ectopic_rate=0"))) == BEFORE_IRREGULAR["paper"]
