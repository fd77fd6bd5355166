"""Owns the experiment config: its typed frozen dataclasses, what each field means and may be, loading it from JSON
with `--set` overrides (the generic JSON <-> dataclass machinery: cass_tf.binder)."""

from __future__ import annotations

import json
import math
import os
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Sequence

# ConfigError, apply_overrides and flatten are also cass_tf.config's names, as before the binder had a module of its own
from cass_tf.binder import ConfigError, apply_overrides, as_json, build, flatten, to_plain  # noqa: F401

DOWNSAMPLING = 8  # the ResNet-9 encoder halves F and T three times
SOURCE_COMPONENTS = {
    "ecg": ("maternal", "fetal"),
    "ppg": ("heart", "respiratory"),
    "bach10": ("violin", "clarinet", "saxophone", "bassoon"),
}


Range = tuple[float, float]
Cancellation = Literal["none", "maternal_template"]  # model.cancellation (cass_tf.cancellation)
CANCELLATIONS: tuple[str, ...] = typing.get_args(Cancellation)


@dataclass(frozen=True)
class ECGConfig:
    """Synthetic abdominal ECG (maternal + fetal + respiratory noise), see cass_tf.data.ecg."""

    maternal_bpm: Range = (80.0, 90.0)
    fetal_bpm: Range = (120.0, 160.0)
    amplitude_ratio: Range = (2.0, 10.0)  # maternal peak / fetal peak
    noise_hz: Range = (0.2, 0.5)  # respiratory sinusoid frequency (breathing range)
    noise_amplitude: Range = (0.05, 0.5)  # respiratory sinusoid amplitude, relative to the maternal peak
    integration_rate: int = 512  # ECGSYN's internal rate; a multiple of data.sample_rate
    seconds: float = 20.0
    train_recordings: int = 48
    test_recordings: int = 8
    # Realistic abdominal recordings (on in configs/ecg.json); every default is off: the paper's plain setting
    # (configs/paper/ecg.json).
    # Nuisances go into the mixture only; amplitudes are relative to the maternal peak-to-peak.
    wander_amplitude: Optional[Range] = None  # baseline wander (0.05-0.5 Hz), peak amplitude
    powerline_amplitude: Optional[Range] = None  # 50 or 60 Hz mains + harmonics below Nyquist, fundamental amplitude
    noise_snr_db: Optional[Range] = None  # white (muscle/electrode) noise, SNR against maternal + fetal power
    polarity_flip: bool = False  # each heart's projection onto the electrode gets a random sign
    morphology_jitter: float = 0.0  # relative jitter of ECGSYN's P/Q/R/S/T angles, heights and widths, per heart
    fetal_hr_std: Optional[Range] = None  # std (BPM) of the fetal RR process; None: ECGSYN's 1 BPM
    fetal_qrs_scale: Optional[Range] = None  # the fetal QRS this many times ECGSYN's length (ecg_model.narrowed_qrs)
    # abdominal leads; > 1: cass_tf.data.leads' dipoles in a volume conductor, (leads, samples) arrays (a one-lead
    # model takes each lead as a recording of its own)
    leads: int = 1
    # a one-lead model of multi-lead recordings also trains on this many recordings of the one-lead generator (the
    # same settings), beside the leads: both generators at once (cass_tf.data.load_recordings)
    one_lead_recordings: int = 0

    def check(self, path: str, sample_rate: int) -> None:
        for name in ("maternal_bpm", "fetal_bpm", "amplitude_ratio", "noise_hz"):
            _check_range(f"{path}.{name}", getattr(self, name), low=1e-6)
        _check_range(f"{path}.noise_amplitude", self.noise_amplitude, low=0.0)
        for name in ("wander_amplitude", "powerline_amplitude", "fetal_hr_std"):
            if getattr(self, name) is not None:
                _check_range(f"{path}.{name}", getattr(self, name), low=0.0)
        if self.noise_snr_db is not None:
            _check_range(f"{path}.noise_snr_db", self.noise_snr_db, low=-math.inf)
        if not 0.0 <= self.morphology_jitter < 0.5:
            raise ConfigError(f"{path}.morphology_jitter: must be in [0, 0.5), got {self.morphology_jitter}")
        if self.fetal_qrs_scale is not None:
            _check_range(f"{path}.fetal_qrs_scale", self.fetal_qrs_scale, low=0.25)
        if not isinstance(self.leads, int) or self.leads < 1:
            raise ConfigError(f"{path}.leads: must be a whole number of abdominal leads >= 1, got {self.leads!r}")
        if not isinstance(self.one_lead_recordings, int) or self.one_lead_recordings < 0:
            raise ConfigError(f"{path}.one_lead_recordings: must be a whole number >= 0, got {self.one_lead_recordings!r}")
        if self.amplitude_ratio[0] < 1.0:
            raise ConfigError(f"{path}.amplitude_ratio: the maternal peak must be at least the fetal one, got {list(self.amplitude_ratio)}")
        if self.integration_rate % sample_rate:
            raise ConfigError(
                f"{path}.integration_rate: must be a multiple of data.sample_rate ({sample_rate}), got {self.integration_rate}")
        _check_recordings(self, path)


@dataclass(frozen=True)
class PPGConfig:
    """Synthetic wrist PPG (pulse + respiration), see cass_tf.data.ppg."""

    heart_bpm: Range = (50.0, 110.0)
    breathing_hz: Range = (0.1, 0.5)
    beat_variability: float = 0.03  # std of beat-to-beat interval, relative to the mean interval
    respiratory_depth: Range = (0.2, 1.0)  # respiratory baseline swing relative to the pulse amplitude
    seconds: float = 60.0
    train_recordings: int = 48
    test_recordings: int = 8
    # Realistic PPG (on in configs/ppg.json); every default is off: the plain setting of configs/paper/ppg.json
    # (see cass_tf.data.ppg).
    morphology_jitter: float = 0.0  # relative jitter of the two Gaussians' heights, centres and widths
    amplitude_modulation: Optional[Range] = None  # respiratory-induced pulse-height depth; None: 0.1
    frequency_modulation: Optional[Range] = None  # respiratory sinus arrhythmia, relative beat-interval depth
    noise_snr_db: Optional[Range] = None  # white sensor noise, SNR against the clean mixture's power
    scale: Optional[Range] = None  # one factor for mixture and components, log-uniform in this range
    breathing_variability: float = 0.0  # relative wander of the breathing frequency between 5-s knots
    breath_harmonic: Optional[Range] = None  # second-harmonic amplitude of the breath wave, relative
    # Irregular breathing and motion (on in configs/ppg.json; 0 = off), events per minute (Poisson), see data/ppg.py.
    sigh_rate: float = 0.0  # sighs: one breath about 2-3x as deep
    pause_rate: float = 0.0  # breathing pauses (the breathing phase stops)
    rate_changes: float = 0.0  # the breathing rate jumps to a new draw from breathing_hz
    # breathing rates log-normal around [median Hz, sigma of ln f], truncated to breathing_hz; None: uniform
    breathing_prior: Optional[Range] = None
    motion_rate: float = 0.0  # motion artefacts in the mixture only
    ectopic_rate: float = 0.0  # premature beats per minute (Poisson): early, smaller pulses, see data/ppg.py
    vasomotion: Optional[Range] = None  # slow non-respiratory baseline (Mayer waves, VLF), RMS range, in `heart`
    vasomotion_bands: tuple[Range, ...] = ((0.04, 0.15), (0.01, 0.04))  # its bands (Hz), each at an RMS drawn from it
    # what `respiratory` is: "wander", the baseline wander the PPG carries additively (heart + respiratory is the
    # clean PPG); "breathing", the breathing waveform all three modulations follow, at the pulse amplitude (not in
    # the mixture as such: a model outputs it from model.direct), see data/ppg.py
    respiratory_target: Literal["wander", "breathing"] = "wander"

    def check(self, path: str, sample_rate: int) -> None:
        for name in ("heart_bpm", "breathing_hz"):
            _check_range(f"{path}.{name}", getattr(self, name), low=1e-6)
        _check_range(f"{path}.respiratory_depth", self.respiratory_depth, low=0.0)
        if not 0.0 <= self.beat_variability < 0.5:
            raise ConfigError(f"{path}.beat_variability: must be in [0, 0.5), got {self.beat_variability}")
        if self.breathing_hz[1] >= sample_rate / 2:
            raise ConfigError(f"{path}.breathing_hz: above the Nyquist rate of data.sample_rate, got {list(self.breathing_hz)}")
        if self.breathing_prior is not None:
            median, sigma = self.breathing_prior
            if not (self.breathing_hz[0] <= median <= self.breathing_hz[1] and 0 < sigma <= 2):
                raise ConfigError(f"{path}.breathing_prior: [median Hz inside breathing_hz, sigma in (0, 2]], got "
                                  f"{list(self.breathing_prior)}")
        if not 0.0 <= self.morphology_jitter < 0.5:
            raise ConfigError(f"{path}.morphology_jitter: must be in [0, 0.5), got {self.morphology_jitter}")
        for name, below in (("amplitude_modulation", 1), ("frequency_modulation", 1), ("breath_harmonic", 1),
                            ("vasomotion", 10)):
            if getattr(self, name) is not None:
                _check_range_below(f"{path}.{name}", getattr(self, name), below)
        if not self.vasomotion_bands or not all(len(b) == 2 and 0 < b[0] < b[1] < sample_rate / 2
                                                for b in self.vasomotion_bands):
            raise ConfigError(f"{path}.vasomotion_bands: must be one or more [low, high] Hz bands with 0 < low < high "
                              f"< data.sample_rate / 2, got {as_json(self.vasomotion_bands)}")
        if self.noise_snr_db is not None:
            _check_range(f"{path}.noise_snr_db", self.noise_snr_db, low=-math.inf)
        if self.scale is not None:
            _check_range(f"{path}.scale", self.scale, low=1e-12)
        if not 0.0 <= self.breathing_variability < 0.5:
            raise ConfigError(f"{path}.breathing_variability: must be in [0, 0.5), got {self.breathing_variability}")
        for name in ("sigh_rate", "pause_rate", "rate_changes", "motion_rate", "ectopic_rate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 10.0):
                raise ConfigError(f"{path}.{name}: must be a number of events per minute in [0, 10], got {value}")
        _check_recordings(self, path)


@dataclass(frozen=True)
class Bach10Config:
    """The real Bach10 dataset in its own layout: <root>/NN-Name/NN-Name[-instrument].wav."""

    root: str = "../shared/data/Bach10"
    mixture: Literal["components", "full"] = "components"  # sum of the chosen stems, or the dataset's 4-instrument mix
    test_pieces: tuple[str, ...] = ("09-Jesus", "10-NunBitten")

    def check(self, path: str, sample_rate: int) -> None:
        """Pure rules only: that `root` and the pieces exist is checked when the data is loaded (data/bach10.py)."""
        if not self.root:
            raise ConfigError(f"{path}.root: must not be empty")
        if not self.test_pieces or len(set(self.test_pieces)) != len(self.test_pieces) or not all(self.test_pieces):
            raise ConfigError(f"{path}.test_pieces: must be one or more distinct piece names, got {list(self.test_pieces)}")


@dataclass(frozen=True)
class DataConfig:
    source: Literal["ecg", "ppg", "bach10"]
    sample_rate: int
    components: tuple[str, ...]
    ecg: Optional[ECGConfig] = None
    ppg: Optional[PPGConfig] = None
    bach10: Optional[Bach10Config] = None
    cache_dir: Optional[str] = None  # where generated synthetic waveforms are cached on disk (None: memory only)
    # What the networks see as the mixture: the magnitude of the summed waveform, or (the authors' code) the sum of
    # the sources' STFT magnitudes, i.e. of each component and of whatever else is in the mix (mixture - components);
    # the phase always comes from the real mixture (cass_tf.data.pipeline).
    mixture_domain: Literal["waveform", "magnitude_sum"] = "waveform"
    # > 0: the last N training recordings (pieces, for Bach10) are held out and evaluated in place of the test split,
    # for choosing settings without looking at the test split (cass_tf.data.load_recordings).
    validation_recordings: int = 0

    def check(self, path: str) -> None:
        _check_positive(f"{path}.sample_rate", self.sample_rate)
        if self.validation_recordings < 0:
            raise ConfigError(f"{path}.validation_recordings: must be >= 0, got {self.validation_recordings}")
        allowed = SOURCE_COMPONENTS[self.source]
        if not self.components:
            raise ConfigError(f"{path}.components: at least one component is needed")
        if len(set(self.components)) != len(self.components):
            raise ConfigError(f"{path}.components: names must be unique, got {list(self.components)}")
        for name in self.components:
            if name not in allowed:
                raise ConfigError(f"{path}.components: {name!r} is not a {self.source} component (choose from {list(allowed)})")
        for source in SOURCE_COMPONENTS:
            section = getattr(self, source)
            if source == self.source and section is None:
                raise ConfigError(f"{path}.{source}: missing; data.source is {source!r}")
            if source != self.source and section is not None:
                raise ConfigError(f"{path}.{source}: given, but data.source is {self.source!r}")
        getattr(self, self.source).check(f"{path}.{self.source}", self.sample_rate)

    @property
    def params(self) -> ECGConfig | PPGConfig | Bach10Config:
        """The section for the configured source."""
        return getattr(self, self.source)


@dataclass(frozen=True)
class STFTConfig:
    n_fft: int
    hop: int
    window: int  # window (frame) length in samples, <= n_fft
    window_fn: Literal["hann", "hamming"] = "hann"

    def check(self, path: str) -> None:
        for name in ("n_fft", "hop", "window"):
            _check_positive(f"{path}.{name}", getattr(self, name))
        if self.window > self.n_fft:
            raise ConfigError(f"{path}.window: must be <= stft.n_fft ({self.n_fft}), got {self.window}")
        if self.hop > self.window // 2:
            raise ConfigError(f"{path}.hop: must be <= window/2 ({self.window // 2}) for an exact inverse, got {self.hop}")

    def samples_for(self, frames: Any) -> Any:
        """Samples that give exactly `frames` STFT frames (an int, or a tensor: plain arithmetic)."""
        return self.window + (frames - 1) * self.hop

    def frames_in(self, samples: Any) -> Any:
        """1 + (samples - window) // hop, the frames an STFT without padding yields for `samples` samples (an int, or
        an int tensor: plain arithmetic); negative when shorter than one window (`num_frames` clamps it)."""
        return 1 + (samples - self.window) // self.hop

    def num_frames(self, samples: int) -> int:
        """Frames an STFT without padding yields for `samples` samples (0 when shorter than one window)."""
        return max(0, self.frames_in(samples))


@dataclass(frozen=True)
class PatchConfig:
    """The (F, T) spectrogram patch the networks see: the lowest F bins of T consecutive frames."""

    frequency_bins: int
    frames: int


@dataclass(frozen=True)
class ScalingConfig:
    """Invertible magnitude scaling of a linear magnitude m (computed by cass_tf.spectral.scale and unscale): "linear"
    m, "log1p" log(1 + gain*m), "power" (gain*m)**exponent; `formula()` writes it out with this config's values."""

    kind: Literal["linear", "log1p", "power"] = "linear"
    gain: float = 1.0
    exponent: float = 0.5

    def check(self, path: str) -> None:
        _check_positive(f"{path}.gain", self.gain)
        _check_positive(f"{path}.exponent", self.exponent)

    def formula(self) -> str:
        """The scaling as a formula of the linear magnitude m, e.g. "log1p(2.0 * m)" (what an export's asset says)."""
        if self.kind == "log1p":
            return f"log1p({self.gain} * m)"
        if self.kind == "power":
            return f"({self.gain} * m) ** {self.exponent}"
        return "m, linear"


@dataclass(frozen=True)
class ModelConfig:
    """The autoencoders: width, what they output and see, and the level the inputs are brought to.

    output: "magnitude" (a softplus magnitude) or "mask" (a [0, 1] mask times the mixture, scaled domain) borrow
        the mixture's phase; "complex_mask" predicts a complex ratio mask (modulus tanh-bounded to 1, as in DCCRN)
        applied to the mixture's complex STFT, so each estimate has its own phase.
    input (complex_mask only): what the network sees of the mixture's complex STFT: "magnitude" (scaled), "magnitude_phase"
        (scaled magnitude, cos and sin of the phase) or "complex" (real and imaginary parts times scaled/linear magnitude).
    consistency (complex_mask only): "project" adds an equal share of (mixture - sum of estimates) to each estimate
        (Wisdom et al., ICASSP 2019), for data whose components sum to the mixture; "none" leaves them.
    input_rms: every input (a training crop, or a whole row at inference) is scaled to this RMS before the STFT and
        the outputs scaled back, which makes separation scale-equivariant; None (models trained before this field)
        feeds inputs as they come.
    remove_dc (needs input_rms): at inference each row's mean is subtracted before its level is taken, so a constant
        offset changes nothing (separate(x + c) = separate(x)) and the outputs sum to the row less its mean. For
        signals whose DC is set by the device, not the source (a PPG); training crops are fed as they come.
    """

    width: int = 32  # channels of the first ResNet-9 stage; doubled at each of the three downsamplings
    output: Literal["magnitude", "mask", "complex_mask"] = "magnitude"
    input: Literal["magnitude", "magnitude_phase", "complex"] = "magnitude"
    consistency: Literal["none", "project"] = "none"
    input_rms: Optional[float] = None
    remove_dc: bool = False
    # the discriminators' normalisation: BatchNorm (the paper's ResNet-9), LayerNorm, spectral normalisation of the
    # convolutions, or none; only "batch" makes a discriminator's output depend on the rest of its batch
    discriminator_norm: Literal["batch", "layer", "spectral", "none"] = "batch"
    # each D_i judges real, fake and cross inputs in one call on their concatenation, or in one call each (before)
    discriminator_batch: Literal["concatenated", "separate"] = "concatenated"
    # true: each autoencoder takes all leads of a recording together, features [B, leads, F, T, 2], any number of
    # leads, lead-permutation-equivariant (cass_tf.models.resnet9.build_multilead_autoencoder); the discriminators
    # judge each lead with shared weights. false: one lead (channel) at a time, today's networks
    multilead: bool = False
    # components whose autoencoders output their complex STFT itself instead of a mask of the mixture's ("complex_mask"
    # one-lead models, consistency "none"): for a component the mixture does not hold additively, such as a breathing
    # waveform a PPG carries as modulations of its pulses (data.ppg.respiratory_target "breathing")
    direct: tuple[str, ...] = ()
    # components whose autoencoders output a softplus magnitude with the mixture's phase, as model.output "magnitude"
    # does, inside a "complex_mask" one-lead model whose other components keep their complex masks: the magnitude is
    # not bounded by the mixture's, so it may be larger than the mixture's in a bin (a breath's peak in a PPG whose
    # breathing band is weak), never of another phase (before model.consistency's projection, if any)
    borrowed_phase: tuple[str, ...] = ()
    # "maternal_template": the networks separate what maternal template subtraction leaves (cass_tf.cancellation; ECG
    # with a "maternal" component), in training and in separation, and the templates are added back to the maternal
    # output; "none": they separate the recording itself
    cancellation: Cancellation = "none"

    def check(self, path: str) -> None:
        _check_positive(f"{path}.width", self.width)
        if self.multilead and self.output != "complex_mask":
            raise ConfigError(f"{path}.multilead: needs model.output \"complex_mask\", got {self.output!r}")
        if self.input_rms is not None:
            _check_positive(f"{path}.input_rms", self.input_rms)
        if self.remove_dc and self.input_rms is None:
            raise ConfigError(f"{path}.remove_dc: needs model.input_rms (blocks of a long row are separated at the "
                              "whole row's level, less the whole row's mean)")
        if self.direct and (self.output != "complex_mask" or self.multilead or self.consistency != "none"):
            raise ConfigError(f"{path}.direct: needs a one-lead model.output \"complex_mask\" with consistency \"none\" "
                              f"(a direct output is not a share of the mixture), got output {self.output!r}, multilead "
                              f"{self.multilead}, consistency {self.consistency!r}")
        if self.borrowed_phase and (self.output != "complex_mask" or self.multilead):
            raise ConfigError(f"{path}.borrowed_phase: needs a one-lead model.output \"complex_mask\" (the other "
                              f"components' masks), got output {self.output!r}, multilead {self.multilead}")
        if set(self.direct) & set(self.borrowed_phase):
            raise ConfigError(f"{path}: a component is either direct or borrowed_phase, got both for "
                              f"{sorted(set(self.direct) & set(self.borrowed_phase))}")
        if self.output != "complex_mask":
            for name, default in (("input", "magnitude"), ("consistency", "none")):
                if getattr(self, name) != default:
                    raise ConfigError(f"{path}.{name}: {getattr(self, name)!r} needs model.output \"complex_mask\", "
                                      f"got {self.output!r}")

    @property
    def complex(self) -> bool:
        """Whether the networks work on complex spectra (features [F, T, 2]) instead of magnitudes ([F, T, 1])."""
        return self.output == "complex_mask"


@dataclass(frozen=True)
class ReconstructionConfig:
    """The reconstruction term of eq. 7 (cass_tf.losses.reconstruction_loss): weighted sum of

    spectrum: MSE on the output spectrogram (the paper's; the scaled magnitude features, or real and imaginary
        parts of the complex estimate for complex outputs); waveform (complex outputs only): `waveform_loss` on the
        waveforms after the in-graph inverse STFT: "l1" or "l2" (mean absolute / squared error), "neg_sdr" (-SDR,
        i.e. 20 log10 of the relative L2 error, per example) or "neg_si_sdr"."""

    spectrum: float = 1.0
    waveform: float = 0.0
    waveform_loss: Literal["l1", "l2", "neg_sdr", "neg_si_sdr"] = "l1"

    def check(self, path: str) -> None:
        for name in ("spectrum", "waveform"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{path}.{name}: must be >= 0, got {getattr(self, name)}")
        if self.spectrum == 0 and self.waveform == 0:
            raise ConfigError(f"{path}: at least one of spectrum and waveform must be > 0")


@dataclass(frozen=True)
class LossConfig:
    mode: Literal["baseline", "cass", "cass_cross"] = "cass_cross"
    alpha: float = 0.9
    beta: float = 0.1
    cross: tuple[tuple[float, ...], ...] = ()  # K x K, cross[i][j] weighs BCE(D_i(AE_j(X)), 0); () means all 0.01 off the diagonal
    reconstruction: ReconstructionConfig = field(default_factory=ReconstructionConfig)
    # what the discriminators judge: the scaled magnitude of an estimate (the paper's) or its complex spectrum
    discriminator_input: Literal["magnitude", "complex"] = "magnitude"

    def check(self, path: str, k: int) -> None:
        for name in ("alpha", "beta"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{path}.{name}: must be >= 0, got {getattr(self, name)}")
        self.reconstruction.check(f"{path}.reconstruction")
        if not self.cross:
            return
        if len(self.cross) != k or any(len(row) != k for row in self.cross):
            raise ConfigError(f"{path}.cross: must be {k}x{k} (one row and column per component), got {as_json(self.cross)}")
        for i, row in enumerate(self.cross):
            if row[i] != 0:
                raise ConfigError(f"{path}.cross[{i}][{i}]: the diagonal must be 0, got {row[i]}")
            for j, value in enumerate(row):
                if value < 0:
                    raise ConfigError(f"{path}.cross[{i}][{j}]: must be >= 0, got {value}")

    def cross_matrix(self, k: int) -> tuple[tuple[float, ...], ...]:
        """The K x K cross weights in effect: zero unless mode is cass_cross; the paper's 0.01 when not given."""
        if self.mode != "cass_cross":
            return tuple((0.0,) * k for _ in range(k))
        if self.cross:
            return self.cross
        return tuple(tuple(0.0 if i == j else 0.01 for j in range(k)) for i in range(k))


@dataclass(frozen=True)
class TrainConfig:
    ae_learning_rate: float = 1e-5
    d_learning_rate: float = 1e-6
    batch_size: int = 50
    epochs: int = 500
    steps_per_epoch: int = 100
    # the compute precision (cass_tf.precision): "float32", "mixed_bfloat16", "mixed_float16" or "auto" (bfloat16
    # where the device runs it natively, float16 with loss scaling on older GPUs, float32 otherwise)
    precision: Literal["float32", "mixed_bfloat16", "mixed_float16", "auto"] = "float32"
    jit_compile: bool = False
    # the first N steps train the autoencoders on the reconstruction loss alone (eq. 7's BCE term off), while the
    # discriminators already learn (eqs. 8/9)
    warmup_steps: int = 0
    # "simultaneous": both groups' gradients from one forward pass; "alternating": the discriminators step first,
    # then the autoencoders on a fresh forward pass that sees the updated discriminators (cass_tf.models.cass)
    update: Literal["simultaneous", "alternating"] = "simultaneous"
    # seeds the network weights and the training crops' draw; None: the top-level `seed` (which also draws the
    # synthetic recordings), so runs that differ only here train on the same data and are scored on the same test set
    seed: Optional[int] = None
    # checkpoints kept in model_dir/checkpoints: a resume skips a corrupt latest one for the newest intact one
    keep_checkpoints: int = 3
    # multi-lead models (model.multilead): each training example keeps k of its recording's leads, drawn at random
    # and in random order, k uniform in [low, high] and the same for the whole batch (cass_tf.data.pipeline), so the
    # model learns to work with fewer leads; None: every lead, in the generator's order
    leads_kept: Optional[tuple[int, int]] = None
    # a one-lead complex-mask export (SavedModel version directory) of the same STFT, patch, components, network input
    # and width whose autoencoders start a fresh run (a multi-lead model: on every lead, its lead context starting as
    # the identity; cass_tf.models.resnet9.copy_autoencoder); the discriminators start fresh; a resume ignores it
    init_from: Optional[str] = None
    # WiSE-FT (Wortsman et al., CVPR 2022): the run's exports hold (1 - w) * init_from's autoencoder weights + w * the
    # trained ones (cass_tf.exporting.trained_model); needs init_from of the same network; None: the trained weights
    wise_ft: Optional[float] = None

    def check(self, path: str) -> None:
        for name in ("ae_learning_rate", "d_learning_rate"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{path}.{name}: must be >= 0, got {getattr(self, name)}")
        if self.wise_ft is not None and not (self.init_from and 0.0 <= self.wise_ft <= 1.0):
            raise ConfigError(f"{path}.wise_ft: needs {path}.init_from and a weight in [0, 1], got {self.wise_ft} "
                              f"with init_from {as_json(self.init_from)}")
        if self.warmup_steps < 0:
            raise ConfigError(f"{path}.warmup_steps: must be >= 0, got {self.warmup_steps}")
        if self.seed is not None and not 0 <= self.seed < 2**31:
            raise ConfigError(f"{path}.seed: must be in [0, 2**31) or null, got {self.seed}")
        for name in ("batch_size", "epochs", "steps_per_epoch", "keep_checkpoints"):
            _check_positive(f"{path}.{name}", getattr(self, name))
        if self.leads_kept is not None and not 1 <= self.leads_kept[0] <= self.leads_kept[1]:
            raise ConfigError(f"{path}.leads_kept: must be [low, high] with 1 <= low <= high, got {list(self.leads_kept)}")


@dataclass(frozen=True)
class OutputConfig:
    model_dir: str = "runs/default"
    export_dir: str = "saved_models/default"
    # pipelines/train_export.py pushes only if, on the evaluation recordings, every component's whole-signal L2 is
    # below bless_threshold, every QRS F1 (ECG) at least bless_qrs_f1 and every rate error (PPG, per minute) at
    # most bless_rate_error (null: no bound on that score), and no bounded score is worse than the pushed model's.
    bless_threshold: float = 1.0
    bless_qrs_f1: Optional[float] = None
    bless_rate_error: Optional[float] = None
    # what exported SavedModels compute in (cass_tf.exporting): "float32", or "mixed_bfloat16", the networks'
    # convolutions in bfloat16 as train.precision mixed_bfloat16 trains them (faster on CPUs with bfloat16 units)
    precision: Literal["float32", "mixed_bfloat16"] = "float32"

    def check(self, path: str) -> None:
        _check_positive(f"{path}.bless_threshold", self.bless_threshold)
        if self.bless_qrs_f1 is not None and not 0.0 <= self.bless_qrs_f1 <= 1.0:
            raise ConfigError(f"{path}.bless_qrs_f1: must be in [0, 1] or null, got {self.bless_qrs_f1}")
        if self.bless_rate_error is not None:
            _check_positive(f"{path}.bless_rate_error", self.bless_rate_error)

    def bless_bounds(self) -> dict[str, float]:
        """{score: bound} of the scores blessing bounds: "l2" always, the event scores where set."""
        bounds = {"l2": self.bless_threshold, "qrs_f1": self.bless_qrs_f1, "rate_error": self.bless_rate_error}
        return {k: v for k, v in bounds.items() if v is not None}


@dataclass(frozen=True)
class Config:
    """One experiment, fully: data, STFT, patch, scaling, model, losses, training, outputs."""

    name: str
    seed: int
    data: DataConfig
    stft: STFTConfig
    patch: PatchConfig
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def check(self) -> None:
        if not self.name:
            raise ConfigError("name: must not be empty")
        if not 0 <= self.seed < 2**63:  # NumPy's SeedSequence needs >= 0; the tf.data crop draw keys on an int64
            raise ConfigError(f"seed: must be in [0, 2**63), got {self.seed}")
        self.data.check("data")
        self.stft.check("stft")
        self.scaling.check("scaling")
        self.model.check("model")
        for field_name in ("direct", "borrowed_phase"):
            named = getattr(self.model, field_name)
            if any(n not in self.data.components for n in named) or len(set(named)) != len(named):
                raise ConfigError(f"model.{field_name}: must name distinct data.components "
                                  f"{list(self.data.components)}, got {list(named)}")
        self.loss.check("loss", len(self.data.components))
        if self.model.cancellation != "none" and (self.data.source != "ecg" or "maternal" not in self.data.components):
            raise ConfigError(f"model.cancellation: {self.model.cancellation!r} needs data.source \"ecg\" with a "
                              f"\"maternal\" component, got {self.data.source!r} with {list(self.data.components)}")
        if not self.model.complex:
            if self.loss.reconstruction.waveform > 0:
                raise ConfigError("loss.reconstruction.waveform: a waveform term needs model.output \"complex_mask\"")
            if self.loss.discriminator_input != "magnitude":
                raise ConfigError("loss.discriminator_input: \"complex\" needs model.output \"complex_mask\"")
        elif self.data.mixture_domain != "waveform":
            raise ConfigError("data.mixture_domain: \"magnitude_sum\" gives the networks a magnitude, which "
                              "model.output \"complex_mask\" cannot use (it needs the mixture's complex STFT)")
        self.train.check("train")
        self._check_leads()
        self.output.check("output")
        bins = self.stft.n_fft // 2 + 1
        for name, value in (("frequency_bins", self.patch.frequency_bins), ("frames", self.patch.frames)):
            _check_positive(f"patch.{name}", value)
            if value % DOWNSAMPLING:
                raise ConfigError(f"patch.{name}: must be divisible by {DOWNSAMPLING} (the network downsamples 3 times by 2), got {value}")
        if self.patch.frequency_bins > bins:
            raise ConfigError(f"patch.frequency_bins: must be <= stft.n_fft/2+1 ({bins}), got {self.patch.frequency_bins}")
        params = self.data.params
        if isinstance(params, (ECGConfig, PPGConfig)) and params.seconds * self.data.sample_rate < self.crop_length:
            raise ConfigError(f"data.{self.data.source}.seconds: recordings of {params.seconds} s are shorter than one "
                              f"crop ({self.crop_length} samples = patch.frames STFT frames)")

    def _check_leads(self) -> None:
        """A multi-lead model needs multi-lead recordings; train.leads_kept fits them. (A one-lead model's config may
        generate multi-lead recordings: it trains on and is scored on each lead as a recording of its own,
        cass_tf.data.load_recordings.)"""
        leads = self.leads
        if self.model.multilead and leads == 1:
            raise ConfigError("model.multilead: needs multi-lead recordings (data.source \"ecg\" with data.ecg.leads "
                              "> 1)")
        if self.data.source == "ecg" and self.data.ecg.one_lead_recordings and (leads == 1 or self.model.multilead):
            raise ConfigError(f"data.ecg.one_lead_recordings: needs a one-lead model (model.multilead false) of "
                              f"multi-lead recordings (data.ecg.leads > 1), got {self.data.ecg.one_lead_recordings} "
                              f"with data.ecg.leads {leads} and model.multilead {str(self.model.multilead).lower()}")
        kept = self.train.leads_kept
        if kept is not None and self.model.cancellation != "none":
            raise ConfigError("train.leads_kept: must be null with model.cancellation (the template leads follow the "
                              "residual leads one for one)")
        if kept is not None and (not self.model.multilead or kept[1] > leads):
            raise ConfigError(f"train.leads_kept: needs model.multilead and at most data.ecg.leads ({leads}) leads, "
                              f"got {list(kept)}")

    @property
    def leads(self) -> int:
        """Leads per recording of the configured source: data.ecg.leads for ECG, 1 otherwise."""
        return self.data.ecg.leads if self.data.source == "ecg" else 1

    @property
    def components(self) -> tuple[str, ...]:
        return self.data.components

    @property
    def training_seed(self) -> int:
        """What seeds the weights and the training crops: `train.seed`, or `seed` when that is null."""
        return self.seed if self.train.seed is None else self.train.seed

    @property
    def crop_length(self) -> int:
        """Samples in one training/test crop: exactly `patch.frames` STFT frames."""
        return self.stft.samples_for(self.patch.frames)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def replace(self, overrides: Sequence[str]) -> "Config":
        """A new validated config with `dotted.path=json` overrides applied."""
        return from_dict(apply_overrides(self.to_dict(), overrides))


def load_config(path: str, overrides: Sequence[str] = ()) -> Config:
    """Reads a JSON config, applies `dotted.path=value` overrides, validates, returns a frozen Config."""
    raw = read_json_object(path)
    try:
        return from_dict(upgrade(apply_overrides(raw, overrides), warn=True))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def read_json_object(path: str | os.PathLike, what: str = "config file") -> dict[str, Any]:
    """The JSON object in file `path`; a ConfigError naming `what` and the path if it is missing, unreadable, not
    JSON, or not an object."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {os.fspath(path)!r}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{what} {os.fspath(path)!r} cannot be read: {e}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{what} {os.fspath(path)!r} is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {os.fspath(path)!r}: the top level must be a JSON object")
    return raw


def from_dict(raw: dict[str, Any]) -> Config:
    """Builds and validates a Config from plain JSON-like data (older field names mapped by `upgrade`)."""
    config = build(Config, upgrade(raw))
    config.check()
    return config


def completed(raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` (upgraded) with every field it leaves out at its default, unvalidated: a config saved before a field
    existed compares equal to today's config of the same run (a ConfigError if `raw` is not a config's shape)."""
    return to_plain(build(Config, upgrade(raw)))


def upgrade(raw: dict[str, Any], warn: bool = False) -> dict[str, Any]:
    """A copy of `raw` with deprecated fields mapped to their successors, each named in a FutureWarning if `warn`
    (config files a user gives; the configs stored with runs and published models are read silently):
    train.mixed_precision (true: "mixed_float16", what it meant; false: "float32") -> train.precision."""
    train = raw.get("train")
    if not isinstance(train, dict) or "mixed_precision" not in train:
        return raw
    if "precision" in train:
        raise ConfigError("train.mixed_precision: deprecated and replaced by train.precision; give train.precision only")
    old = train["mixed_precision"]
    if not isinstance(old, bool):
        raise ConfigError(f"train.mixed_precision: expected true or false, got {as_json(old)}")
    new = "mixed_float16" if old else "float32"
    if warn:
        warnings.warn(f"train.mixed_precision is deprecated: read {as_json(old)} as train.precision={new!r} "
                      "(choices: float32, mixed_bfloat16, mixed_float16, auto)", FutureWarning, stacklevel=3)
    train = {("precision" if k == "mixed_precision" else k): (new if k == "mixed_precision" else v)
             for k, v in train.items()}
    return {**raw, "train": train}


def _check_positive(path: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{path}: must be > 0, got {value}")


def _check_range(path: str, value: Range, low: float) -> None:
    if not low <= value[0] <= value[1]:
        raise ConfigError(f"{path}: must be [low, high] with {low} <= low <= high, got {list(value)}")


def _check_range_below(path: str, value: Range, below: float) -> None:
    if not 0.0 <= value[0] <= value[1] < below:
        raise ConfigError(f"{path}: must be [low, high] with 0 <= low <= high < {below}, got {list(value)}")


def _check_recordings(section: Any, path: str) -> None:
    _check_positive(f"{path}.seconds", section.seconds)
    _check_positive(f"{path}.train_recordings", section.train_recordings)
    _check_positive(f"{path}.test_recordings", section.test_recordings)
