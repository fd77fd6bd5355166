"""Owns the synthetic wrist PPG source: a two-Gaussian pulse train ("heart") plus respiratory baseline wander.

Model, per recording (all draws from a NumPy Generator seeded by SeedSequence(config.seed); no global RNG):

  heart: a pulse train. Each beat k, with onset o_k and interval RR_k, is the two-Gaussian PPG pulse of
    Tang, Chen, Ward & Elgendi, "Synthetic photoplethysmogram generation using two Gaussian functions",
    Scientific Reports 10:13883 (2020), written on the beat phase theta = -pi + 2 pi (t - o_k) / RR_k:
        pulse(theta) = sum_i a_i exp(-(theta - theta_i)^2 / (2 b_i^2)),
    i = systolic wave (a, theta, b) = SYSTOLIC and the smaller, later, wider diastolic wave DIASTOLIC: the
    "excellent" template of their Table 1, so the pulse shape scales with the beat interval. Neighbouring
    pulses overlap and are summed (no wrap-around). The pulse amplitude (systolic height) is 1.
    Heart rate: mean interval 60 / bpm with bpm uniform in ppg.heart_bpm; the beat-to-beat intervals are
    independent, log-normal with that mean and relative std ppg.beat_variability (Tang et al. draw them from
    a normal distribution; log-normal keeps them positive), truncated at 3 sigma.
    Respiratory-induced amplitude variation (Karlen et al., "Multiparameter respiratory rate estimation from
    the photoplethysmogram", IEEE TBME 60(7), 2013) rides on this component: beat k is scaled by
    1 + AMPLITUDE_MODULATION sin(2 pi f_b t_k + phi), t_k its systolic peak, in phase with the baseline
    wander below. The component's mean is removed, so the DC belongs to neither target.
  respiratory: the respiratory-induced baseline wander (Karlen et al.), a sinusoid d sin(2 pi f_b t + phi)
    with breathing frequency f_b uniform in ppg.breathing_hz, depth d uniform in ppg.respiratory_depth
    (relative to the pulse amplitude) and a uniform random phase phi.
  mixture = heart + respiratory, exactly (the float32 sum of the float32 components).
  events: "heart" the systolic peak samples, "respiratory" the breath peaks (maxima of the respiratory sinusoid);
    the breathing rate is 60 f_b per minute.

Realistic setting (PPGConfig fields, all off by default; configs/ppg.json turns them on), drawn from a
second generator spawned from the recording's seed so the plain setting's recordings are unchanged:
  morphology: each of the six two-Gaussian parameters scaled by 1 + U(-morphology_jitter, +morphology_jitter).
  amplitude modulation: the respiratory-induced depth drawn uniform in amplitude_modulation (else 0.1).
  frequency modulation (respiratory sinus arrhythmia, Karlen et al.): beat interval k scaled by
    1 + m sin(2 pi f_b o_k + phi), m uniform in frequency_modulation, o_k the unmodulated onset.
  sensor noise (motion-free): white Gaussian scaled to an SNR uniform in noise_snr_db against the clean mixture's
    power (mean removed), in the mixture only.
  scale: mixture and both components multiplied by one factor log-uniform in scale (PPG units are arbitrary).
  breathing variability: the breathing frequency wanders, linear between knots every KNOT_SECONDS, each knot
    f_b (1 + U(-breathing_variability, +breathing_variability)); AM, FM and the baseline follow the same phase.
  breath shape: a second harmonic h sin(2 theta + psi), h uniform in breath_harmonic, makes breaths asymmetric
    (real respiration is not a sinusoid); the wave is rescaled so its peak is the drawn depth.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from cass_tf.config import Config, PPGConfig
from cass_tf.data import Recording

SYSTOLIC = (1.0, -1.5161, 0.6303)  # (height a, phase centre theta in rad, width b in rad)
DIASTOLIC = (0.1999, 0.8186, 1.0225)
AMPLITUDE_MODULATION = 0.1
TRUNCATE_SIGMA = 3.0
KNOT_SECONDS = 5.0  # breathing-frequency knots (breathing_variability)
PHASE_GRID = 50  # integration points per knot interval for the breathing phase


def load(config: Config) -> dict[str, list[Recording]]:
    """{"train": [...], "test": [...]} synthetic PPG recordings with the components in data.components."""
    params = config.data.ppg
    rate = config.data.sample_rate
    if params.heart_bpm[0] <= 0:
        raise ValueError(f"data.ppg.heart_bpm: heart rates must be > 0 BPM, got {list(params.heart_bpm)}")
    samples = round(params.seconds * rate)
    train, test = np.random.SeedSequence(config.seed).spawn(2)
    counts = {"train": params.train_recordings, "test": params.test_recordings}
    result = {}
    for split, root in (("train", train), ("test", test)):
        result[split] = [
            _recording(f"ppg-{split}-{i:03d}", s, params, rate, samples, config.data.components)
            for i, s in enumerate(root.spawn(counts[split]))
        ]
    return result


def _recording(name: str, seed: np.random.SeedSequence, params: PPGConfig, rate: int, samples: int,
               components: tuple[str, ...]) -> Recording:
    rng = np.random.default_rng(seed)
    realism = np.random.default_rng(seed.spawn(1)[0])  # every draw of the realistic setting; none when it is off
    breathing = rng.uniform(*params.breathing_hz)
    phase = rng.uniform(0, 2 * np.pi)
    breath_phase = _breath_phase(realism, params, breathing, phase, samples / rate)
    heart, peaks = _pulse_train(rng, realism, params, rate, samples, breath_phase)
    t = np.arange(samples) / rate
    depth = rng.uniform(*params.respiratory_depth)
    signals = {
        "heart": (heart - heart.mean()).astype(np.float32),
        "respiratory": (depth * _breath_wave(realism, params, breath_phase(t))).astype(np.float32),
    }
    mixture = signals["heart"] + signals["respiratory"]
    if params.noise_snr_db is not None:
        snr, white = realism.uniform(*params.noise_snr_db), realism.standard_normal(samples)
        centred = mixture - mixture.mean()
        mixture = mixture + (white * np.sqrt(np.mean(centred ** 2) / np.mean(white ** 2) / 10 ** (snr / 10))
                             ).astype(np.float32)
    if params.scale is not None:
        factor = np.float32(np.exp(realism.uniform(*np.log(params.scale))))
        mixture, signals = mixture * factor, {k: v * factor for k, v in signals.items()}
    events = {"heart": _samples(peaks, rate, samples), "respiratory": _samples(_breaths(breath_phase, t), rate, samples)}
    return Recording(name=name, mixture=mixture, components={c: signals[c] for c in components},
                     events={c: events[c] for c in components})


def _breath_phase(rng: np.random.Generator, params: PPGConfig, breathing: float, phase: float,
                  seconds: float) -> Callable[[np.ndarray], np.ndarray]:
    """times (s) -> breathing phase (rad): 2 pi f_b t + phi, or with breathing_variability the integral of a
    frequency interpolated linearly between knots every KNOT_SECONDS, each f_b (1 + U(-v, v))."""
    if not params.breathing_variability:
        return lambda times: 2 * np.pi * breathing * times + phase
    knots = np.arange(-2, math.ceil(seconds / KNOT_SECONDS) + 3) * KNOT_SECONDS  # covers beats before t = 0
    frequency = breathing * (1 + params.breathing_variability * rng.uniform(-1, 1, knots.size))
    grid = np.linspace(knots[0], knots[-1], (knots.size - 1) * PHASE_GRID + 1)
    f = np.interp(grid, knots, frequency)
    cumulative = np.concatenate([[0.0], np.cumsum((f[1:] + f[:-1]) / 2 * np.diff(grid))])
    angle = phase + 2 * np.pi * (cumulative - np.interp(0.0, grid, cumulative))
    return lambda times: np.interp(times, grid, angle)


def _breath_wave(rng: np.random.Generator, params: PPGConfig, angle: np.ndarray) -> np.ndarray:
    """sin(angle), or with breath_harmonic a second harmonic h sin(2 angle + psi) added and the peak brought to 1."""
    if params.breath_harmonic is None:
        return np.sin(angle)
    wave = np.sin(angle) + rng.uniform(*params.breath_harmonic) * np.sin(2 * angle + rng.uniform(0, 2 * np.pi))
    return wave / np.max(np.abs(wave))


def _breaths(breath_phase: Callable[[np.ndarray], np.ndarray], t: np.ndarray) -> np.ndarray:
    """Times (s) where the breathing phase passes pi/2 (mod 2 pi): the maxima of the fundamental."""
    angle = breath_phase(t)
    targets = np.pi / 2 + 2 * np.pi * np.arange(np.floor((angle[0] - np.pi / 2) / (2 * np.pi)),
                                                np.ceil((angle[-1] - np.pi / 2) / (2 * np.pi)) + 1)
    targets = targets[(targets >= angle[0]) & (targets <= angle[-1])]
    return np.interp(targets, angle, t)


def _samples(times: np.ndarray, rate: int, samples: int) -> np.ndarray:
    """Sample indices (int64, read-only) of event times in seconds that fall inside the recording."""
    index = np.round(np.asarray(times) * rate).astype(np.int64)
    index = index[(index >= 0) & (index < samples)]
    index.setflags(write=False)
    return index


def _pulse_train(rng: np.random.Generator, realism: np.random.Generator, params: PPGConfig, rate: int, samples: int,
                 breath_phase: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The amplitude-modulated two-Gaussian pulse train (float64, `samples`) and its systolic peak times (s)."""
    waves = (SYSTOLIC, DIASTOLIC)
    if params.morphology_jitter:
        jitter = params.morphology_jitter
        waves = tuple(tuple(np.asarray(w) * (1 + realism.uniform(-jitter, jitter, 3))) for w in waves)
    depth = realism.uniform(*params.amplitude_modulation) if params.amplitude_modulation is not None \
        else AMPLITUDE_MODULATION
    mean = 60 / rng.uniform(*params.heart_bpm)
    intervals = _intervals(rng, mean, params.beat_variability, samples / rate)
    onsets = -rng.uniform(1, 2) * mean + np.concatenate([[0.0], np.cumsum(intervals[:-1])])
    if params.frequency_modulation is not None:
        intervals = intervals * (1 + realism.uniform(*params.frequency_modulation)
                                 * np.sin(breath_phase(onsets)))
        onsets = onsets[0] + np.concatenate([[0.0], np.cumsum(intervals[:-1])])
    systolic = waves[0]
    peaks = onsets + (systolic[1] + np.pi) / (2 * np.pi) * intervals
    heights = 1 + depth * np.sin(breath_phase(peaks))
    # Each beat is evaluated on [onset - RR, onset + 2 RR], beyond which both Gaussians are below 1e-15.
    width = math.ceil(3 * intervals.max() * rate) + 1
    index = np.floor((onsets - intervals) * rate).astype(np.int64)[:, None] + np.arange(width)
    theta = -np.pi + 2 * np.pi * (index / rate - onsets[:, None]) / intervals[:, None]
    values = heights[:, None] * sum(a * np.exp(-0.5 * ((theta - c) / b) ** 2) for a, c, b in waves)
    inside = (index >= 0) & (index < samples)
    return np.bincount(index[inside], weights=values[inside], minlength=samples), peaks


def _intervals(rng: np.random.Generator, mean: float, variability: float, seconds: float) -> np.ndarray:
    """Log-normal beat intervals (s) with this mean and relative std, enough to reach past `seconds` from -2 mean."""
    sigma = math.sqrt(math.log1p(variability ** 2))
    shortest = mean * math.exp(-TRUNCATE_SIGMA * sigma - sigma ** 2 / 2)
    count = math.ceil((seconds + 2 * mean) / shortest) + 2
    z = np.clip(rng.standard_normal(count), -TRUNCATE_SIGMA, TRUNCATE_SIGMA)
    return mean * np.exp(sigma * z - sigma ** 2 / 2)
