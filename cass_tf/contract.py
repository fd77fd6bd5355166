"""Owns the serving contract of an exported model: signature, input and asset names, the format version, and
reading and validating an export's `assets/cass_config.json` (an untrusted file). Imports no TensorFlow.

Format 2 (current) signatures, as cass_tf.exporting writes them:

- `serving_default`: input `waveform` float32 [batch, samples] (any samples >= 1) at the model's sample rate (in
  `cass_config.json`) -> one output per component, named by the component, float32 [batch, samples]. Everything
  happens inside the graph via `cass_tf.windows.separate_waveform`: padding, STFT, 50%-overlap patches through the
  autoencoders, cross-fade in the magnitude domain, one inverse STFT with the mixture phase. The whole signal is
  one STFT, so for very long signals use `cass_tf.separate` (it feeds blocks) or send shorter requests.
  With `model.input_rms` set, each row is first brought to that RMS and the outputs scaled back by the row's level
  (`cass_tf.windows.separate_at_level`), so separate(c x) = c separate(x). Complex-mask models cross-fade complex
  spectra and invert them without the mixture phase.
  With `model.remove_dc` (which needs input_rms) each row is first centred (its mean subtracted), so separate(x + c)
  = separate(x) and the outputs sum to the row less its mean.
- `separate_at_level`: inputs `waveform` as above and `level` float32 [batch] -> as `serving_default`, but each row
  scaled by the given level instead of its own (the whole signal's level, for blocks of a long signal). With
  `model.remove_dc` the rows are taken as they come: send blocks of the signal less the whole signal's mean, and its
  level (cass_tf.separate does).
- `features`: input `mixture_features` float32 [batch, F, T, 1] -> one output per component, float32
  [batch, F, T, 1]: the networks alone, in the *scaled feature domain* of `cass_tf.spectral`: for the lowest
  F = patch.frequency_bins bins of T = patch.frames consecutive STFT frames, scale(|STFT(x)|) with the config's
  scaling (cass_tf.config.ScalingConfig), laid out frequency-major (axis 1 = frequency bin, axis 2 = frame) with a
  channel axis of 1. Outputs are in the same domain
  (`cass_tf.spectral.unscale` maps them back to linear magnitudes). Complex-mask models take and give [batch, F, T, 2]
  instead: the real and imaginary parts of the STFT (linear; the mixture's in, each component's out). Neither applies
  the level normalisation: feed features of an input at RMS model.input_rms.

`assets/cass_config.json` holds the format version, sample rate, STFT, patch, scaling, components, the signatures'
description and the full training config under "config". Format 1 named the features signature `spectrogram` and
its input `mixture_magnitude` (though it took scaled features too); such models still load (`FEATURES_SIGNATURES`).

Multi-lead models (`config.model.multilead`, configs/ecg_leads.json) add a leads axis after batch everywhere: `waveform` float32
[batch, leads, samples] (any leads >= 1: the leads of one recording, separated together) -> each component float32
[batch, leads, samples]; `level` is one per recording, the RMS over all its leads; `mixture_features`
[batch, leads, F, T, 2]. The asset's `config.model.multilead` says which kind a model is.

Models with `config.model.cancellation` "maternal_template" serve the networks alone: their graph separates what
maternal template subtraction leaves (a multi-lead one: the residual leads followed by the template leads), and the
caller subtracts and adds back the templates (cass_tf.cancellation.around; cass_tf.separate and the serving clients
with `cancellation=` do).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from cass_tf.config import Config, ConfigError, from_dict, read_json_object

FORMAT_VERSION = 2
CONFIG_ASSET = "cass_config.json"
SERVING_SIGNATURE = "serving_default"
WAVEFORM_INPUT = "waveform"
FEATURES_SIGNATURE = "features"
FEATURES_INPUT = "mixture_features"
# format_version -> (features signature name, its input name)
FEATURES_SIGNATURES = {1: ("spectrogram", "mixture_magnitude"), 2: (FEATURES_SIGNATURE, FEATURES_INPUT)}
DEFAULT_MAX_PATCHES = 64
# Blocks of one long signal must share the whole signal's level (scale equivariance, cass_tf.windows.separate_at_level):
# this signature takes it as a second input, float32 [batch] (the RMS of each whole row, cass_tf.spectral.level).
LEVEL_SIGNATURE = "separate_at_level"
LEVEL_INPUT = "level"


@dataclasses.dataclass(frozen=True)
class Asset:
    """A validated `assets/cass_config.json`: what a caller needs to feed and read an export's signatures."""

    path: str
    format_version: int
    sample_rate: int
    components: tuple[str, ...]
    max_patches: int
    config: Config

    @property
    def features_signature(self) -> str:
        return FEATURES_SIGNATURES[self.format_version][0]

    @property
    def features_input(self) -> str:
        return FEATURES_SIGNATURES[self.format_version][1]


def asset(config: Config, max_patches: int = DEFAULT_MAX_PATCHES, format_version: int = FORMAT_VERSION
          ) -> dict[str, Any]:
    """What `assets/cass_config.json` holds: enough to feed and read the signatures, plus the full config.

    `format_version` other than the current one names the signatures as that format did (for compatibility tests).
    """
    plain = config.to_dict()
    channels = 2 if config.model.complex else 1
    leads = "leads, " if config.model.multilead else ""  # a multi-lead model takes a recording's leads together
    patch = f"float32 [batch, {leads}{config.patch.frequency_bins}, {config.patch.frames}, {channels}]"
    features_signature, features_input = FEATURES_SIGNATURES[format_version]
    if config.model.complex:
        features_text = ("real and imaginary parts (linear, channels 0 and 1) of the STFT of the lowest "
                         "patch.frequency_bins bins, frequency-major, of the input brought to RMS model.input_rms")
        outputs_text = f"float32 [batch, {leads}F, T, 2], the component's complex spectrum, same layout"
    else:
        features_text = (f"scaled STFT magnitude ({config.scaling.formula()}) of the lowest patch.frequency_bins "
                         "bins, frequency-major")
        outputs_text = "float32 [batch, F, T, 1], same scaled domain"
    return {
        "format_version": format_version,
        "name": config.name,
        "sample_rate": config.data.sample_rate,
        "components": list(config.components),
        "stft": plain["stft"],
        "patch": plain["patch"],
        "scaling": plain["scaling"],
        "max_patches": max_patches,
        "signatures": {
            SERVING_SIGNATURE: {
                "inputs": {WAVEFORM_INPUT: f"float32 [batch, {leads}samples], samples >= 1, at sample_rate"},
                "outputs": {n: f"float32 [batch, {leads}samples]" for n in config.components},
            },
            features_signature: {
                "inputs": {features_input: f"{patch}: {features_text}"},
                "outputs": {n: outputs_text for n in config.components},
            },
        },
        "config": plain,
    }


def versions(export_dir: str | os.PathLike) -> list[int]:
    """The integer version directories in a TF Serving base directory, ascending."""
    export_dir = os.fspath(export_dir)
    if not os.path.isdir(export_dir):
        return []
    return sorted(int(d) for d in os.listdir(export_dir)
                  if d.isdigit() and os.path.isdir(os.path.join(export_dir, d)))


def check_version_dir(version_dir: str | os.PathLike) -> str:
    """A one-line ValueError unless `version_dir` holds a complete SavedModel (saved_model.pb, variables/)."""
    path = os.fspath(version_dir)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ValueError(f"SavedModel {path!r} is incomplete: no saved_model.pb")
    if not os.path.isfile(os.path.join(path, "variables", "variables.index")):
        what = "variables/variables.index" if os.path.isdir(os.path.join(path, "variables")) else "variables/ directory"
        raise ValueError(f"SavedModel {path!r} is incomplete: no {what} (the weights); export it again")
    return path


def read_asset(version_dir: str | os.PathLike) -> Asset:
    """The validated `assets/cass_config.json` of an export; ValueError naming the file (and field) if it is wrong.

    The embedded training config is validated by the rules of `cass_tf.config.load_config`, and the top-level
    fields must be well-typed and agree with it.
    """
    path = os.path.join(os.fspath(version_dir), "assets", CONFIG_ASSET)
    if not os.path.isfile(path):
        raise ValueError(f"{os.fspath(version_dir)!r} is not a cass_tf export: no assets/{CONFIG_ASSET}")
    raw = read_json_object(path, "asset config")
    version = _field(raw, path, "format_version", int)
    if version not in FEATURES_SIGNATURES:
        raise ValueError(f"{path}: format_version: {version} is not one this cass_tf reads "
                         f"({sorted(FEATURES_SIGNATURES)}); a newer cass_tf wrote it?")
    try:
        config = from_dict(_field(raw, path, "config", dict))
    except ConfigError as e:
        raise ValueError(f"{path}: config.{e}") from None
    expected = {"sample_rate": config.data.sample_rate, "components": list(config.components),
                "stft": config.to_dict()["stft"], "patch": config.to_dict()["patch"],
                "scaling": config.to_dict()["scaling"]}
    for name, value in expected.items():
        given = _field(raw, path, name, type(value))
        if given != value:
            raise ValueError(f"{path}: {name}: {json.dumps(given)} disagrees with config ({json.dumps(value)})")
    max_patches = _field(raw, path, "max_patches", int)
    if max_patches < 1:
        raise ValueError(f"{path}: max_patches: must be >= 1, got {max_patches}")
    return Asset(path, version, config.data.sample_rate, config.components, max_patches, config)


def _field(raw: dict[str, Any], path: str, name: str, kind: type) -> Any:
    if name not in raw:
        raise ValueError(f"{path}: {name}: required field is missing")
    value = raw[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"{path}: {name}: expected {kind.__name__}, got {json.dumps(value)[:80]}")
    return value
