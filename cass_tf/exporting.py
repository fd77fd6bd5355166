"""Owns export: a trained model's autoencoders as a SavedModel in TF Serving layout, STFT + networks + iSTFT in one graph.

    cass-tf export --model_dir runs/ppg --export_dir saved_models/ppg [--version N]   (or python -m cass_tf.export)

Layout written (TF Serving's: a base directory of integer versions; it serves the highest by default):

    <export_dir>/<version>/saved_model.pb, variables/, assets/cass_config.json
    <export_dir>/models.config      a --model_config_file for tensorflow_model_server naming this model

Each version is written into a hidden temporary sibling (cass_tf.atomic.directory: not an integer, so a model server
polling `<export_dir>` ignores it) and renamed into place in one step, so a server never loads a half-written
version; a killed export's leftover is removed by the next export of that version. An existing version is never
overwritten.

The signatures (`serving_default`, `separate_at_level`, `features`) and `assets/cass_config.json` (a
tf.saved_model.Asset, so it travels with the model) are the serving contract, which `cass_tf.contract` defines.

Serving with Docker (not runnable here; see the README). The base_path in models.config is the path *inside the
container*, `/models/<name>` where <name> is the export directory's basename, so mount the export directory there:

    docker run -p 8501:8501 -p 8500:8500 -v "$PWD/saved_models/ppg:/models/ppg" tensorflow/serving:2.21.0 \\
        --model_config_file=/models/ppg/models.config

(or, without the config file, `-e MODEL_NAME=ppg`). A SavedModel written by TF 2.21 needs a model server >= 2.21.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Sequence

import tensorflow as tf

from cass_tf import atomic, contract
from cass_tf.models.cass import CASSModel, apply_autoencoders, restore
from cass_tf.precision import policy_scope
from cass_tf.rundir import RunDir
from cass_tf.spectral import Spectral
from cass_tf.windows import traced


class ExportError(ValueError):
    """The export cannot be written (an existing version, a bad export directory or version)."""


def export(model_dir_or_model: str | os.PathLike | CASSModel, export_dir: str | os.PathLike, version: int | None = None,
           max_patches: int = contract.DEFAULT_MAX_PATCHES, precision: str | None = None) -> str:
    """Exports the autoencoders of a trained model as `<export_dir>/<version>/`; returns that directory.

    `model_dir_or_model`: a training model_dir (config.json + checkpoints/, see cass_tf.rundir) or a CASSModel.
    `version`: a positive integer; default the next free one (1 in an empty directory). An existing version
    raises ExportError. `max_patches` bounds how many patches the networks see at once inside the graph.
    `precision`: what the export computes in (`output.precision`'s choices; default the model's config's).
    Also (re)writes `<export_dir>/models.config` for TF Serving.
    """
    if not isinstance(model_dir_or_model, (CASSModel, str, os.PathLike)):
        raise TypeError(f"expected a model_dir path or a CASSModel, got {type(model_dir_or_model).__name__}")
    export_dir = os.path.abspath(os.fspath(export_dir))
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise ExportError(f"export_dir {export_dir!r} exists and is not a directory")
    version = _choose_version(export_dir, version)  # before the (slow) restore, so a taken version fails fast
    if isinstance(model_dir_or_model, CASSModel):
        model = model_dir_or_model
    else:
        with RunDir(model_dir_or_model).lock("export"):  # not while a training rotates its checkpoints
            model = trained_model(model_dir_or_model)
    atomic.make_dirs(export_dir, "export_dir")
    final = os.path.join(export_dir, str(version))
    try:
        with atomic.directory(final) as temp:
            save(model, temp, max_patches, precision=precision)
    except FileExistsError:  # someone else took the version while we were writing
        raise ExportError(f"version {version} already exists in {export_dir!r}; choose another --version") from None
    write_models_config(export_dir)
    return final


def save(model: CASSModel, directory: str, max_patches: int = contract.DEFAULT_MAX_PATCHES,
         format_version: int = contract.FORMAT_VERSION, precision: str | None = None) -> None:
    """Writes the SavedModel (both signatures and the config asset) into `directory` (new or empty); its networks
    compute in `precision` (default the model's `output.precision`) whatever policy `model` was built under
    (`in_precision`).

    `format_version` 1 writes the old signature names (for compatibility tests); the graphs are the same.
    """
    features_signature, features_input = contract.FEATURES_SIGNATURES[format_version]
    model = in_precision(model, precision)
    module = _ServingModule(model, max_patches, features_input)
    with tempfile.TemporaryDirectory() as scratch:
        asset = os.path.join(scratch, contract.CONFIG_ASSET)
        with open(asset, "w", encoding="utf-8") as f:
            json.dump(contract.asset(model.config, max_patches, format_version), f, indent=2)
        module.cass_config = tf.saved_model.Asset(asset)
        signatures = {contract.SERVING_SIGNATURE: module.serve.get_concrete_function(),
                      features_signature: module.features.get_concrete_function()}
        if format_version >= 2:
            signatures[contract.LEVEL_SIGNATURE] = module.serve_at_level.get_concrete_function()
        tf.saved_model.save(module, directory, signatures=signatures)


def in_precision(model: CASSModel, precision: str | None = None) -> CASSModel:
    """`model` if its autoencoders compute in `precision` (default its config's `output.precision`) and its config
    says so, else a copy of them (the same float32 weights) built under that dtype policy (cass_tf.precision), its
    config's `output.precision` set to it. Mixed policies keep float32 variables, so the copy holds exactly the
    weights; only the arithmetic of the layers that are not pinned to float32 changes."""
    config = model.config
    if precision is not None and precision != config.output.precision:
        config = config.replace([f"output.precision={json.dumps(precision)}"])
    policy = config.output.precision
    if config is model.config and all(ae.dtype_policy.name == policy for ae in model.autoencoders.values()):
        return model
    with policy_scope(policy):
        copy = CASSModel(config)
    for name in model.config.components:
        for target, source in zip(copy.autoencoders[name].variables, model.autoencoders[name].variables):
            target.assign(source)
    return copy


def load_model(version_dir: str | os.PathLike, overrides: Sequence[str] = ()) -> CASSModel:
    """A CASSModel (autoencoders only) holding an export's weights, its asset config with `overrides` applied: what
    re-exporting a version in a newer format, with its weights unchanged, starts from. The overrides may change
    only what the graph around the networks does (e.g. `model.input_rms`), not the networks' shapes."""
    asset = contract.read_asset(version_dir)
    config = asset.config.replace(overrides)
    model = CASSModel(config)  # its discriminators, if any, stay untrained: an export holds the autoencoders only
    loaded = tf.saved_model.load(os.fspath(version_dir))
    for name in config.components:
        saved, target = loaded.autoencoder_variables[name], model.autoencoders[name].variables
        if len(saved) != len(target) or any(s.shape != t.shape for s, t in zip(saved, target)):
            raise ValueError(f"{os.fspath(version_dir)!r}: the {name!r} weights do not fit the config's network")
        for s_, t in zip(saved, target):
            t.assign(s_)
    return model


def reexport(version_dir: str | os.PathLike, overrides: Sequence[str] = (), version: int | None = None) -> str:
    """Writes an export's weights, unchanged, as a NEW version in the current format (`load_model` with
    `overrides`) beside it in the same base directory (`version`: default the next free one); returns the new
    version directory. Published versions are immutable: the source version is only read. The new version carries
    no blessing record: it was not scored by the pipeline (pipelines/train_export.py)."""
    source = os.path.abspath(os.fspath(version_dir))
    model = load_model(source, overrides)
    return export(model, os.path.dirname(source), version, contract.read_asset(source).max_patches)


def interpolate(first: str | os.PathLike, second: str | os.PathLike, weight: float, export_dir: str | os.PathLike,
                version: int | None = None) -> str:
    """Exports (1 - weight) * first + weight * second, every autoencoder variable (batch-norm statistics included),
    as a new version in `export_dir`; returns its directory. The weight-space interpolation of a model and a
    fine-tuning of it (WiSE-FT: Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022), meaningful
    only when `second` was fine-tuned from `first`. Both must be exports of one network (the same model, STFT,
    patch, scaling and components in their config assets); the new version carries `first`'s config and no blessing
    record (pipelines/train_export.py did not score it)."""
    if not 0 <= weight <= 1:
        raise ValueError(f"weight: must be in [0, 1], got {weight}")
    model = load_model(first)
    mix_weights(model, load_model(second), weight, f"{os.fspath(second)!r} is not the network of {os.fspath(first)!r}")
    return export(model, export_dir, version, contract.read_asset(first).max_patches)


def mix_weights(model: CASSModel, other: CASSModel, weight: float, what: str) -> None:
    """Sets every autoencoder variable of `model` (batch-norm statistics included) to (1 - weight) * its own +
    weight * `other`'s; a ValueError starting with `what` if the two are not one network (the same model, STFT,
    patch, scaling and components)."""
    mine, theirs = (m.config.to_dict() for m in (model, other))
    differing = [k for k in ("model", "stft", "patch", "scaling") if mine[k] != theirs[k]]
    if differing or model.config.components != other.config.components:
        raise ValueError(f"{what}: their configs differ in {differing or ['data.components']}")
    for name in model.config.components:
        for variable, other_variable in zip(model.autoencoders[name].variables, other.autoencoders[name].variables):
            variable.assign((1 - weight) * variable + weight * other_variable)


def trained_model(model_dir: str | os.PathLike) -> CASSModel:
    """What a training run gives, its exports and a Separator of its model_dir alike: its latest checkpoint's
    autoencoders (`restore`), with `train.wise_ft` w those weights mixed with `train.init_from`'s,
    (1 - w) * init_from + w * trained (WiSE-FT)."""
    model = restore(os.fspath(model_dir))
    share = model.config.train.wise_ft
    if share is not None:
        start = model.config.train.init_from
        mix_weights(model, load_model(start), 1 - share, f"train.init_from {start!r} is not this run's network")
    return model


def models_config_text(name: str, base_path: str) -> str:
    """A TF Serving --model_config_file (text ModelServerConfig proto) serving one model."""
    return (
        "model_config_list {\n"
        "  config {\n"
        f"    name: {json.dumps(name)}\n"
        f"    base_path: {json.dumps(base_path)}\n"
        '    model_platform: "tensorflow"\n'
        "  }\n"
        "}\n"
    )


def write_models_config(export_dir: str) -> str:
    """Writes `<export_dir>/models.config` naming the model after the directory, base_path `/models/<name>`."""
    name = os.path.basename(os.path.normpath(export_dir))
    return atomic.write_text(os.path.join(export_dir, "models.config"), models_config_text(name, f"/models/{name}"))


def _choose_version(export_dir: str, version: int | None) -> int:
    existing = contract.versions(export_dir)
    if version is None:
        return (existing[-1] + 1) if existing else 1
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ExportError(f"version must be a positive integer, got {version!r}")
    if os.path.exists(os.path.join(export_dir, str(version))):
        raise ExportError(f"version {version} already exists in {export_dir!r} (versions: {existing}); "
                          "choose another --version or leave it out for the next free one")
    return version


class _Untracked:
    """A plain holder: what it holds is invisible to tf.Module's automatic tracking."""

    def __init__(self, **items: Any):
        self.__dict__.update(items)


class _ServingModule(tf.Module):
    """The autoencoders and the two serving functions; only what inference needs is saved.

    The module holds the autoencoders' Keras models but tracks (and so saves) their *underlying* tf.Variables,
    once each, not the Keras models: a SavedModel that tracks Keras 3 models directly loads in Python but fails
    in the C++/TF1 loaders that TF Serving and `saved_model_cli run` use ("Could not find variable ...",
    tensorflow/tensorflow#72963, keras-team/keras#19274), and keras.export.ExportArchive saves every variable
    twice (keras-team/keras#23553). tf.saved_model.save refuses to save a function that captures a variable
    not tracked here, so nothing can be silently left out.
    """

    def __init__(self, model: CASSModel, max_patches: int, features_input: str = contract.FEATURES_INPUT):
        super().__init__(name="cass_serving")
        config = model.config
        self._names = tuple(config.components)
        self._spectral = Spectral.from_config(config)
        self._consistency = config.model.consistency
        self._models = _Untracked(autoencoders=[model.autoencoders[n] for n in self._names])
        self.autoencoder_variables = {n: [v.value for v in model.autoencoders[n].variables] for n in self._names}
        leads = (None,) if config.model.multilead else ()  # multi-lead: [batch, leads, ...]
        patch = (None, *leads, config.patch.frequency_bins, config.patch.frames, self._spectral.channels)
        # serve: each row at its own level; serve_at_level: at the given level (a block of a longer signal: the whole
        # signal's); both ignore the level without model.input_rms (cass_tf.windows.separate_at_level)
        self.serve, self.serve_at_level = traced(self._spectral, self.networks, self._names, config.model.input_rms,
                                                 max_patches, config.model.multilead, config.model.remove_dc)
        self.features = tf.function(self.networks, input_signature=[
            tf.TensorSpec(patch, tf.float32, name=features_input)], autograph=False)

    def networks(self, features: tf.Tensor) -> dict[str, tf.Tensor]:
        estimates = apply_autoencoders(dict(zip(self._names, self._models.autoencoders)), features, self._consistency)
        return {n: tf.cast(v, tf.float32) for n, v in estimates.items()}


def summary(path: str) -> str:
    """What `cass-tf export` prints for a written version directory: its signatures and how to serve it."""
    base = os.path.dirname(path)
    return "\n".join([
        f"exported {path}",
        f"  signatures: {contract.SERVING_SIGNATURE} ({contract.WAVEFORM_INPUT} -> components), "
        f"{contract.FEATURES_SIGNATURE} ({contract.FEATURES_INPUT} -> components)",
        f"  TF Serving config: {os.path.join(base, 'models.config')} (base_path /models/{os.path.basename(base)})",
        f"  inspect: saved_model_cli show --all --dir {path}",
    ])
