"""Owns the scores: the paper's (eq. 6 relative L1/L2/L∞ errors, plus SI-SDR and SDR) and the event scores of a
model on the test set, its oracles, and what each scored set is (`NOTES`).

Two protocols (`PROTOCOLS`), every report says which it shows:
- *waveform* (the default, the one to trust): estimates against the TRUE component waveforms, on the two test sets
  and the diagnostic below;
- *paper* (`paper_errors`, scope "crops_paper"; the authors' public code): the test crops, but the reference is the
  true component MAGNITUDE put back with the mixture's phase and inverted, as the estimate is; phase errors do not
  count and the ideal magnitude scores 0. Only this one is like for like with the paper's Tables 1-3.

Under the waveform protocol, two test sets, both scored after the inverse STFT, and one diagnostic:
- *crops* (`crop_errors`): the fixed test crops of the pipeline (`Datasets.test`, consecutive non-overlapping
  crops of every test recording, `patch.frames` STFT frames each). Each crop's mixture features go through the
  networks; each component estimate takes the mixture crop's phase (`Spectral.waveform`) and is compared with the
  true component crop on samples [margin, L - margin). `Spectral.margin` samples at each end of a crop cannot be
  reconstructed by the inverse STFT (there the overlap-added squared window is below `spectral.COVERAGE_FLOOR` of
  its peak: no neighbouring frame covers them), so they are left out of every score. This is the paper's setting (it trains and tests on spectrogram samples).
- *whole signals* (`signal_errors`): every test recording, whole (e.g. a whole Bach10 test piece), separated with
  `cass_tf.windows.separate_waveform` (overlapping patches cross-faded, one inverse STFT), scored on every sample.
- diagnostic, *crops with the true component phase* (`crop_errors(..., phase="component")`): as the crops, but each
  estimated magnitude takes its true component's phase, so only the magnitude estimate is scored. The paper does
  not say which phase its reconstructions use; with the mixture's phase even the true magnitudes (`Oracle`, the
  "ideal magnitude" row of the tables) leave an error wherever the components share STFT bins.

Per example (a crop, or a recording) and component: relative errors ||x̂ - x||_p / ||x||_p for p = 1, 2, ∞
(eq. 6), SI-SDR and SDR in dB (cass_tf.metrics). The test set's score is the mean (and the median) of the
per-example scores (`metrics.summarize`). An example whose reference component is exactly zero everywhere it is
scored has no relative error (x/0): it is kept in the per-example scores (inf, or 0 for a silent estimate) but
left out of that component's summary, and the summary says how many were left out (`silent_excluded`).

A "model" is anything that maps mixture features [N, F, T, 1] to {component: features [N, F, T, 1]}: a
`CASSModel` (run in inference mode, compiled once per model), or any callable (tests pass oracles).
`crop_errors` and `waveform_l2` call it once per test batch, in the order of `Datasets.test`.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from typing import Any, Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from cass_tf import cancellation, fusion, metrics
from cass_tf.config import Config
from cass_tf.data import as_recorded, load_recordings
from cass_tf.data.pipeline import test_dataset
from cass_tf.metrics import component_event_scores, relative_error, summarize
from cass_tf.spectral import Spectral, from_reference, level
from cass_tf.windows import separate_at_level

__all__ = ["METRICS", "NOTES", "PROTOCOLS", "CROP_NOTE", "SIGNAL_NOTE", "COMPONENT_PHASE_NOTE", "PAPER_NOTE", "Errors",
           "Oracle", "as_networks", "crop_estimates", "crop_errors", "paper_errors", "signal_errors", "waveform_l2",
           "event_scores", "signal_scores", "recording_scores", "discriminator_outputs", "score", "crop_names", "oracle_errors",
           "ideal_complex_mask_errors"]

METRICS = ("l1", "l2", "linf", "si_sdr", "sdr")

CROP_NOTE = ("mean over the fixed test crops; each crop scored after the inverse STFT with the mixture's phase, "
             "on samples [margin, L-margin) (the iSTFT edge samples cannot be reconstructed)")

SIGNAL_NOTE = ("mean over the whole test recordings, each separated with windows.separate_waveform "
               "(overlapping patches cross-faded) and scored on every sample")

COMPONENT_PHASE_NOTE = ("diagnostic: as the test crops, but each estimated magnitude takes the TRUE component's "
                        "phase instead of the mixture's (needs the ground truth), so only the magnitude is scored")

PAPER_NOTE = ("the paper's protocol (the authors' code): each estimated magnitude AND the true component magnitude "
              "take the mixture crop's phase and are inverted; the error is between those two waveforms, on samples "
              "[margin, L-margin), so phase errors do not count and the ideal magnitude scores 0")

NOTES = {"crops": CROP_NOTE, "crops_component_phase": COMPONENT_PHASE_NOTE, "signals": SIGNAL_NOTE,
         "crops_paper": PAPER_NOTE}

# The scopes each evaluation protocol scores: "waveform" against the true component waveforms (what a user gets),
# "paper" against the true magnitudes put back with the mixture's phase (like for like with the paper's tables).
PROTOCOLS = {"waveform": ("crops", "signals", "crops_component_phase"), "paper": ("crops_paper",)}

Networks = Callable[[Any], dict[str, Any]]

_COMPILED: "weakref.WeakKeyDictionary[Any, Networks]" = weakref.WeakKeyDictionary()


@dataclasses.dataclass
class Errors:
    """Per-example scores of one test set: `scores[component][metric]` is a float64 array over `examples`."""

    scope: str  # "crops" or "signals"
    examples: list[str]
    scores: dict[str, dict[str, np.ndarray]]
    silent: dict[str, np.ndarray]  # component -> bool per example: reference exactly zero where scored
    samples_scored: int | list[int]  # per crop (one number) or per recording (a list)
    margin: int = 0

    def summary(self) -> dict[str, dict[str, dict[str, float | int]]]:
        """{component: {metric: {"mean", "median", "count", "silent_excluded"}}} over the non-silent examples."""
        result = {}
        for name, scores in self.scores.items():
            keep = ~self.silent[name]
            if not keep.any():
                raise ValueError(f"every example of {self.scope!r} has a silent {name!r} reference: nothing to score")
            result[name] = {m: {**summarize(v[keep]), "silent_excluded": int((~keep).sum())} for m, v in scores.items()}
        return result

    def means(self) -> dict[str, dict[str, float]]:
        return {c: {m: s["mean"] for m, s in metrics.items()} for c, metrics in self.summary().items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "note": NOTES[self.scope],
            "margin": self.margin,
            "samples_scored": self.samples_scored,
            "summary": self.summary(),
            "examples": self.examples,
            "per_example": {c: {m: v.tolist() for m, v in s.items()} for c, s in self.scores.items()},
        }


class Oracle:
    """Networks that return the TRUE component features of each test batch, in order: the ideal magnitude estimate.

    Its crop scores are the floor of any magnitude-domain separator under the same reconstruction (mixture phase,
    bins above F zeroed). It follows `Datasets.test` batch by batch, so it serves one crop_errors/waveform_l2 call.
    """

    def __init__(self, data):
        self._batches = iter(data.test)

    def __call__(self, mixture_features: Any) -> dict[str, Any]:
        expected, targets = next(self._batches)
        if expected.shape != mixture_features.shape:
            raise ValueError("Oracle called out of step with the test batches")
        return targets


def as_networks(model: Any) -> Networks:
    """A callable features -> {component: features}: a Keras model compiled once (inference mode), else `model`."""
    if not isinstance(model, keras.Model):
        return model
    compiled = _COMPILED.get(model)
    if compiled is None:
        ref = weakref.ref(model)  # the cache must not keep the model alive
        compiled = tf.function(lambda x: ref()(x, training=False), reduce_retracing=True, autograph=False)
        _COMPILED[model] = compiled
    return compiled


def crop_estimates(model: Any, data, config: Config, phase: str = "mixture") -> dict[str, np.ndarray]:
    """{component: [N, L]} waveform estimates of the fixed test crops (bins above F zeroed).

    `phase`: "mixture" (the method: the estimate takes the mixture crop's phase), "component" (a diagnostic
    that needs the ground truth: each estimate takes its true component's phase, so only the magnitude
    estimate is scored) or "mixture_magnitude" (the paper's protocol: the estimate's magnitude, also of a complex
    estimate, with the mixture crop's phase).
    """
    if phase not in ("mixture", "component", "mixture_magnitude"):
        raise ValueError(f"phase must be 'mixture', 'component' or 'mixture_magnitude', got {phase!r}")
    spectral = Spectral.from_config(config)
    networks = as_networks(model)
    mixtures = data.test_waveforms["mixture"]
    length = mixtures.shape[1]
    parts: dict[str, list[np.ndarray]] = {n: [] for n in config.components}
    offset = 0
    for mixture_features, _ in data.test:
        size = int(mixture_features.shape[0])
        spectrum = spectral.stft(tf.constant(mixtures[offset:offset + size]))
        crop_level = level(mixtures[offset:offset + size])  # the pipeline brought each crop to model.input_rms
        outputs = networks(mixture_features)
        for name in config.components:
            if phase == "component":
                spectrum = spectral.stft(tf.constant(data.test_waveforms[name][offset:offset + size]))
            if phase == "mixture_magnitude" and config.model.complex:
                magnitude = tf.linalg.matrix_transpose(tf.norm(tf.cast(outputs[name], tf.float32), axis=-1))
                estimate = spectral.waveform_from_magnitude(magnitude, spectrum, length)
            else:
                estimate = spectral.waveform(outputs[name], spectrum, length)
            if config.model.input_rms is not None:
                estimate = from_reference(estimate, crop_level, config.model.input_rms)
            parts[name].append(estimate.numpy())
        offset += size
    if offset != len(mixtures):
        raise ValueError(f"the test batches hold {offset} crops but test_waveforms has {len(mixtures)}")
    return {n: np.concatenate(v) for n, v in parts.items()}


def crop_errors(model: Any, data, config: Config, phase: str = "mixture") -> Errors:
    """Scores of the fixed test crops, each on samples [margin, L - margin) (see the module docstring).

    `phase="component"` is the ground-truth-phase diagnostic of `crop_estimates` (scope "crops_component_phase").
    """
    scope = "crops" if phase == "mixture" else "crops_component_phase"
    return _crop_scores(crop_estimates(model, data, config, phase), data, config, scope)


def paper_errors(model: Any, data, config: Config) -> Errors:
    """Scores of the fixed test crops under the paper's protocol (scope "crops_paper", see PAPER_NOTE): the
    reference is the true magnitude with the mixture's phase (`Oracle` through `crop_estimates`), not the true
    waveform."""
    phase = "mixture_magnitude"
    references = crop_estimates(Oracle(data), data, config, phase)
    return _crop_scores(crop_estimates(model, data, config, phase), data, config, "crops_paper", references)


def _crop_scores(estimates: dict[str, np.ndarray], data, config: Config, scope: str,
                 references: dict[str, np.ndarray] | None = None) -> Errors:
    """Errors of crop estimates {component: [N, L]} against `references` (default: the test crops) on samples
    [margin, L - margin)."""
    margin = Spectral.from_config(config).margin
    length = data.test_waveforms["mixture"].shape[1]
    inner = slice(margin, length - margin)
    references = references or data.test_waveforms
    scores, silent = {}, {}
    for name in config.components:
        reference = references[name][:, inner]
        scores[name] = score(estimates[name][:, inner], reference)
        silent[name] = ~np.any(reference != 0, axis=-1)
    return Errors(scope, crop_names(data, config), scores, silent, length - 2 * margin, margin)


def signal_errors(model: Any, data, config: Config, max_patches: int = 64) -> Errors:
    """Scores of the whole test recordings, each separated in one piece with `windows.separate_at_level`
    (`model` "ideal_complex_mask" or "ideal_magnitude": the oracles of `_ideal` instead)."""
    spectral = Spectral.from_config(config)
    names = config.components
    per_recording: dict[str, list[dict[str, np.ndarray]]] = {n: [] for n in names}
    silent: dict[str, list[bool]] = {n: [] for n in names}
    recordings = data.recordings["test"]
    for recording in recordings:
        if model in ("ideal_complex_mask", "ideal_magnitude"):
            mixture = recording.mixture[np.newaxis] if model == "ideal_magnitude" else None
            separated = {n: _ideal(spectral, recording.components[n][np.newaxis], mixture, pad=True) for n in names}
        else:
            separated = separate_at_level(spectral, as_networks(model), names, recording.mixture[np.newaxis],
                                          config.model.input_rms, max_patches=max_patches,
                                          remove_dc=config.model.remove_dc)
        for name in names:
            reference = recording.components[name][np.newaxis]
            per_recording[name].append(score(np.asarray(separated[name]), reference))
            silent[name].append(not np.any(reference != 0))
    scores = {n: {m: np.concatenate([s[m] for s in per_recording[n]]) for m in METRICS} for n in names}
    return Errors("signals", [r.name for r in recordings], scores, {n: np.array(v) for n, v in silent.items()},
                  [len(r) for r in recordings])


def waveform_l2(model: Any, data, config: Config) -> dict[str, float]:
    """{component: mean relative L2 error of the test crops' waveforms}: the paper's per-epoch test error.

    The same scores as `crop_errors` (mixture phase, [margin, L - margin)), L2 only; silent references skipped.
    """
    margin = Spectral.from_config(config).margin
    estimates = crop_estimates(model, data, config)
    inner = slice(margin, data.test_waveforms["mixture"].shape[1] - margin)
    result = {}
    for name in config.components:
        reference = data.test_waveforms[name][:, inner]
        keep = np.any(reference != 0, axis=-1)
        errors = relative_error(estimates[name][:, inner][keep], reference[keep], 2).numpy()
        result[name] = float(np.mean(errors)) if errors.size else float("nan")
    return result


def event_scores(model: Any, data, config: Config, max_patches: int = 64) -> dict[str, dict[str, float]]:
    """{component: {score: mean over the test recordings}} of `metrics.component_event_scores` (QRS Se/PPV/F1 for
    ECG, rate error per minute for PPG) on the whole test recordings, each separated as in `signal_errors`, against
    the generator's true events (`Recording.events`); {} when the test recordings carry no events (e.g. Bach10).
    A score undefined on every test recording is left out (the training history holds finite numbers only)."""
    scores = signal_scores(model, [r for r in scored_recordings(data, config) if r.events], config, max_patches)
    events = {n: {k: v for k, v in per.items() if k != "l2" and math.isfinite(v)} for n, per in scores.items()}
    return {n: per for n, per in events.items() if per}  # components with defined event scores only


def scored_recordings(data, config: Config) -> list[Any]:
    """The test recordings whole separations are scored on: `data`'s own, or for a model.cancellation model (whose
    own are what cancellation leaves) the same recordings as recorded (cass_tf.data.as_recorded)."""
    if config.model.cancellation == "none":
        return data.recordings["test"]
    return load_recordings(as_recorded(config))["test"]


def signal_scores(model: Any, recordings: Sequence[Any], config: Config, max_patches: int = 64
                  ) -> dict[str, dict[str, float]]:
    """`recording_scores` of whole `recordings`, each separated in one piece by `model`'s networks
    (`windows.separate_at_level`; a multi-lead model takes each recording's leads together; a model.cancellation
    model separates them as recorded, through cass_tf.cancellation.around)."""
    spectral, names, leads = Spectral.from_config(config), config.components, config.model.multilead

    def separate(mixture: np.ndarray) -> dict[str, Any]:
        return separate_at_level(spectral, as_networks(model), names, mixture[np.newaxis], config.model.input_rms,
                                 max_patches=max_patches, leads=leads, remove_dc=config.model.remove_dc)

    if config.model.cancellation != "none":
        return recording_scores(lambda m: cancellation.around(m, config.data.sample_rate, leads, separate),
                                recordings, names, config.data.sample_rate)
    return recording_scores(separate, recordings, names, config.data.sample_rate)


def recording_scores(separate: Callable[[np.ndarray], Mapping[str, Any]], recordings: Sequence[Any],
                     names: Sequence[str], rate: float) -> dict[str, dict[str, float]]:
    """{component: {score: mean over `recordings`}}: the whole-recording relative L2 error ("l2") and, where a
    recording carries true events, `metrics.component_event_scores`. `separate` maps a mixture, 1-D or
    (leads, samples), to {component: estimate of its shape}. Multi-lead recordings: "l2" is the mean over the leads
    of each lead's error, and the events are the fused output's beats (`fusion.fuse_outputs`, chosen without
    references). A score undefined in a recording (NaN: too few events in every window)
    is left out of that score's mean; undefined in every recording, its mean is NaN (kept, so that blessing, which
    fails closed on a non-finite bounded score, refuses it)."""
    values: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    for recording in recordings:
        leads = recording.mixture.ndim == 2
        separated = {n: np.reshape(np.asarray(v, np.float64), recording.mixture.shape)
                     for n, v in separate(recording.mixture).items()}
        fused = fusion.fuse_outputs(separated, rate) if leads and recording.events else {}
        for name in names:
            estimate = separated[name]
            scores = {"l2": float(np.mean(relative_error(estimate, recording.components[name], 2)))}
            if recording.events:
                scores.update(metrics.peak_scores(fused[name].peaks, recording.events[name], rate) if leads
                              else component_event_scores(name, estimate, recording.events[name], rate))
            for key, value in scores.items():
                values[name].setdefault(key, []).append(value)
    return {n: {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in per.items()}
            for n, per in values.items()}


def discriminator_outputs(model: Any, data) -> dict[str, dict[str, np.ndarray]]:
    """{judge: {source: p}} with p = sigmoid(D_judge(AE_source(X))) per test crop, source != judge (paper Fig. 6).

    Also {judge: {"real": sigmoid(D_judge(X_judge))}} for reference. Needs a model with discriminators (not baseline).
    """
    names = list(model.names)
    if not model.discriminators:
        raise ValueError("a baseline model has no discriminators")
    networks = as_networks(model)
    judge_fns = {n: tf.function(lambda x, d=model.discriminators[n]: tf.sigmoid(d(x, training=False)),
                                reduce_retracing=True, autograph=False) for n in names}
    parts: dict[str, dict[str, list[np.ndarray]]] = {j: {s: [] for s in names + ["real"] if s != j} for j in names}
    for mixture_features, targets in data.test:
        outputs = networks(mixture_features)
        for judge in names:
            for source in parts[judge]:
                features = targets[judge] if source == "real" else outputs[source]
                parts[judge][source].append(np.reshape(judge_fns[judge](features).numpy(), [-1]))
    return {j: {s: np.concatenate(v) for s, v in sources.items()} for j, sources in parts.items()}


def score(estimate: np.ndarray, reference: np.ndarray) -> dict[str, np.ndarray]:
    """{metric: per-example float64 array} for estimates/references [N, samples]."""
    return {
        "l1": metrics.relative_error(estimate, reference, 1).numpy(),
        "l2": metrics.relative_error(estimate, reference, 2).numpy(),
        "linf": metrics.relative_error(estimate, reference, np.inf).numpy(),
        "si_sdr": metrics.si_sdr(estimate, reference).numpy(),
        "sdr": metrics.sdr(estimate, reference).numpy(),
    }


def crop_names(data, config: Config) -> list[str]:
    """`<recording>#<k>` for every fixed test crop, in the order of `Datasets.test` (see pipeline.fixed_crops)."""
    length = config.crop_length
    return [f"{r.name}#{k}" for r in data.recordings["test"] for k in range(len(r) // length)]


def oracle_errors(data, config: Config, signals: bool = True) -> dict[str, Any]:
    """The crop scores of `Oracle` (true magnitudes), with the mixture's and with the true phase, and under
    "complex_mask" the ideal complex mask's crop (and whole-signal) scores (`ideal_complex_mask_errors`)."""
    if config.model.complex:  # the pipeline's targets are complex: the ideal magnitudes need magnitude features
        magnitude_config = config.replace(["model.output=magnitude", "model.input=magnitude", "model.consistency=none",
                                           "loss.reconstruction.waveform=0", "loss.reconstruction.spectrum=1",
                                           "loss.discriminator_input=magnitude"])
        test = test_dataset(magnitude_config, data.test_waveforms, config.train.batch_size)
        return oracle_errors(dataclasses.replace(data, test=test), magnitude_config, signals)
    result = {"crops": crop_errors(Oracle(data), data, config).to_dict(),
              "crops_component_phase": crop_errors(Oracle(data), data, config, phase="component").to_dict(),
              "complex_mask": ideal_complex_mask_errors(data, config, signals)}
    if signals:
        result["signals"] = signal_errors("ideal_magnitude", data, config).to_dict()
    return result


def ideal_complex_mask_errors(data, config: Config, signals: bool = True) -> dict[str, Any]:
    """Scores of the ideal complex mask (the true component spectra of the lowest F bins, inverted without the
    mixture's phase): the floor of any complex-mask separator, ~0 where F covers the components' bandwidth."""
    spectral = Spectral.from_config(config)
    estimates = {n: _ideal(spectral, data.test_waveforms[n]) for n in config.components}
    result = {"crops": _crop_scores(estimates, data, config, "crops").to_dict()}
    if signals:
        result["signals"] = signal_errors("ideal_complex_mask", data, config).to_dict()
    return result


def _ideal(spectral: Any, component: np.ndarray, mixture: np.ndarray | None = None, pad: bool = False) -> np.ndarray:
    """[N, L] -> the component through STFT, lowest F bins, inverse STFT: its own spectrum (the ideal complex mask),
    or with `mixture` [N, L] its magnitude with the mixture's phase (the ideal magnitude). `pad`: one window of zeros
    each side first, so the ends are reconstructed too, as in windows.separate_waveform."""
    def spectrum(x: np.ndarray) -> tf.Tensor:
        x = tf.constant(x, tf.float32)
        return spectral.stft(tf.pad(x, [[0, 0], [spectral.window] * 2]) if pad else x)

    length = component.shape[-1]
    samples = length + 2 * spectral.window if pad else length
    lowest = spectrum(component)[..., : spectral.bins]
    if mixture is None:
        waveform = spectral.waveform_from_spectrum(lowest, samples)
    else:
        waveform = spectral.waveform_from_magnitude(tf.abs(lowest), spectrum(mixture), samples)
    return (waveform[:, spectral.window: spectral.window + length] if pad else waveform).numpy()
