"""Owns the synthetic abdominal ECG source: maternal + fetal ECGSYN waveforms, nuisances, true R peaks; cached."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys

import numpy as np
import signalz
import signalz.misc

from cass_tf.atomic import writing
from cass_tf.config import Config, ECGConfig
from cass_tf.data import Recording

# Model (after the CASS paper's ECG experiment):
#   mixture = maternal + fetal + respiration, with maternal and fetal the targets.
#   maternal, fetal: ECGSYN (McSharry et al., "A dynamical model for generating synthetic electrocardiogram
#     signals", IEEE TBME 50(3), 2003) via signalz.ecgsyn with its integrator fixed (see _ecgsyn); mean heart
#     rate uniform in maternal_bpm / fetal_bpm, cropped at a random start, baseline (median) removed. The
#     maternal peak-to-peak amplitude is 1; the fetal one is 1 / r with r uniform in amplitude_ratio.
#   respiration: A(t) sin(phase(t)), with the frequency and amplitude drawn once (uniform in noise_hz and
#     noise_amplitude, amplitude relative to the maternal peak-to-peak) and then wandering slowly: both are
#     interpolated linearly between knots every KNOT_SECONDS, each knot within +-FREQUENCY_WANDER /
#     +-AMPLITUDE_WANDER of the drawn value and clipped to the configured range.
#   events: the true R-peak sample indices of each clean component (Recording.events), peak-picked on the clean
#     component (ECGSYN's own peak labels undercount at fetal rates): maxima of polarity * component at least
#     half the shortest configured beat interval apart and within PEAK_FRACTION of its largest one.
#
# Realistic setting (ECGConfig fields, all off by default; configs/ecg.json turns them on). Drawn from a
# second generator spawned from the recording's seed, so the plain setting's recordings are unchanged. The ranges
# in configs/ecg.json follow, from memory of the papers rather than a re-reading, the FECGSYN simulator
# (Behar, Andreotti, Zaunseder, Li, Oster, Clifford, "An ECG simulator for generating maternal-foetal activity
# mixtures on abdominal ECG recordings", Physiol. Meas. 35(8), 2014) and its stress-test database (Andreotti,
# Behar, Zaunseder, Oster, Clifford, "An open-source framework for stress-testing non-invasive foetal ECG
# extraction algorithms", Physiol. Meas. 37(5), 2016): additive noise at 0-12 dB SNR against the maternal ECG
# there (coloured NSTDB noise; our white noise spreads its power over all bins, so the range is shifted up),
# baseline wander below 0.5 Hz of the order of the QRS, mains at 50/60 Hz, foetal heart rates 110-170 BPM with
# beat-to-beat variability, per-heart projections (random dipole orientation: amplitude and sign), and
# foetal:maternal amplitude ratios from about 1:2 to 1:20 across electrode positions and gestational ages (our
# realistic config: 1:1.5-1:15, white noise at 10-30 dB, mains up to 0.2 of the maternal peak-to-peak).
#   projection: each heart's waveform is multiplied by a random sign (polarity_flip) and ECGSYN's Gaussian
#     angles, heights and widths are each scaled by 1 + U(-morphology_jitter, +morphology_jitter) per heart.
#   fetal heart-rate variability: ECGSYN's RR process std hrstd uniform in fetal_hr_std BPM.
#   wander: WANDER_TONES sinusoids at random frequencies in WANDER_HZ and phases, scaled to a peak amplitude
#     uniform in wander_amplitude.
#   power line: mains at 50 or 60 Hz (one each way), fundamental amplitude uniform in powerline_amplitude, each
#     harmonic k below Nyquist at U(0, 1/k) of it, random phases.
#   broadband noise: white Gaussian scaled to an SNR uniform in noise_snr_db against the maternal + fetal power.
KNOT_SECONDS = 5.0
FREQUENCY_WANDER = 0.1
AMPLITUDE_WANDER = 0.2
SKIP_SECONDS = 1.0  # never crop from ECGSYN's first second (its ODE starts from a fixed state)
ATTEMPTS = 5  # ECGSYN raises IndexError for ~0.2% of heart rates; a failed draw is redrawn
PROGRESS_EVERY = 32  # recordings between progress lines (ECGSYN takes ~1 s per recording)
CACHE_VERSION = 2  # bump when the generator changes, so old cache files are not reused
PEAK_FRACTION = 0.5
WANDER_HZ = (0.05, 0.5)
WANDER_TONES = 4
MAINS_HZ = (50.0, 60.0)
ECGSYN_WAVES = {"ti": (-70.0, -15.0, 0.0, 15.0, 100.0), "ai": (1.2, -5.0, 30.0, -7.5, 0.75),
                "bi": (0.25, 0.1, 0.1, 0.1, 0.4)}  # signalz.ecgsyn's defaults (P, Q, R, S, T)
ECGSYN_HR_STD = 1.0  # signalz.ecgsyn's default hrstd (BPM)
HEARTS = ("maternal", "fetal")

_memory: dict[str, dict[str, list[Recording]]] = {}


def load(config: Config) -> dict[str, list[Recording]]:
    """{"train": [...], "test": [...]} synthetic abdominal ECG recordings, cached in memory and in data.cache_dir."""
    key = _cache_key(config)
    if key not in _memory:
        _memory[key] = _recordings(_load_or_generate(config, key), config.data.components)
    return {split: list(recordings) for split, recordings in _memory[key].items()}


def clear_cache() -> None:
    """Forgets the recordings cached in memory (the on-disk cache stays)."""
    _memory.clear()


def _cache_key(config: Config) -> str:
    return json.dumps({
        "version": CACHE_VERSION,
        "ecg": dataclasses.asdict(config.data.ecg),
        "sample_rate": config.data.sample_rate,
        "seed": config.seed,
        "components": list(config.data.components),
    }, sort_keys=True)


def _load_or_generate(config: Config, key: str) -> dict[str, np.ndarray]:
    if not config.data.cache_dir:
        return _generate(config)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = os.path.join(config.data.cache_dir, f"ecg-{digest}.npz")
    if os.path.exists(path):
        with np.load(path) as stored:
            return dict(stored)
    arrays = _generate(config)
    _save(path, arrays)
    return arrays


def _save(path: str, arrays: dict[str, np.ndarray]) -> None:
    with writing(path, "wb") as f:
        np.savez(f, **arrays)


def _recordings(arrays: dict[str, np.ndarray], components: tuple[str, ...]) -> dict[str, list[Recording]]:
    for array in arrays.values():
        array.setflags(write=False)
    return {
        split: [
            Recording(
                name=f"ecg-{split}-{i:03d}",
                mixture=arrays[f"{split}_mixture"][i],
                components={name: arrays[f"{split}_{name}"][i] for name in components},
                events={name: _unpad(arrays[f"{split}_{name}_events"][i]) for name in components},
            )
            for i in range(len(arrays[f"{split}_mixture"]))
        ]
        for split in ("train", "test")
    }


def _unpad(events: np.ndarray) -> np.ndarray:
    events = events[events >= 0]
    events.setflags(write=False)
    return events


def _generate(config: Config) -> dict[str, np.ndarray]:
    """Arrays "<split>_mixture", "<split>_<component>" (recordings, samples) float32 and "<split>_<component>_events"
    (recordings, most peaks) int64 R-peak indices padded with -1."""
    params = config.data.ecg
    rate = config.data.sample_rate
    _check(params, rate)
    samples = round(params.seconds * rate)
    train, test = np.random.SeedSequence(config.seed).spawn(2)
    counts = {"train": params.train_recordings, "test": params.test_recordings}
    arrays = {}
    total, done = sum(counts.values()), 0
    for split, root in (("train", train), ("test", test)):
        signals = []
        for seed in root.spawn(counts[split]):
            signals.append(_recording(seed, params, rate, samples))
            done += 1
            if done % PROGRESS_EVERY == 0 or done == total:
                print(f"data: generated {done}/{total} synthetic ECG recordings", file=sys.stderr, flush=True)
        for name in ("mixture",) + config.data.components:
            arrays[f"{split}_{name}"] = np.stack([signal[name] for signal in signals])
        for name in config.data.components:
            events = [signal[f"{name}_events"] for signal in signals]
            padded = np.full((len(events), max(e.size for e in events)), -1, np.int64)
            for row, e in zip(padded, events):
                row[:e.size] = e
            arrays[f"{split}_{name}_events"] = padded
    return arrays


def _check(params: ECGConfig, rate: int) -> None:
    for name in ("maternal_bpm", "fetal_bpm"):
        if getattr(params, name)[0] <= 0:
            raise ValueError(f"data.ecg.{name}: heart rates must be > 0 BPM, got {list(getattr(params, name))}")
    if params.noise_hz[1] >= rate / 2:
        raise ValueError(f"data.ecg.noise_hz: above the Nyquist rate of data.sample_rate, got {list(params.noise_hz)}")


def _recording(seed: np.random.SeedSequence, params: ECGConfig, rate: int, samples: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    realism = np.random.default_rng(seed.spawn(1)[0])  # every draw of the realistic setting; none when it is off
    signs = {h: (realism.choice([-1.0, 1.0]) if params.polarity_flip else 1.0) for h in HEARTS}
    waves = {h: _jittered_waves(realism, params.morphology_jitter) for h in HEARTS}
    hr_std = realism.uniform(*params.fetal_hr_std) if params.fetal_hr_std is not None else ECGSYN_HR_STD
    maternal = signs["maternal"] * _normalise(_ecg(rng, params, "maternal_bpm", rate, samples, waves["maternal"]))
    fetal = signs["fetal"] * _normalise(_ecg(rng, params, "fetal_bpm", rate, samples, waves["fetal"], hr_std)) \
        / rng.uniform(*params.amplitude_ratio)
    noise = _respiration(rng, params, rate, samples) + _nuisances(realism, params, rate, maternal + fetal)
    return {
        "mixture": (maternal + fetal + noise).astype(np.float32),
        "maternal": maternal.astype(np.float32),
        "fetal": fetal.astype(np.float32),
        "maternal_events": _r_peaks(signs["maternal"] * maternal, rate, params.maternal_bpm[1] + 3 * ECGSYN_HR_STD),
        "fetal_events": _r_peaks(signs["fetal"] * fetal, rate, params.fetal_bpm[1] + 3 * hr_std),
    }


def _jittered_waves(rng: np.random.Generator, jitter: float) -> dict[str, list[float]]:
    """ECGSYN's ti/ai/bi, each value scaled by 1 + U(-jitter, jitter) (no draws when jitter is 0)."""
    if jitter == 0:
        return {name: list(values) for name, values in ECGSYN_WAVES.items()}
    return {name: list(np.asarray(values) * (1 + rng.uniform(-jitter, jitter, len(values))))
            for name, values in ECGSYN_WAVES.items()}


def _nuisances(rng: np.random.Generator, params: ECGConfig, rate: int, clean: np.ndarray) -> np.ndarray:
    """Baseline wander + power line + white noise as configured (zeros when all are off)."""
    t = np.arange(clean.size) / rate
    total = np.zeros(clean.size)
    if params.wander_amplitude is not None:
        tones = sum(np.sin(2 * np.pi * rng.uniform(*WANDER_HZ) * t + rng.uniform(0, 2 * np.pi))
                    for _ in range(WANDER_TONES))
        total += rng.uniform(*params.wander_amplitude) * tones / np.max(np.abs(tones))
    if params.powerline_amplitude is not None:
        mains, amplitude = rng.choice(MAINS_HZ), rng.uniform(*params.powerline_amplitude)
        for k in range(1, int((rate / 2) // mains) + 1):
            if k * mains < rate / 2:
                gain = 1.0 if k == 1 else rng.uniform(0, 1 / k)
                total += amplitude * gain * np.sin(2 * np.pi * k * mains * t + rng.uniform(0, 2 * np.pi))
    if params.noise_snr_db is not None:
        snr, white = rng.uniform(*params.noise_snr_db), rng.standard_normal(clean.size)
        total += white * np.sqrt(np.mean(clean ** 2) / np.mean(white ** 2) / 10 ** (snr / 10))
    return total


def _r_peaks(upright: np.ndarray, rate: int, max_bpm: float) -> np.ndarray:
    """R-peak indices of a clean ECG with its R waves positive (see the model notes at the top)."""
    from scipy.signal import find_peaks

    peaks, _ = find_peaks(upright, height=PEAK_FRACTION * np.max(upright), distance=max(1, int(30 * rate / max_bpm)))
    return peaks.astype(np.int64)


def _ecg(rng: np.random.Generator, params: ECGConfig, field: str, rate: int, samples: int,
         waves: dict[str, list[float]], hr_std: float = ECGSYN_HR_STD) -> np.ndarray:
    """An ECGSYN waveform of `samples` samples cropped at a random start; heart rate uniform in params.<field>."""
    skip = round(SKIP_SECONDS * rate)
    for _ in range(ATTEMPTS):
        bpm = rng.uniform(*getattr(params, field))
        seed = int(rng.integers(2**32))
        beats = math.ceil((params.seconds + 2 * SKIP_SECONDS) * bpm / 60)
        try:
            signal = _ecgsyn(seed, sfecg=rate, n=beats, hrmean=bpm, hrstd=hr_std, sfint=params.integration_rate,
                             **waves)
        except IndexError:  # ECGSYN's RR loop indexes one past its series when a beat lands on the last sample
            continue
        if len(signal) < skip + samples or not np.all(np.isfinite(signal)):
            raise ValueError(f"data.ecg.{field}: ECGSYN gave no usable {params.seconds} s waveform at {bpm:.1f} BPM")
        start = rng.integers(skip, len(signal) - samples + 1)
        return signal[start:start + samples]
    raise ValueError(f"data.ecg.{field}: ECGSYN failed {ATTEMPTS} times in a row for rates in {list(getattr(params, field))}")


def _ecgsyn(seed: int, **kwargs) -> np.ndarray:
    """signalz.ecgsyn seeded with `seed`, integrated with a correct RK4 step; global state restored afterwards.

    signalz's Runge-Kutta step sums its four slopes with equal weights, (k1 + k2 + k3 + k4) / 6 instead of
    (k1 + 2 k2 + 2 k3 + k4) / 6, so its ECGSYN runs at 2/3 speed: every heart rate comes out 2/3 of hrmean.
    """
    state, step = np.random.get_state(), signalz.misc.ode45_step
    try:
        np.random.seed(seed)
        signalz.misc.ode45_step = _rk4_step
        signal, _ = signalz.ecgsyn(**kwargs)
    finally:
        np.random.set_state(state)
        signalz.misc.ode45_step = step
    return np.asarray(signal, dtype=np.float64)


def _rk4_step(f, x, t, dt, *args):
    k1 = dt * f(t, x, *args)
    k2 = dt * f(t + dt / 2, x + k1 / 2, *args)
    k3 = dt * f(t + dt / 2, x + k2 / 2, *args)
    k4 = dt * f(t + dt, x + k3, *args)
    return x + (k1 + 2 * k2 + 2 * k3 + k4) / 6


def _normalise(signal: np.ndarray) -> np.ndarray:
    """Baseline (median) at 0, peak-to-peak amplitude 1."""
    return (signal - np.median(signal)) / np.ptp(signal)


def _respiration(rng: np.random.Generator, params: ECGConfig, rate: int, samples: int) -> np.ndarray:
    """A sinusoid whose frequency and amplitude wander slowly within noise_hz and noise_amplitude."""
    knots = np.arange(math.ceil(samples / rate / KNOT_SECONDS) + 1) * KNOT_SECONDS
    frequency = _wander(rng, params.noise_hz, FREQUENCY_WANDER, len(knots))
    amplitude = _wander(rng, params.noise_amplitude, AMPLITUDE_WANDER, len(knots))
    t = np.arange(samples) / rate
    phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.cumsum(np.interp(t, knots, frequency)) / rate
    return np.interp(t, knots, amplitude) * np.sin(phase)


def _wander(rng: np.random.Generator, bounds: tuple[float, float], relative: float, count: int) -> np.ndarray:
    """`count` knot values within +-relative of one value drawn uniform in bounds, clipped to bounds."""
    centre = rng.uniform(*bounds)
    return np.clip(centre * (1 + relative * rng.uniform(-1, 1, count)), *bounds)
