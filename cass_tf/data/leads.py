"""Owns the multi-lead synthetic abdominal ECG: heart dipoles and noise sources projected onto N abdominal leads."""

from __future__ import annotations

import numpy as np

from cass_tf.config import ECGConfig
from cass_tf.data import ecg_model
from cass_tf.filters import bandpass

# Model (data.ecg.leads > 1; one lead keeps cass_tf.data.ecg's ECGSYN generator). After the FECGSYN simulator
# (Sameni, Clifford, Jutten, Shamsollahi, "Multichannel ECG and noise modeling: application to maternal and fetal
# ECG signals", EURASIP J. Adv. Signal Process. 2007:043407; Behar, Andreotti, Zaunseder, Li, Oster, Clifford, "An
# ECG simulator for generating maternal-foetal activity mixtures on abdominal ECG recordings", Physiol. Meas. 35(8),
# 2014; Andreotti et al., "An open-source framework for stress-testing non-invasive foetal ECG extraction
# algorithms", Physiol. Meas. 37(5), 2016). Ranges below are from memory of those papers, not a re-reading.
#   heart: a current dipole d(t) in 3-D (the VCG). Sameni's dynamic model puts each VCG axis as a sum of Gaussians
#     in the cardiac phase theta; here each of ECGSYN's five waves (P, Q, R, S, T: angles, widths as
#     ecg_model.ECGSYN_WAVES, scaled for the heart rate as ECGSYN does) has its own 3-D direction, so d(theta) =
#     sum_i u_i h_i exp(-dtheta_i^2 / 2 b_i^2): the R wave along the heart's electrical axis, Q and S turned
#     QRS_TURN_DEG from it (the QRS loop), P and T within PT_TURN_DEG of it. Heights WAVE_HEIGHTS;
#     morphology_jitter scales angles, widths and heights per heart as in the one-lead generator; the fetal QRS is
#     U(fetal_qrs_scale) times as long (ecg_model.narrowed_qrs, where the literature is cited). Beats follow
#     ECGSYN's RR process (ecg_model.rr_series; fetal hrstd from fetal_hr_std); theta runs linearly from 0 at one
#     beat to 2 pi at the next, so R peaks (theta = 0) are the beat times exactly: those are Recording.events (the
#     same on every lead).
#   volume conductor: infinite homogeneous (Behar 2014's default): an electrode at r sees p . (r - r0) / |r - r0|^3
#     from a dipole p at r0 (the 1 / 4 pi sigma is absorbed by the amplitude normalisation). Coordinates in metres,
#     origin at the uterus centre, z towards the head, y anterior. Electrodes on the anterior abdominal surface (a
#     cylinder of ABDOMEN_RADIUS), within ELECTRODE_ANGLE_DEG of the front and ELECTRODE_HEIGHT of the centre; the
#     reference on the flank (REFERENCE_ANGLE_DEG); lead c = electrode c - reference.
#   maternal heart at MATERNAL_HEART (+- MATERNAL_JITTER per axis); respiration (the breathing of noise_hz) turns its
#     dipole about a random horizontal axis by up to RESPIRATION_TURN_DEG and moves it up and down by up to
#     RESPIRATION_SHIFT (sinusoidally with the breath), so its projection changes slowly in time.
#   fetal heart uniform in the uterus (radius UTERUS_RADIUS, height UTERUS_HEIGHT), random axis; one fetal movement
#     per recording: a turn by U(FETAL_TURN_DEG) about a random axis and a shift by U(FETAL_SHIFT) in a random
#     direction, both along a raised-cosine ramp over a random MOVEMENT_SECONDS interval.
#   amplitudes: the maternal component scaled to a largest lead peak-to-peak of 1; the fetal one to a largest lead
#     peak-to-peak of 1 / r, r uniform in amplitude_ratio (so each lead has its own ratio, set by the geometry).
#   noise, each with its own spatial projection (added to the mixture only):
#     baseline: breathing (ecg's respiration sinusoid at noise_amplitude) plus, with wander_amplitude, ecg's slow
#       wander tones; one time course with a gain U(-1, 1) per lead (impedance change under each electrode).
#     mains (powerline_amplitude): ecg's mains time course with a gain U(0, 1) per lead (common-mode leakage).
#     with noise_snr_db, three sources sharing a noise power at U(noise_snr_db) dB below the mean maternal + fetal
#       lead power (Andreotti 2016: 0-12 dB against the maternal ECG), split by Dirichlet(1, 1, 1) weights:
#       muscle (abdominal EMG, stronger during a contraction): a dipole in the abdominal wall (MUSCLE_DEPTH under
#         the surface) with three white time courses band-passed to EMG_HZ, times an envelope 1 + CONTRACTION_GAIN *
#         a Gaussian bump of CONTRACTION_SECONDS width at a random time;
#       electrode motion: per electrode (reference included) a low-frequency (MOTION_HZ) random trace with bursts;
#         lead c gets motion_c - motion_reference;
#       white (amplifier) noise, independent per lead.
ABDOMEN_RADIUS = 0.17
ELECTRODE_ANGLE_DEG = 70.0
ELECTRODE_HEIGHT = 0.12
REFERENCE_ANGLE_DEG = (90.0, 120.0)
MATERNAL_HEART = (0.04, 0.03, 0.30)
MATERNAL_JITTER = 0.02
UTERUS_RADIUS, UTERUS_HEIGHT = 0.08, 0.08
WAVE_HEIGHTS = (0.12, -0.15, 1.0, -0.25, 0.3)  # P, Q, R, S, T relative to R
QRS_TURN_DEG = (30.0, 90.0)
PT_TURN_DEG = (0.0, 45.0)
RESPIRATION_TURN_DEG = (2.0, 10.0)
RESPIRATION_SHIFT = (0.0, 0.01)
FETAL_TURN_DEG = (0.0, 60.0)
FETAL_SHIFT = (0.0, 0.02)
MOVEMENT_SECONDS = (2.0, 20.0)
MUSCLE_DEPTH = (0.01, 0.03)
EMG_HZ = (20.0, 150.0)  # clipped to 0.9 of the Nyquist rate
CONTRACTION_GAIN = (0.0, 3.0)
CONTRACTION_SECONDS = (10.0, 30.0)
MOTION_HZ = 10.0
NOISE_SOURCES = ("muscle", "motion", "white")


def chunk(seeds: list[np.random.SeedSequence], params: ECGConfig, rate: int,
          samples: int) -> list[dict[str, np.ndarray]]:
    """The multi-lead recordings of `seeds`: "mixture", "maternal", "fetal" (leads, samples) float32 and
    "<heart>_events" (the true R-peak sample indices); each recording depends on its seed alone."""
    return [recording(seed, params, rate, samples) for seed in seeds]


def recording(seed: np.random.SeedSequence, params: ECGConfig, rate: int, samples: int,
              still: bool = False) -> dict[str, np.ndarray]:
    """One multi-lead recording (see `chunk`). `still`: no respiration or fetal movement, so each heart's leads are
    fixed linear projections of its 3-D dipole (the mixture is unchanged otherwise)."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / rate
    electrodes, reference = _electrodes(rng, params.leads)
    breath = ecg_model.respiration(rng, params, rate, samples)  # amplitude noise_amplitude; its phase drives the motion
    breath_phase = breath / max(float(np.max(np.abs(breath))), 1e-12)
    parts, events = {}, {}
    for heart, field, hr_std in (("maternal", "maternal_bpm", ecg_model.ECGSYN_HR_STD),
                                 ("fetal", "fetal_bpm", None)):
        if hr_std is None:
            hr_std = rng.uniform(*params.fetal_hr_std) if params.fetal_hr_std is not None else ecg_model.ECGSYN_HR_STD
        bpm = rng.uniform(*getattr(params, field))
        beats = _beats(rng, bpm, hr_std, samples / rate)
        qrs = 1.0 if heart == "maternal" or params.fetal_qrs_scale is None else rng.uniform(*params.fetal_qrs_scale)
        dipole = _dipole(rng, _phase(t, beats), bpm, params.morphology_jitter, qrs)
        position, rotation = _motion(rng, heart, t, breath_phase, still)
        moment = np.einsum("tij,tj->ti", rotation, dipole)
        parts[heart] = lead_field(electrodes, reference, position, moment)
        inside = beats[(beats >= 0) & (beats < samples / rate)]
        events[f"{heart}_events"] = np.unique(np.minimum(np.round(inside * rate), samples - 1)).astype(np.int64)
    parts["maternal"] /= _largest_ptp(parts["maternal"])
    parts["fetal"] *= 1 / (_largest_ptp(parts["fetal"]) * rng.uniform(*params.amplitude_ratio))
    noise = _noise(rng, params, rate, breath, parts["maternal"] + parts["fetal"], electrodes, reference)
    return {"mixture": (parts["maternal"] + parts["fetal"] + noise).astype(np.float32),
            "maternal": parts["maternal"].astype(np.float32), "fetal": parts["fetal"].astype(np.float32), **events}


def lead_field(electrodes: np.ndarray, reference: np.ndarray, position: np.ndarray,
               moment: np.ndarray) -> np.ndarray:
    """(leads, samples) potentials of a dipole with `moment` (samples, 3) at `position` ((samples, 3) or (3,)) at each
    electrode (leads, 3) minus the reference electrode (3,), in an infinite homogeneous conductor."""
    def potential(at: np.ndarray) -> np.ndarray:
        r = at[None, :] - np.broadcast_to(position, moment.shape)
        return np.einsum("ti,ti->t", moment, r) / np.linalg.norm(r, axis=1) ** 3

    return np.stack([potential(e) for e in electrodes]) - potential(reference)[None, :]


def _electrodes(rng: np.random.Generator, leads: int) -> tuple[np.ndarray, np.ndarray]:
    """Electrode positions (leads, 3) on the anterior surface and the reference (3,) on a flank."""
    angles = np.radians(rng.uniform(-ELECTRODE_ANGLE_DEG, ELECTRODE_ANGLE_DEG, leads))
    heights = rng.uniform(-ELECTRODE_HEIGHT, ELECTRODE_HEIGHT, leads)
    electrodes = np.stack([ABDOMEN_RADIUS * np.sin(angles), ABDOMEN_RADIUS * np.cos(angles), heights], axis=1)
    side = np.radians(rng.uniform(*REFERENCE_ANGLE_DEG)) * rng.choice([-1.0, 1.0])
    reference = np.array([ABDOMEN_RADIUS * np.sin(side), ABDOMEN_RADIUS * np.cos(side),
                          rng.uniform(-ELECTRODE_HEIGHT, ELECTRODE_HEIGHT)])
    return electrodes, reference


def _beats(rng: np.random.Generator, bpm: float, hr_std: float, seconds: float) -> np.ndarray:
    """Beat times (s) from before 0 to past `seconds`: ECGSYN's RR process (1 Hz), one beat per RR in force."""
    rr = ecg_model.rr_series(int(rng.integers(2**32)), bpm, hr_std, seconds + 4 * 60 / bpm)
    times = [-rng.uniform(0, rr[0]) - rr[0]]
    while times[-1] <= seconds + rr[0]:
        times.append(times[-1] + float(np.interp(times[-1] + rr[0], np.arange(rr.size), rr)))
    return np.array(times)


def _phase(t: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Cardiac phase in (-pi, pi]: 0 at each beat, rising linearly to 2 pi at the next (wrapped)."""
    k = np.clip(np.searchsorted(beats, t, side="right") - 1, 0, beats.size - 2)
    fraction = (t - beats[k]) / (beats[k + 1] - beats[k])
    return 2 * np.pi * np.where(fraction > 0.5, fraction - 1, fraction)


def _dipole(rng: np.random.Generator, theta: np.ndarray, bpm: float, jitter: float, qrs: float = 1.0) -> np.ndarray:
    """(samples, 3) dipole moment of one heart at cardiac phase `theta`, its QRS `qrs` times ECGSYN's length (see
    the model notes)."""
    waves = ecg_model.narrowed_qrs(ecg_model.jittered_waves(rng, jitter), qrs)
    heights = np.asarray(WAVE_HEIGHTS) * (1 + rng.uniform(-jitter, jitter, 5)) if jitter else np.asarray(WAVE_HEIGHTS)
    hrfact = np.sqrt(bpm / 60.0)
    angles = np.radians(waves["ti"]) * np.array([np.sqrt(hrfact), hrfact, 1, hrfact, np.sqrt(hrfact)])
    widths = hrfact * np.asarray(waves["bi"])
    axis = _unit(rng.standard_normal(3))
    directions = np.stack([_turn(rng, axis, PT_TURN_DEG), _turn(rng, axis, QRS_TURN_DEG), axis,
                           _turn(rng, axis, QRS_TURN_DEG), _turn(rng, axis, PT_TURN_DEG)])
    delta = np.angle(np.exp(1j * (theta[:, None] - angles[None, :])))  # wrapped to (-pi, pi]
    return (heights * np.exp(-0.5 * (delta / widths) ** 2)) @ directions


def _motion(rng: np.random.Generator, heart: str, t: np.ndarray, breath: np.ndarray,
            still: bool) -> tuple[np.ndarray, np.ndarray]:
    """(positions (samples, 3), rotations (samples, 3, 3)) of a heart over the recording."""
    if heart == "maternal":
        centre = np.asarray(MATERNAL_HEART) + rng.uniform(-MATERNAL_JITTER, MATERNAL_JITTER, 3)
        axis = _unit(np.append(rng.standard_normal(2), 0.0))
        turn, shift = np.radians(rng.uniform(*RESPIRATION_TURN_DEG)), rng.uniform(*RESPIRATION_SHIFT)
        course, direction = breath, np.array([0.0, 0.0, 1.0])
    else:
        radius, angle = UTERUS_RADIUS * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        centre = np.array([radius * np.cos(angle), radius * np.sin(angle), rng.uniform(-UTERUS_HEIGHT, UTERUS_HEIGHT)])
        axis = _unit(rng.standard_normal(3))
        turn, shift = np.radians(rng.uniform(*FETAL_TURN_DEG)), rng.uniform(*FETAL_SHIFT)
        direction = _unit(rng.standard_normal(3))
        length = rng.uniform(*MOVEMENT_SECONDS)
        start = rng.uniform(-length, t[-1] + 1 / max(t.size, 1))
        course = (1 - np.cos(np.pi * np.clip((t - start) / length, 0, 1))) / 2
    if still:
        turn, shift = 0.0, 0.0
    return centre + shift * course[:, None] * direction, _rotations(axis, turn * course)


def _rotations(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(samples, 3, 3) rotations by `angles` (rad) about the unit `axis` (Rodrigues)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    s, c = np.sin(angles)[:, None, None], np.cos(angles)[:, None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def _turn(rng: np.random.Generator, axis: np.ndarray, degrees: tuple[float, float]) -> np.ndarray:
    """A unit vector at U(degrees) from `axis`, in a random direction."""
    normal = _unit(np.cross(axis, rng.standard_normal(3)))
    angle = np.radians(rng.uniform(*degrees))
    return np.cos(angle) * axis + np.sin(angle) * normal


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _largest_ptp(leads: np.ndarray) -> float:
    return float(np.max(np.ptp(leads, axis=1)))


def _noise(rng: np.random.Generator, params: ECGConfig, rate: int, breath: np.ndarray, clean: np.ndarray,
           electrodes: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(leads, samples) baseline + mains + muscle/motion/white noise, each with its own projection (model notes)."""
    leads, samples = clean.shape
    t = np.arange(samples) / rate
    baseline = breath + (ecg_model.wander_tones(rng, params, t) if params.wander_amplitude is not None else 0.0)
    total = rng.uniform(-1, 1, (leads, 1)) * baseline
    if params.powerline_amplitude is not None:
        total += rng.uniform(0, 1, (leads, 1)) * sum(ecg_model.mains(rng, params, rate, t))
    if params.noise_snr_db is None:
        return total
    power = float(np.mean(clean ** 2)) / 10 ** (rng.uniform(*params.noise_snr_db) / 10)
    shares = dict(zip(NOISE_SOURCES, rng.dirichlet(np.ones(len(NOISE_SOURCES)))))
    sources = {"muscle": _muscle(rng, rate, t, electrodes, reference),
               "motion": _electrode_motion(rng, rate, samples, leads),
               "white": rng.standard_normal((leads, samples))}
    for name, source in sources.items():
        total += source * np.sqrt(shares[name] * power / max(float(np.mean(source ** 2)), 1e-30))
    return total


def _muscle(rng: np.random.Generator, rate: int, t: np.ndarray, electrodes: np.ndarray,
            reference: np.ndarray) -> np.ndarray:
    """Abdominal EMG: a band-limited 3-D dipole in the abdominal wall, louder during a contraction."""
    band = (EMG_HZ[0], min(EMG_HZ[1], 0.9 * rate / 2))
    courses = bandpass(rng.standard_normal((3, t.size)), rate, band).T
    width, centre = rng.uniform(*CONTRACTION_SECONDS), rng.uniform(0, t[-1] if t.size else 0)
    envelope = 1 + rng.uniform(*CONTRACTION_GAIN) * np.exp(-0.5 * ((t - centre) / width) ** 2)
    angle, depth = rng.uniform(-np.pi / 2, np.pi / 2), ABDOMEN_RADIUS - rng.uniform(*MUSCLE_DEPTH)
    position = np.array([depth * np.sin(angle), depth * np.cos(angle),
                         rng.uniform(-ELECTRODE_HEIGHT, ELECTRODE_HEIGHT)])
    return lead_field(electrodes, reference, position, courses * envelope[:, None])


def _electrode_motion(rng: np.random.Generator, rate: int, samples: int, leads: int) -> np.ndarray:
    """Per electrode (reference last) low-passed noise in bursts; lead c gets electrode c's minus the reference's."""
    shape = (leads + 1, samples)
    bursts = (rng.uniform(size=shape) < 1 / rate) * rng.standard_normal(shape)
    traces = bandpass(np.cumsum(bursts, axis=1) + 0.1 * rng.standard_normal(shape), rate,
                      (0.1, min(MOTION_HZ, 0.9 * rate / 2)))
    return traces[:-1] - traces[-1]
