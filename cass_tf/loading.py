"""Owns loading a model for inference: what a model path is (a SavedModel version directory, a TF Serving base
directory, a training model_dir), checking and loading it, or wrapping a CASSModel in memory, into one `Loaded`."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Optional, Union

import tensorflow as tf

from cass_tf import contract, rundir
from cass_tf.exporting import trained_model
from cass_tf.models.cass import CASSModel
from cass_tf.spectral import Spectral
from cass_tf.windows import traced


def load(model: Union[str, os.PathLike, CASSModel]) -> "Loaded":
    """The model at a path (`_resolve` says which kind), or a CASSModel wrapped as it is; FileNotFoundError for a
    missing path, ValueError for a directory that is not a model, TypeError for anything else."""
    if isinstance(model, (str, os.PathLike)):
        kind, path = _resolve(os.fspath(model))
        return _load_saved_model(path) if kind == "savedmodel" else _wrap_model(trained_model(path), path)
    if isinstance(model, CASSModel):
        return _wrap_model(model, "<CASSModel>")
    raise TypeError(f"model must be a path, a Separator or a CASSModel, got {type(model).__name__}")


@dataclasses.dataclass(frozen=True)
class Loaded:
    """A loaded model as Separators hold (and share) it: its graph and config, and what keeps its variables alive."""

    source: str
    kind: str  # "savedmodel" or "checkpoint"
    function: Callable[[Any], dict[str, Any]]
    config: Any  # cass_tf.config.Config
    keep: Any  # the loaded SavedModel or the CASSModel
    at_level: Optional[Callable[[Any, Any], dict[str, Any]]] = None  # (waveform, level [batch]) -> outputs; None:



def _load_saved_model(path: str) -> Loaded:
    """A cass_tf export, its asset config validated before TensorFlow reads anything."""
    contract.check_version_dir(path)
    asset = contract.read_asset(path)
    try:
        loaded = tf.saved_model.load(path)
    except Exception as e:  # noqa: BLE001 (corrupt protobufs and missing variables raise many types)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path!r} could not be loaded as a SavedModel: {first}") from None
    signatures = dict(loaded.signatures)
    name, waveform = contract.SERVING_SIGNATURE, contract.WAVEFORM_INPUT
    if name not in signatures:
        raise ValueError(f"SavedModel {path!r} has no {name!r} signature (it has {sorted(signatures)}); "
                         "export it with cass-tf export")
    signature = signatures[name]
    inputs = signature.structured_input_signature[1]
    if set(inputs) != {waveform}:
        raise ValueError(f"SavedModel {path!r}: {name} takes {sorted(inputs)}, expected one input {waveform!r}; "
                         "not a cass_tf export")
    outputs = set(signature.structured_outputs)
    if outputs != set(asset.components):
        raise ValueError(f"SavedModel {path!r}: outputs {sorted(outputs)} do not match the components "
                         f"{list(asset.components)} in {asset.path}")
    at_level = None
    if contract.LEVEL_SIGNATURE in signatures and asset.config.model.input_rms is not None:
        by_level = signatures[contract.LEVEL_SIGNATURE]
        at_level = lambda x, level: by_level(**{waveform: x, contract.LEVEL_INPUT: level})  # noqa: E731
    return Loaded(path, "savedmodel", lambda x: signature(**{waveform: x}), asset.config, loaded, at_level)



def _wrap_model(model: Any, path: str) -> Loaded:
    """A CASSModel's networks inside `windows.traced` (separate_at_level traced once for [None, None] inputs)."""
    config = model.config
    reference = config.model.input_rms
    function, at_level = traced(Spectral.from_config(config), lambda f: model(f, training=False), config.components,
                                reference, leads=config.model.multilead, remove_dc=config.model.remove_dc)
    return Loaded(path, "checkpoint", function, config, model, at_level if reference is not None else None)



def _resolve(path: str) -> tuple[str, str]:
    """("savedmodel", version_dir) or ("checkpoint", model_dir) for a model path, or a clear error."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"model not found: {path!r}")
    what = ("expected a SavedModel version directory (saved_model.pb), a TF Serving base directory of integer "
            "versions, or a training model_dir (config.json + checkpoints/)")
    if not os.path.isdir(path):
        raise ValueError(f"model {path!r} is a file, not a model directory: {what}")
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return "savedmodel", path
    if os.path.exists(os.path.join(path, rundir.CONFIG)):
        return "checkpoint", path
    found = contract.versions(path)
    if not found:
        raise ValueError(f"model {path!r} has no versions and is not a model: {what}")
    latest = os.path.join(path, str(found[-1]))
    if not os.path.exists(os.path.join(latest, "saved_model.pb")):
        raise ValueError(f"model {path!r}: its highest version {latest!r} has no saved_model.pb")
    return "savedmodel", latest
