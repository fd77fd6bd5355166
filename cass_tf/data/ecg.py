"""Owns the synthetic abdominal ECG source: maternal + fetal ECGSYN waveforms, nuisances, true R peaks; cached.

data.ecg.leads > 1 switches to cass_tf.data.leads (multi-lead recordings); one lead is the generator below."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import math
import multiprocessing
import os
import sys
from typing import Iterable

import numpy as np
from scipy.signal import find_peaks

from cass_tf.atomic import writing
from cass_tf.config import Config, ECGConfig
from cass_tf.data import Recording, leads
from cass_tf.data.ecg_model import (ECGSYN_HR_STD, jittered_waves, mains, narrowed_qrs, respiration, rr_series,
                                    wander_tones)

# Model (after the CASS paper's ECG experiment; the pieces shared with the multi-lead generator, and their constants,
# live in cass_tf.data.ecg_model):
#   mixture = maternal + fetal + respiration, with maternal and fetal the targets.
#   maternal, fetal: ECGSYN (McSharry et al., "A dynamical model for generating synthetic electrocardiogram
#     signals", IEEE TBME 50(3), 2003) via signalz.ecgsyn with its integrator fixed (see _ode, _rk4); mean heart
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
#   fetal QRS length: the fetal Q, R and S waves' angles and widths times U(fetal_qrs_scale) (ecg_model.narrowed_qrs,
#     where the literature is cited), so that the fetal QRS lasts about 50 ms rather than ECGSYN's adult-like 70 ms.
#   wander: WANDER_TONES sinusoids at random frequencies in WANDER_HZ and phases, scaled to a peak amplitude
#     uniform in wander_amplitude.
#   power line: mains at 50 or 60 Hz (one each way), fundamental amplitude uniform in powerline_amplitude, each
#     harmonic k below Nyquist at U(0, 1/k) of it, random phases.
#   broadband noise: white Gaussian scaled to an SNR uniform in noise_snr_db against the maternal + fetal power.
SKIP_SECONDS = 1.0  # never crop from ECGSYN's first second (its ODE starts from a fixed state)
ATTEMPTS = 5  # ECGSYN raises IndexError for ~0.2% of heart rates; a failed draw is redrawn
CHUNK = 64  # most recordings integrated as one batch (one pool task, one progress line)
WORKERS_ENV = "CASS_TF_DATA_WORKERS"
CACHE_VERSION = 2  # bump when the generator changes, so old cache files are not reused
PEAK_FRACTION = 0.5
HEARTS = ("maternal", "fetal")

_memory: dict[str, dict[str, list[Recording]]] = {}


def load(config: Config) -> dict[str, list[Recording]]:
    """{"train": [...], "test": [...]} synthetic abdominal ECG recordings, cached in memory and in data.cache_dir;
    with model.cancellation, as the networks see them (cass_tf.cancellation.cancelled; the cache keeps them raw)."""
    key = _cache_key(config)
    if key not in _memory:
        _memory[key] = _recordings(_load_or_generate(config, key), config.data.components)
    recordings = _memory[key]
    if config.model.cancellation != "none":
        memory_key = key + "|" + config.model.cancellation
        if memory_key not in _memory:
            rate, multilead = config.data.sample_rate, config.model.multilead
            _memory[memory_key] = {split: [_cancelled(r, rate, multilead) for r in split_recordings]
                                   for split, split_recordings in recordings.items()}
        recordings = _memory[memory_key]
    return {split: list(split_recordings) for split, split_recordings in recordings.items()}


def _cancelled(recording: Recording, rate: int, multilead: bool) -> Recording:
    # imported here, not at the top: it needs TensorFlow (cass_tf.metrics), the plain generators do not
    from cass_tf import cancellation
    residual = cancellation.cancelled(recording.mixture, recording.components, rate, multilead)
    return dataclasses.replace(recording, mixture=residual.mixture, components=residual.components)


def clear_cache() -> None:
    """Forgets the recordings cached in memory (the on-disk cache stays)."""
    _memory.clear()


def _cache_key(config: Config) -> str:
    params = dataclasses.asdict(config.data.ecg)
    if params["leads"] == 1:  # one lead: the key (and cache file) of the configs from before data.ecg.leads
        del params["leads"]
    if params["fetal_qrs_scale"] is None:  # the same for configs from before data.ecg.fetal_qrs_scale
        del params["fetal_qrs_scale"]
    del params["one_lead_recordings"]  # drawn by a config of their own (cass_tf.data.load_recordings)
    return json.dumps({
        "version": CACHE_VERSION,
        "ecg": params,
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
    """Arrays "<split>_mixture", "<split>_<component>" (recordings[, leads], samples) float32 and
    "<split>_<component>_events" (recordings, most peaks) int64 R-peak indices padded with -1."""
    params = config.data.ecg
    rate = config.data.sample_rate
    _check(params, rate)
    samples = round(params.seconds * rate)
    train, test = np.random.SeedSequence(config.seed).spawn(2)
    counts = {"train": params.train_recordings, "test": params.test_recordings}
    seeds = train.spawn(counts["train"]) + test.spawn(counts["test"])
    signals = _signals(seeds, params, rate, samples)  # (leads, samples) arrays when params.leads > 1
    arrays, first = {}, 0
    for split in ("train", "test"):
        split_signals, first = signals[first:first + counts[split]], first + counts[split]
        for name in ("mixture",) + config.data.components:
            arrays[f"{split}_{name}"] = np.stack([signal[name] for signal in split_signals])
        for name in config.data.components:
            events = [signal[f"{name}_events"] for signal in split_signals]
            padded = np.full((len(events), max(e.size for e in events)), -1, np.int64)
            for row, e in zip(padded, events):
                row[:e.size] = e
            arrays[f"{split}_{name}_events"] = padded
    return arrays


def workers() -> int:
    """Processes that generate recordings: $CASS_TF_DATA_WORKERS, else the CPU cores this process may use."""
    value = os.environ.get(WORKERS_ENV)
    if value is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if not value.strip().isdigit() or int(value) < 1:
        raise ValueError(f"{WORKERS_ENV}: must be a whole number of processes >= 1, got {value!r}")
    return int(value)


def _signals(seeds: list[np.random.SeedSequence], params: ECGConfig, rate: int,
             samples: int) -> list[dict[str, np.ndarray]]:
    """The recordings of `seeds`, in order, generated a chunk at a time by a process pool (in this process when one
    worker or one chunk suffices): the same arrays either way, since each recording depends on its seed alone."""
    chunks = _chunks(seeds, workers())
    if params.leads > 1:
        work = functools.partial(leads.chunk, params=params, rate=rate, samples=samples)
    else:
        work = functools.partial(_chunk, params=params, rate=rate, samples=samples)
    if len(chunks) == 1 or workers() == 1:
        return _progress(map(work, chunks), len(seeds))
    # forked where possible: a spawned child re-runs the caller's main script, which breaks scripts without an
    # `if __name__ == "__main__"` guard; a forked one only runs NumPy and SciPy, never the TensorFlow of its parent
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with concurrent.futures.ProcessPoolExecutor(min(workers(), len(chunks)),
                                                mp_context=multiprocessing.get_context(method)) as pool:
        return _progress(pool.map(work, chunks), len(seeds))


def _chunks(seeds: list[np.random.SeedSequence], count: int) -> list[list[np.random.SeedSequence]]:
    """`seeds` in chunks of nearly equal size, at most CHUNK, as few as may be with each of `count` workers given as
    many (a batch's integration costs about the same whatever its size, so fewer, larger chunks are faster)."""
    chunks = -(-len(seeds) // CHUNK)
    chunks = min(-(-chunks // count) * count, len(seeds))
    size = -(-len(seeds) // chunks)
    return [seeds[i:i + size] for i in range(0, len(seeds), size)]


def _progress(chunks: Iterable[list[dict[str, np.ndarray]]], total: int) -> list[dict[str, np.ndarray]]:
    """The chunks' recordings in one list, with a progress line on stderr as each chunk arrives."""
    signals: list[dict[str, np.ndarray]] = []
    for chunk in chunks:
        signals += chunk
        print(f"data: generated {len(signals)}/{total} synthetic ECG recordings", file=sys.stderr, flush=True)
    return signals


def _check(params: ECGConfig, rate: int) -> None:
    for name in ("maternal_bpm", "fetal_bpm"):
        if getattr(params, name)[0] <= 0:
            raise ValueError(f"data.ecg.{name}: heart rates must be > 0 BPM, got {list(getattr(params, name))}")
    if params.noise_hz[1] >= rate / 2:
        raise ValueError(f"data.ecg.noise_hz: above the Nyquist rate of data.sample_rate, got {list(params.noise_hz)}")


def _chunk(seeds: list[np.random.SeedSequence], params: ECGConfig, rate: int,
           samples: int) -> list[dict[str, np.ndarray]]:
    """The recordings of `seeds`: every draw first, then all their hearts' ECGSYN ODEs integrated as one batch."""
    plans = [_plan(seed, params, rate, samples) for seed in seeds]
    waveforms = iter(_integrate([heart.ode for plan in plans for heart in plan.hearts]))
    return [_finish(plan, next(waveforms), next(waveforms), params, rate, samples) for plan in plans]


@dataclasses.dataclass
class _Heart:
    """One heart's ECGSYN run: its ODE (see _ode) and where the recording's window starts in its output."""
    ode: "_ODE"
    start: int


@dataclasses.dataclass
class _Plan:
    """A recording's draws up to its ECGSYN waveforms; rng and realism go on to draw the rest (see _finish)."""
    rng: np.random.Generator
    realism: np.random.Generator
    signs: dict[str, float]
    hr_std: float
    hearts: tuple[_Heart, _Heart]  # maternal, fetal


def _plan(seed: np.random.SeedSequence, params: ECGConfig, rate: int, samples: int) -> _Plan:
    rng = np.random.default_rng(seed)
    realism = np.random.default_rng(seed.spawn(1)[0])  # every draw of the realistic setting; none when it is off
    signs = {h: (realism.choice([-1.0, 1.0]) if params.polarity_flip else 1.0) for h in HEARTS}
    waves = {h: jittered_waves(realism, params.morphology_jitter) for h in HEARTS}
    if params.fetal_qrs_scale is not None:
        waves["fetal"] = narrowed_qrs(waves["fetal"], realism.uniform(*params.fetal_qrs_scale))
    hr_std = realism.uniform(*params.fetal_hr_std) if params.fetal_hr_std is not None else ECGSYN_HR_STD
    hearts = (_heart(rng, params, "maternal_bpm", rate, samples, waves["maternal"]),
              _heart(rng, params, "fetal_bpm", rate, samples, waves["fetal"], hr_std))
    return _Plan(rng, realism, signs, hr_std, hearts)


def _finish(plan: _Plan, maternal: np.ndarray, fetal: np.ndarray, params: ECGConfig, rate: int,
            samples: int) -> dict[str, np.ndarray]:
    """The recording from its plan and its hearts' whole ECGSYN waveforms."""
    rng, signs = plan.rng, plan.signs
    maternal = signs["maternal"] * _normalise(_window(maternal, plan.hearts[0], "maternal_bpm", params, samples))
    fetal = signs["fetal"] * _normalise(_window(fetal, plan.hearts[1], "fetal_bpm", params, samples)) \
        / rng.uniform(*params.amplitude_ratio)
    noise = respiration(rng, params, rate, samples) + _nuisances(plan.realism, params, rate, maternal + fetal)
    return {
        "mixture": (maternal + fetal + noise).astype(np.float32),
        "maternal": maternal.astype(np.float32),
        "fetal": fetal.astype(np.float32),
        "maternal_events": _r_peaks(signs["maternal"] * maternal, rate, params.maternal_bpm[1] + 3 * ECGSYN_HR_STD),
        "fetal_events": _r_peaks(signs["fetal"] * fetal, rate, params.fetal_bpm[1] + 3 * plan.hr_std),
    }


def _nuisances(rng: np.random.Generator, params: ECGConfig, rate: int, clean: np.ndarray) -> np.ndarray:
    """Baseline wander + power line + white noise as configured (zeros when all are off)."""
    t = np.arange(clean.size) / rate
    total = np.zeros(clean.size)
    if params.wander_amplitude is not None:
        total += wander_tones(rng, params, t)
    if params.powerline_amplitude is not None:
        for harmonic in mains(rng, params, rate, t):  # added one by one: the sums of the first generator, bit for bit
            total += harmonic
    if params.noise_snr_db is not None:
        snr, white = rng.uniform(*params.noise_snr_db), rng.standard_normal(clean.size)
        total += white * np.sqrt(np.mean(clean ** 2) / np.mean(white ** 2) / 10 ** (snr / 10))
    return total


def _r_peaks(upright: np.ndarray, rate: int, max_bpm: float) -> np.ndarray:
    """R-peak indices of a clean ECG with its R waves positive (see the model notes at the top)."""
    peaks, _ = find_peaks(upright, height=PEAK_FRACTION * np.max(upright), distance=max(1, int(30 * rate / max_bpm)))
    return peaks.astype(np.int64)


def _heart(rng: np.random.Generator, params: ECGConfig, field: str, rate: int, samples: int,
           waves: dict[str, list[float]], hr_std: float = ECGSYN_HR_STD) -> _Heart:
    """An ECGSYN run with its heart rate uniform in params.<field>, and a random window start past SKIP_SECONDS."""
    skip = round(SKIP_SECONDS * rate)
    for _ in range(ATTEMPTS):
        bpm = rng.uniform(*getattr(params, field))
        seed = int(rng.integers(2**32))
        beats = math.ceil((params.seconds + 2 * SKIP_SECONDS) * bpm / 60)
        try:
            ode = _ode(seed, sfecg=rate, n=beats, hrmean=bpm, hrstd=hr_std, sfint=params.integration_rate, **waves)
        except IndexError:  # ECGSYN's RR loop indexes one past its series when a beat lands on the last sample
            continue
        if ode.outputs < skip + samples:
            raise ValueError(f"data.ecg.{field}: ECGSYN gave no usable {params.seconds} s waveform at {bpm:.1f} BPM")
        return _Heart(ode, int(rng.integers(skip, ode.outputs - samples + 1)))
    raise ValueError(f"data.ecg.{field}: ECGSYN failed {ATTEMPTS} times in a row for rates in {list(getattr(params, field))}")


def _window(waveform: np.ndarray, heart: _Heart, field: str, params: ECGConfig, samples: int) -> np.ndarray:
    """The recording's `samples` of a heart's whole ECGSYN waveform, from the start drawn in its plan."""
    if not np.all(np.isfinite(waveform)):
        raise ValueError(f"data.ecg.{field}: ECGSYN gave a non-finite waveform at {heart.ode.bpm:.1f} BPM")
    return waveform[heart.start:heart.start + samples]


@dataclasses.dataclass
class _ODE:
    """signalz.ecgsyn's ODE set up for integration: steps RK4 steps of 1 / sfint s, every factor-th state output."""
    bpm: float
    rrn: np.ndarray  # the RR interval (s) in force at each integration sample
    steps: int
    sfint: int
    factor: int
    ti: np.ndarray  # the P, Q, R, S, T angles (rad), widths and heights, scaled for the heart rate
    bi: np.ndarray
    ai: np.ndarray

    @property
    def outputs(self) -> int:
        return -(-self.steps // self.factor)


def _ode(seed: int, sfecg: int, n: int, hrmean: float, hrstd: float, sfint: int, ti: list[float], ai: list[float],
         bi: list[float]) -> _ODE:
    """signalz.ecgsyn's set-up, line for line, up to its integration; its RR process drawn from np.random seeded with
    `seed`, the global state restored afterwards. Raises IndexError where signalz.ecgsyn does."""
    if sfint % sfecg != 0 or sfint < sfecg:
        raise ValueError(f"data.ecg.integration_rate: must be a multiple of data.sample_rate, got {sfint}")
    hrmean = float(hrmean)
    ti = np.array(ti) * np.pi / 180.
    hrfact = np.sqrt(hrmean / 60.)
    hrfact2 = np.sqrt(hrfact)
    bi = hrfact * np.array(bi)
    ti = np.array([hrfact2, hrfact, 1, hrfact, hrfact2]) * ti
    rrmean = 60 / hrmean
    rr0 = rr_series(seed, hrmean, hrstd, n * rrmean)
    rr = np.interp(np.arange(0, len(rr0) * sfint) / float(sfint), np.arange(0, len(rr0)), rr0)
    dt = 1 / float(sfint)
    rrn = np.zeros(len(rr))
    tecg, i = 0, 0
    while i <= len(rr):
        tecg = tecg + rr[i]
        ip = int(np.round(tecg / dt))
        rrn[i:ip + 1] = rr[i]
        i = ip + 1
    steps = min(len(np.arange(0, (ip - 1) * dt, dt)), len(rrn))
    return _ODE(hrmean, rrn, steps, sfint, sfint // sfecg, ti, bi, np.array(ai))


def _integrate(odes: list[_ODE]) -> list[np.ndarray]:
    """ECGSYN's output (scaled to -0.4..1.2 mV) for each ODE, integrated together, each a row of one NumPy batch:
    the project's RK4 step (see _rk4) over signalz.ecgsyn's derivative (see _slope), sample times and step sizes
    as signalz's. Each row goes through the operations signalz performs on one heart, elementwise, so it comes out
    bit-identical to a separate signalz.ecgsyn run with the fixed step."""
    sfint, factor = odes[0].sfint, odes[0].factor
    steps = max(ode.steps for ode in odes)
    rrn = np.ones((max(ode.rrn.size for ode in odes), len(odes)))  # rows past an ODE's end are never output
    for column, ode in zip(rrn.T, odes):
        column[:ode.rrn.size] = ode.rrn
    waves = tuple(np.stack([getattr(ode, name) for ode in odes]) for name in ("ti", "ai", "bi"))
    slope = functools.partial(_slope, omega=2. * np.pi / rrn, sfint=sfint, waves=waves)
    t = np.arange(0, steps) * (1 / float(sfint))  # signalz's np.arange(0, stop, dt): i * dt
    x = (np.ones(len(odes)), np.zeros(len(odes)), np.full(len(odes), 0.04))
    z = np.empty((-(-steps // factor), len(odes)))
    for i in range(steps):
        if i % factor == 0:
            z[i // factor] = x[2]
        if i + 1 < steps:
            x = _rk4(slope, x, t[i], t[i + 1] - t[i])
    return [_scaled(z[:ode.outputs, row]) for row, ode in enumerate(odes)]


def _slope(t: np.float64, x: tuple[np.ndarray, ...], omega: np.ndarray, sfint: int,
           waves: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """signalz.ecgsyn's derfunc for a batch of hearts, operation for operation (x ** 2 as np.float_power, which
    rounds as NumPy's scalar power does; the array square may differ in the last bit)."""
    ti, ai, bi = waves
    ta = np.arctan2(x[1], x[0])
    a0 = 1. - np.sqrt(np.float_power(x[0], 2.) + np.float_power(x[1], 2.))
    w0 = omega[int(np.floor(t * sfint))]
    zbase = 0.005 * np.sin(2 * np.pi * 0.25 * t)
    dti = ta[:, None] - ti
    dti = (np.abs(dti) % (2. * np.pi)) * np.sign(dti)
    dx3dt = -np.sum(ai * dti * np.exp(-0.5 * (dti / bi) ** 2), axis=1) - (x[2] - zbase)
    return a0 * x[0] - w0 * x[1], a0 * x[1] + w0 * x[0], dx3dt


def _rk4(f, x: tuple[np.ndarray, ...], t: np.float64, dt: np.float64) -> tuple[np.ndarray, ...]:
    """One classical Runge-Kutta step. signalz's own step sums its four slopes with equal weights,
    (k1 + k2 + k3 + k4) / 6 instead of (k1 + 2 k2 + 2 k3 + k4) / 6, so its ECGSYN runs at 2/3 speed: every heart
    rate would come out 2/3 of hrmean."""
    k1 = tuple(dt * d for d in f(t, x))
    k2 = tuple(dt * d for d in f(t + dt / 2, tuple(a + k / 2 for a, k in zip(x, k1))))
    k3 = tuple(dt * d for d in f(t + dt / 2, tuple(a + k / 2 for a, k in zip(x, k2))))
    k4 = tuple(dt * d for d in f(t + dt, tuple(a + k for a, k in zip(x, k3))))
    return tuple(a + (b + 2 * c + 2 * d + e) / 6 for a, b, c, d, e in zip(x, k1, k2, k3, k4))


def _scaled(z: np.ndarray) -> np.ndarray:
    """signalz.ecgsyn's output scaling: z onto -0.4..1.2 mV."""
    zmin, zmax = z.min(), z.max()
    return (z - zmin) * 1.6 / (zmax - zmin) - 0.4


def _normalise(signal: np.ndarray) -> np.ndarray:
    """Baseline (median) at 0, peak-to-peak amplitude 1."""
    return (signal - np.median(signal)) / np.ptp(signal)


