"""Owns the synthetic abdominal ECG's pieces that the one-lead (cass_tf.data.ecg) and multi-lead (cass_tf.data.leads)
generators share: ECGSYN's waves and RR process, the respiration, baseline wander and mains."""

from __future__ import annotations

import math

import numpy as np
from signalz.generators.ecgsyn import rrprocess

from cass_tf.config import ECGConfig

KNOT_SECONDS = 5.0
FREQUENCY_WANDER = 0.1
AMPLITUDE_WANDER = 0.2
WANDER_HZ = (0.05, 0.5)
WANDER_TONES = 4
MAINS_HZ = (50.0, 60.0)
ECGSYN_WAVES = {"ti": (-70.0, -15.0, 0.0, 15.0, 100.0), "ai": (1.2, -5.0, 30.0, -7.5, 0.75),
                "bi": (0.25, 0.1, 0.1, 0.1, 0.4)}  # signalz.ecgsyn's defaults (P, Q, R, S, T)
ECGSYN_HR_STD = 1.0  # signalz.ecgsyn's default hrstd (BPM)
QRS = slice(1, 4)  # Q, R, S in ECGSYN_WAVES
# The fetal QRS. ECGSYN scales its waves' angles and widths for the heart rate with sqrt(rate / 60 BPM) (McSharry
# 2003), a rule for one adult heart at different rates; at fetal rates (110-170 BPM) it gives a QRS complex about
# 0.75 of the same model's adult one at 60-110 BPM. Measured fetal QRS durations are about half an adult's 80-100 ms:
# 47 ms at 18-22 weeks and 53 ms from 37 weeks by abdominal ECG (Chia, Ho, Karlsson, Gardiner, Wilson, "Cardiac
# time intervals of normal fetuses using noninvasive fetal electrocardiography", Prenatal Diagnosis 25(7), 2005),
# in line with the magnetocardiography reference values (Stinstraa et al., BJOG 109, 2002; van Leeuwen et al., BMC
# Pregnancy and Childbirth 4:6, 2004). data.ecg.fetal_qrs_scale (configs: 0.6-0.8) closes that gap.


def jittered_waves(rng: np.random.Generator, jitter: float) -> dict[str, list[float]]:
    """ECGSYN's ti/ai/bi, each value scaled by 1 + U(-jitter, jitter) (no draws when jitter is 0)."""
    if jitter == 0:
        return {name: list(values) for name, values in ECGSYN_WAVES.items()}
    return {name: list(np.asarray(values) * (1 + rng.uniform(-jitter, jitter, len(values))))
            for name, values in ECGSYN_WAVES.items()}


def narrowed_qrs(waves: dict[str, list[float]], scale: float) -> dict[str, list[float]]:
    """ECGSYN's `waves` with the Q, R and S angles and widths times `scale`, so that the QRS complex lasts `scale`
    times as long, and their ai over scale ** 2, so that ECGSYN's z (whose Gaussians are ai bi^2 / omega high) keeps
    their heights (the multi-lead dipoles take their heights from elsewhere and use ti and bi alone)."""
    factors = {"ti": scale, "bi": scale, "ai": 1 / scale ** 2}
    return {name: [v * factors[name] if QRS.start <= i < QRS.stop else v for i, v in enumerate(values)]
            for name, values in waves.items()}


def wander_tones(rng: np.random.Generator, params: ECGConfig, t: np.ndarray) -> np.ndarray:
    """Baseline wander at times `t`: WANDER_TONES sinusoids in WANDER_HZ, peak amplitude U(wander_amplitude)."""
    tones = sum(np.sin(2 * np.pi * rng.uniform(*WANDER_HZ) * t + rng.uniform(0, 2 * np.pi))
                for _ in range(WANDER_TONES))
    return rng.uniform(*params.wander_amplitude) * tones / np.max(np.abs(tones))


def mains(rng: np.random.Generator, params: ECGConfig, rate: int, t: np.ndarray) -> list[np.ndarray]:
    """Power line at times `t`, one array per harmonic: 50 or 60 Hz at U(powerline_amplitude), each harmonic k below
    Nyquist at U(0, 1/k) of it."""
    frequency, amplitude = rng.choice(MAINS_HZ), rng.uniform(*params.powerline_amplitude)
    harmonics = []
    for k in range(1, int((rate / 2) // frequency) + 1):
        if k * frequency < rate / 2:
            gain = 1.0 if k == 1 else rng.uniform(0, 1 / k)
            harmonics.append(amplitude * gain * np.sin(2 * np.pi * k * frequency * t + rng.uniform(0, 2 * np.pi)))
    return harmonics


def rr_series(seed: int, hrmean: float, hrstd: float, seconds: float) -> np.ndarray:
    """ECGSYN's RR process (s, one value a second, at least `seconds` of them: a power of 2) drawn from np.random
    seeded with `seed`, the global state restored afterwards."""
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        return rrprocess(0.1, 0.25, 0.01, 0.01, 0.5, hrmean, hrstd, 1, 2**(np.ceil(np.log2(seconds / 1.0))))
    finally:
        np.random.set_state(state)


def respiration(rng: np.random.Generator, params: ECGConfig, rate: int, samples: int) -> np.ndarray:
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
