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

Breathing as it reaches a PPG (Charlton et al., "An assessment of algorithms to estimate respiratory rate from the
electrocardiogram and photoplethysmogram", Physiol Meas 37(4):610, 2016, and its RRest-syn data; Charlton et al.,
"Breathing rate estimation from the electrocardiogram and photoplethysmogram: a review", IEEE Rev Biomed Eng
11:2, 2018): three modulations driven by one breathing phase, each with its own depth drawn per recording, so their
proportions vary between recordings as between people (which modulation is strongest differs between subjects):
  RIIV, respiratory-induced intensity variation (baseline wander): the `respiratory` component, depth in
    respiratory_depth; RIAV, amplitude variation of the pulses: amplitude_modulation; RIFV, frequency variation
    (respiratory sinus arrhythmia, beat intervals): frequency_modulation. RIAV and RIFV are properties of the pulses
    and ride on `heart`.
  So `respiratory` is defined (respiratory_target "wander", the default) as the breathing signal the PPG carries
  additively: the breathing waveform (phase, shape, sighs, pauses) at the depth of this recording's baseline wander.
  heart + respiratory is the clean PPG, and the respiratory output of a model is the breathing waveform a user reads
  the breathing rate from (its events are the breath maxima); RIAV and RIFV stay in the heart output, where a pulse's
  height and timing belong. A mask of the mixture can only find this breathing where the wander is: a PPG whose
  breathing shows mostly as RIAV or RIFV has little of it to mask.
  respiratory_target "breathing" defines `respiratory` as the breathing waveform all three modulations follow, the
  same wave at a fixed size, BREATHING_PEAK pulse amplitudes (a PPG shows no tidal volume: only the breath's timing
  and shape are the recording's), whichever modulation carries it. The mixture still holds the wander (heart +
  wander is the clean PPG) but not this component, which a model outputs directly (model.direct), reading it from
  the wander, the pulse heights and the pulse intervals together, as the fusion methods of Karlen et al. 2013 and
  Charlton et al. 2016 read one rate from the three; the wander belongs to neither target.
  Breathing rates: configs/ppg.json draws 0.067-0.667 Hz (4-40 /min, issue 21's range, from slow deep breathing
  to adult tachypnoea; 40 /min stays inside metrics.BREATHING_BAND), uniform unless breathing_prior [median Hz,
  sigma] draws them log-normal (truncated to the range), so that rates are as common in training as they
  are in people. The adult prior [0.267, 0.3] puts the median at 16 /min, the middle of the normal adult range
  12-20 /min (Cretikos et al., "Respiratory rate: the neglected vital sign", Med J Aust 188(11):657, 2008), and
  about 2.5% of draws on each side of 9-29 /min, near the bands that the National Early Warning Score counts as
  alarming (<= 8 and >= 25 /min; Royal College of Physicians, NEWS2, 2017); the range still reaches 4 and 40.
Irregular breathing and motion (PPGConfig fields in events per minute, 0 = off; every draw from a third generator
spawned from the recording's seed, so the settings without them are unchanged; event times are Poisson):
  rate_changes: at each, the breathing frequency steps (between KNOT_SECONDS knots) to a new draw from
    breathing_hz, so a 32-s window can hold two rates.
  pause_rate: the breathing phase stops for PAUSE_SECONDS (the frequency ramps down and up over PAUSE_RAMP s):
    the baseline holds still and the modulations stop, as in a breath hold or a post-sigh pause.
  sigh_rate: one breath is deepened by a factor in SIGH_GAIN (all three modulations, they share the envelope).
  motion_rate: a burst of band-limited noise (MOTION_BAND, Hann-windowed, RMS in MOTION_AMPLITUDE of the pulse
    amplitude, MOTION_SECONDS long) in the mixture only: an artefact belongs to neither target. configs/ppg.json
    leaves it off: its models project their outputs onto the mixture (model.consistency "project"), which hands each
    component half of whatever is in neither, so at 0.5 artefacts a minute even perfect networks would score a
    whole-signal L2 of about 0.21 (heart) and 0.34 (respiratory) on its recordings (measured on 32 test recordings;
    0.04 / 0.06 without them, the sensor noise's share). A model trained with them (ppg/3 candidate A) is in
    saved_models/README.md.
Premature beats (PPGConfig.ectopic_rate, per minute, Poisson, 0 = off; draws from a fifth generator spawned from the
recording's seed): at each, the next beat comes early (ECTOPIC_COUPLING of its interval) with a smaller pulse
(ECTOPIC_HEIGHT), and the beat after it keeps its time (a full compensatory pause) with a larger one (POTENTIATION).
Ectopic beats are common in the ICU patients real PPG datasets are recorded from, and they move pulse heights and
intervals as breathing does (RIAV, RIFV), but at random times. They belong to `heart` (they are pulses; the events
include them). Only their timing and height are modelled: each pulse keeps the two-Gaussian shape of its sinus
interval.
Vasomotion (PPGConfig.vasomotion, an RMS range relative to the pulse amplitude; None = off; draws from a fourth
generator spawned from the recording's seed): the PPG baseline also moves slowly for reasons other than breathing,
sympathetic vasomotor activity (Mayer waves, about 0.1 Hz) and thermoregulation (Allen, "Photoplethysmography and
its application in clinical physiological measurement", Physiol Meas 28(3):R1, 2007; Nitzan et al., "The
variability of the photoplethysmographic signal - a potential method for the evaluation of the autonomic nervous
system", Physiol Meas 19(1):93, 1998; Julien, "The enigma of Mayer waves", Cardiovasc Res 70(1):12, 2006). One
band-limited Gaussian process per band of PPGConfig.vasomotion_bands, by default the HRV standard's LF (0.04-0.15 Hz)
and VLF (0.01-0.04 Hz) bands (Task Force of the ESC and NASPE, Circulation 93:1043, 1996), each at an RMS drawn in
the range (a design choice, not fitted to any recording); [[0.01, 0.04]] keeps the VLF drift alone, below every
breathing rate of the estimators' band (metrics.BREATHING_BAND). Without it, everything slow in a synthetic PPG is
breathing, so a model learns that a slow wave is breath; with it, a model must tell breath from other slow waves
(ppg/3 candidates C, G, V1 and V2 trained with it and read real breathing no better, saved_models/README.md). It
belongs to `heart`, which is then the PPG less its breathing (the pulses and the slow non-respiratory baseline; the
pulse rate is read in metrics.PULSE_BAND, above it), so the components still sum to the clean PPG.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy.stats import norm

from cass_tf.config import Config, PPGConfig
from cass_tf.data import Recording
from cass_tf.filters import bandpass

SYSTOLIC = (1.0, -1.5161, 0.6303)  # (height a, phase centre theta in rad, width b in rad)
DIASTOLIC = (0.1999, 0.8186, 1.0225)
AMPLITUDE_MODULATION = 0.1
TRUNCATE_SIGMA = 3.0
KNOT_SECONDS = 5.0  # breathing-frequency knots (breathing_variability)
PHASE_GRID = 50  # integration points per knot interval for the breathing phase
# A sigh is a breath of at least about twice the mean tidal volume (Bartlett, "Origin and regulation of spontaneous
# deep breaths", Respir Physiol 12:230, 1971; Vlemincx et al., Biol Psychol 93:24, 2013).
SIGH_GAIN = (2.0, 3.0)
SIGH_WIDTH = 0.35  # std of the sigh envelope (a Gaussian in time), in breath periods: about one breath deepened
# Pauses from a few seconds up to the 10-s threshold of a scored apnoea (AASM scoring manual): short enough that a
# breathing rate still exists in a 32-s window.
PAUSE_SECONDS = (3.0, 10.0)
PAUSE_RAMP = 1.0  # s
# Motion artefacts: Charlton et al. 2018 list motion among the main error sources of PPG breathing rates; the
# band, durations and amplitudes here are a design choice (slow limb and sensor movement, up to twice the pulse),
# not fitted to any recording.
MOTION_BAND = (0.1, 4.0)  # Hz
MOTION_SECONDS = (1.0, 6.0)
MOTION_AMPLITUDE = (0.2, 2.0)  # RMS relative to the pulse amplitude
# Premature (ectopic) beats, atrial or ventricular: the beat comes after a shortened interval, its pulse is smaller
# because the ventricle had less time to fill (pulse amplitude grows with the preceding interval), and the next,
# after a compensatory pause, is larger (post-extrasystolic potentiation). Sološenko, Petrėnas, Marozas, "Photo-
# plethysmography-based method for automatic detection of premature ventricular contractions", IEEE TBioCAS 9(5):662,
# 2015; Sološenko et al., "Modeling of the photoplethysmogram during atrial fibrillation", Comput Biol Med 81:130,
# 2017. The ranges are a design choice, not fitted to any recording.
ECTOPIC_COUPLING = (0.5, 0.8)  # the premature interval, relative to the sinus interval it cuts short
ECTOPIC_HEIGHT = (0.2, 0.8)  # the premature pulse's height, relative
POTENTIATION = (1.0, 1.3)  # the next pulse's height, relative
BREATHING_PEAK = 1.0  # respiratory_target "breathing": the breath wave's peak (sighs: deeper), in pulse amplitudes


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
    irregular = np.random.default_rng(seed.spawn(1)[0])  # every draw of irregular breathing and motion
    vasomotor = np.random.default_rng(seed.spawn(1)[0])  # every draw of vasomotion
    ectopic = np.random.default_rng(seed.spawn(1)[0])  # every draw of premature beats
    breathing = _breathing_rate(rng, params)
    phase = rng.uniform(0, 2 * np.pi)
    seconds = samples / rate
    breath_phase = _breath_phase(realism, irregular, params, breathing, phase, seconds)
    envelope = _sighs(irregular, params.sigh_rate, breathing, seconds)
    heart, peaks = _pulse_train(rng, realism, ectopic, params, rate, samples, breath_phase, envelope)
    t = np.arange(samples) / rate
    depth = rng.uniform(*params.respiratory_depth)
    breath = envelope(t) * _breath_wave(realism, params, breath_phase(t))
    wander = (depth * breath).astype(np.float32)
    breathing = wander if params.respiratory_target == "wander" else (BREATHING_PEAK * breath).astype(np.float32)
    signals = {"heart": (heart - heart.mean()).astype(np.float32), "respiratory": breathing}
    if params.vasomotion is not None:
        signals["heart"] = signals["heart"] + _vasomotion(vasomotor, params, rate, samples).astype(np.float32)
    mixture = signals["heart"] + wander
    if params.noise_snr_db is not None:
        snr, white = realism.uniform(*params.noise_snr_db), realism.standard_normal(samples)
        centred = mixture - mixture.mean()
        mixture = mixture + (white * np.sqrt(np.mean(centred ** 2) / np.mean(white ** 2) / 10 ** (snr / 10))
                             ).astype(np.float32)
    if params.motion_rate:
        mixture = mixture + _motion(irregular, params.motion_rate, rate, samples).astype(np.float32)
    if params.scale is not None:
        factor = np.float32(np.exp(realism.uniform(*np.log(params.scale))))
        mixture, signals = mixture * factor, {k: v * factor for k, v in signals.items()}
    events = {"heart": _samples(peaks, rate, samples), "respiratory": _samples(_breaths(breath_phase, t), rate, samples)}
    return Recording(name=name, mixture=mixture, components={c: signals[c] for c in components},
                     events={c: events[c] for c in components})


def _breath_phase(rng: np.random.Generator, irregular: np.random.Generator, params: PPGConfig, breathing: float,
                  phase: float, seconds: float) -> Callable[[np.ndarray], np.ndarray]:
    """times (s) -> breathing phase (rad): 2 pi f_b t + phi, or the integral of a frequency interpolated linearly
    between knots every KNOT_SECONDS: each knot's base rate (f_b, or the latest rate change's draw) times
    1 + U(-v, v) with breathing_variability v, and brought to 0 during pauses."""
    if not (params.breathing_variability or params.rate_changes or params.pause_rate):
        return lambda times: 2 * np.pi * breathing * times + phase
    knots = np.arange(-2, math.ceil(seconds / KNOT_SECONDS) + 3) * KNOT_SECONDS  # covers beats before t = 0
    base = np.full(knots.size, breathing)
    for change in _event_times(irregular, params.rate_changes, knots[0], knots[-1]):
        base[knots >= change] = _breathing_rate(irregular, params)
    frequency = base * (1 + params.breathing_variability * rng.uniform(-1, 1, knots.size)) \
        if params.breathing_variability else base
    grid = np.linspace(knots[0], knots[-1], (knots.size - 1) * PHASE_GRID + 1)
    f = np.interp(grid, knots, frequency) * _pauses(irregular, params.pause_rate, grid)
    cumulative = np.concatenate([[0.0], np.cumsum((f[1:] + f[:-1]) / 2 * np.diff(grid))])
    angle = phase + 2 * np.pi * (cumulative - np.interp(0.0, grid, cumulative))
    return lambda times: np.interp(times, grid, angle)


def _breathing_rate(rng: np.random.Generator, params: PPGConfig) -> float:
    """A breathing frequency (Hz) in breathing_hz: uniform, or with breathing_prior (median, sigma) log-normal
    truncated to the range (one uniform draw through the inverse of its CDF)."""
    if params.breathing_prior is None:
        return float(rng.uniform(*params.breathing_hz))
    median, sigma = params.breathing_prior
    low, high = (norm.cdf(math.log(edge / median) / sigma) for edge in params.breathing_hz)
    return float(median * math.exp(sigma * norm.ppf(rng.uniform(low, high))))


def _event_times(rng: np.random.Generator, per_minute: float, start: float, end: float) -> np.ndarray:
    """Sorted Poisson event times (s) in [start, end) at `per_minute` events per minute (none when it is 0)."""
    if not per_minute:
        return np.zeros(0)
    return np.sort(rng.uniform(start, end, rng.poisson(per_minute / 60 * (end - start))))


def _pauses(rng: np.random.Generator, per_minute: float, grid: np.ndarray) -> np.ndarray:
    """Factor on the breathing frequency over `grid` (s): 0 during each pause of PAUSE_SECONDS, cosine ramps of
    PAUSE_RAMP s into and out of it, 1 elsewhere."""
    factor = np.ones_like(grid)
    for start in _event_times(rng, per_minute, grid[0], grid[-1]):
        end = start + rng.uniform(*PAUSE_SECONDS)
        distance = np.maximum(np.maximum(start - grid, grid - end), 0.0)  # seconds outside [start, end]
        ramp = np.where(distance < PAUSE_RAMP, 0.5 - 0.5 * np.cos(np.pi * distance / PAUSE_RAMP), 1.0)
        factor = np.minimum(factor, ramp)
    return factor


def _sighs(rng: np.random.Generator, per_minute: float, breathing: float, seconds: float
           ) -> Callable[[np.ndarray], np.ndarray]:
    """times (s) -> depth envelope of all three modulations: 1, plus (g - 1) exp(-(t - t_s)^2 / 2 w^2) around each
    sigh t_s, g uniform in SIGH_GAIN, w = SIGH_WIDTH / f_b."""
    period = 1 / breathing
    times = _event_times(rng, per_minute, -2 * period, seconds + 2 * period)
    gains = rng.uniform(*SIGH_GAIN, times.size)
    width = SIGH_WIDTH * period

    def envelope(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        return 1.0 + sum((g - 1) * np.exp(-0.5 * ((t - s) / width) ** 2) for s, g in zip(times, gains))
    return envelope


def _motion(rng: np.random.Generator, per_minute: float, rate: int, samples: int) -> np.ndarray:
    """Motion artefacts (float64, `samples`): for each event, white noise band-passed to MOTION_BAND, brought to RMS
    1, Hann-windowed over MOTION_SECONDS and scaled by MOTION_AMPLITUDE (relative to the pulse amplitude)."""
    artefacts = np.zeros(samples)
    longest = MOTION_SECONDS[1]
    for start in _event_times(rng, per_minute, -longest, samples / rate):
        length = max(2, round(rng.uniform(*MOTION_SECONDS) * rate))
        burst = bandpass(rng.standard_normal(length + 2 * rate), rate, MOTION_BAND)[rate:rate + length]
        burst = rng.uniform(*MOTION_AMPLITUDE) * np.hanning(length) * burst / np.sqrt(np.mean(burst ** 2))
        first = round(start * rate)
        lo, hi = max(first, 0), min(first + length, samples)
        if hi > lo:
            artefacts[lo:hi] += burst[lo - first:hi - first]
    return artefacts


def _vasomotion(rng: np.random.Generator, params: PPGConfig, rate: int, samples: int) -> np.ndarray:
    """The slow non-respiratory baseline (float64, `samples`, mean 0): for each of params.vasomotion_bands, white
    noise band-passed to it (1 / the lowest band edge in s of filter transient cut at each end), brought to an RMS
    uniform in params.vasomotion."""
    pad = round(rate / min(low for low, _ in params.vasomotion_bands))
    total = np.zeros(samples)
    for band in params.vasomotion_bands:
        wave = bandpass(rng.standard_normal(samples + 2 * pad), rate, band)[pad:pad + samples]
        total += rng.uniform(*params.vasomotion) * wave / np.sqrt(np.mean(wave ** 2))
    return total - total.mean()


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


def _pulse_train(rng: np.random.Generator, realism: np.random.Generator, ectopic: np.random.Generator,
                 params: PPGConfig, rate: int, samples: int, breath_phase: Callable[[np.ndarray], np.ndarray],
                 envelope: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The amplitude-modulated two-Gaussian pulse train (float64, `samples`) and its systolic peak times (s); the
    modulation depths follow the breathing's depth envelope (sighs). Premature beats (ectopic_rate) move onsets
    and scale heights; each pulse keeps the shape of its own sinus interval."""
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
                                 * envelope(onsets) * np.sin(breath_phase(onsets)))
        onsets = onsets[0] + np.concatenate([[0.0], np.cumsum(intervals[:-1])])
    onsets, strength = _premature_beats(ectopic, params.ectopic_rate, intervals, onsets)
    systolic = waves[0]
    peaks = onsets + (systolic[1] + np.pi) / (2 * np.pi) * intervals
    heights = strength * (1 + depth * (envelope(peaks) * np.sin(breath_phase(peaks))))
    # Each beat is evaluated on [onset - RR, onset + 2 RR], beyond which both Gaussians are below 1e-15.
    width = math.ceil(3 * intervals.max() * rate) + 1
    index = np.floor((onsets - intervals) * rate).astype(np.int64)[:, None] + np.arange(width)
    theta = -np.pi + 2 * np.pi * (index / rate - onsets[:, None]) / intervals[:, None]
    values = heights[:, None] * sum(a * np.exp(-0.5 * ((theta - c) / b) ** 2) for a, c, b in waves)
    inside = (index >= 0) & (index < samples)
    return np.bincount(index[inside], weights=values[inside], minlength=samples), peaks


def _premature_beats(rng: np.random.Generator, per_minute: float, intervals: np.ndarray, onsets: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(onsets, height factors) with premature beats at Poisson times: the next beat after each comes early, after
    ECTOPIC_COUPLING of its interval, at ECTOPIC_HEIGHT of its height, and the beat after it keeps its time (a full
    compensatory pause) at POTENTIATION of its height. Beside another premature beat, none is added."""
    strength = np.ones(onsets.size)
    if not per_minute:
        return onsets, strength
    onsets = onsets.copy()
    for k in np.unique(np.searchsorted(onsets, _event_times(rng, per_minute, onsets[0], onsets[-1]))):
        if 1 <= k < onsets.size - 1 and np.all(strength[k - 1:k + 2] == 1):
            onsets[k] = onsets[k - 1] + rng.uniform(*ECTOPIC_COUPLING) * intervals[k - 1]
            strength[k], strength[k + 1] = rng.uniform(*ECTOPIC_HEIGHT), rng.uniform(*POTENTIATION)
    return onsets, strength


def _intervals(rng: np.random.Generator, mean: float, variability: float, seconds: float) -> np.ndarray:
    """Log-normal beat intervals (s) with this mean and relative std, enough to reach past `seconds` from -2 mean."""
    sigma = math.sqrt(math.log1p(variability ** 2))
    shortest = mean * math.exp(-TRUNCATE_SIGMA * sigma - sigma ** 2 / 2)
    count = math.ceil((seconds + 2 * mean) / shortest) + 2
    z = np.clip(rng.standard_normal(count), -TRUNCATE_SIGMA, TRUNCATE_SIGMA)
    return mean * np.exp(sigma * z - sigma ** 2 / 2)
