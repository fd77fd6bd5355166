"""Owns inference: `separate()` on arrays, lists and files, the reusable `Separator`, and the `separate` command.

    from cass_tf import separate, Separator
    parts = separate("mix.wav", "saved_models/bach10")            # {"saxophone": array, "bassoon": array}
    sep = Separator("saved_models/bach10")                         # load once, call many times
    parts = separate(x, sep, sample_rate=44100, progress=print)    # resampled to the model's rate and back

    python -m cass_tf.separation a.wav b.flac --model saved_models/bach10 --out_dir out/
        -> out/a/<component>.wav, out/b/<component>.wav (32-bit float WAV at each input's own rate)

A model is any of: a SavedModel version directory (`saved_models/x/3`), a TF Serving base directory (its highest
integer version), a training model_dir (config.json + checkpoints/, restored with cass_tf.models.cass.restore), or a
Separator. Whichever it is, separation is `cass_tf.windows.separate_waveform` (in the SavedModel it is inside the
exported graph), traced once for inputs of shape [None, None], so new lengths never re-trace.

Long inputs are processed in blocks (`block_seconds`, default 60 s at the model's rate) so memory stays bounded. Block
starts lie on the model's patch grid (multiples of patch.frames/2 STFT hops) and neighbouring blocks overlap by
two contexts plus a fade (context = one STFT window + one patch of frames, rounded up to the grid). Away from its
edges by one context, a block's output depends only on samples inside the block and uses exactly the patches the
whole-signal computation uses, so it equals the one-shot result; blocks are cross-faded (raised cosine) only where
both are in that exact region. Blocked and one-shot outputs therefore agree to float32 round-off (the tests allow
1e-5 of the output scale), not just approximately. Resampling (audio.resample, polyphase) runs on the whole signal.

Importing: `cass_tf.separate` and `cass_tf.Separator` (loaded lazily, so `import cass_tf` does not import TensorFlow)
are this module's `separate` and `Separator`; take other names with `from cass_tf.separation import run_files, ...`.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
from absl import app, flags

from cass_tf import audio
from cass_tf.checks import PathLike, check_array, check_audio_files, check_block_seconds, check_rate, load_mixtures

# TensorFlow (and cass_tf.export, which imports it) load on first use, so bad input is reported without the wait.

Progress = Callable[[float], None]
DEFAULT_BLOCK_SECONDS = 60.0

FLAGS = flags.FLAGS


class Separator:
    """A loaded model: `Separator(model)(waveform)` -> {component: waveform}, at the model's sample rate.

    `model`: a SavedModel version directory, a TF Serving base directory (highest integer version), a training
    model_dir (config.json + checkpoints/), a CASSModel, or another Separator (shares its loaded model).
    Loading happens once, here; raises FileNotFoundError for a missing path and ValueError for a directory that is
    not a model (no versions, no serving_default signature, not a cass_tf export).
    """

    def __init__(self, model: Union[PathLike, "Separator", Any]):
        if isinstance(model, Separator):
            self.__dict__.update(model.__dict__)
            return
        if isinstance(model, (str, os.PathLike)):
            kind, path = _resolve(os.fspath(model))
            if kind == "savedmodel":
                self._load_saved_model(path)
            else:
                from cass_tf.models.cass import restore

                self._wrap_model(restore(path), path)
            return
        from cass_tf.models.cass import CASSModel

        if isinstance(model, CASSModel):
            self._wrap_model(model, "<CASSModel>")
            return
        raise TypeError(f"model must be a path, a Separator or a CASSModel, got {type(model).__name__}")

    # ---- loading ----

    def _load_saved_model(self, path: str) -> None:
        import tensorflow as tf

        from cass_tf.export import CONFIG_ASSET, SERVING_SIGNATURE, WAVEFORM_INPUT, read_serving_config

        try:
            loaded = tf.saved_model.load(path)
        except Exception as e:  # noqa: BLE001 (corrupt protobufs and missing variables raise many types)
            raise ValueError(f"{path!r} could not be loaded as a SavedModel: {e}") from None
        signatures = dict(loaded.signatures)
        if SERVING_SIGNATURE not in signatures:
            raise ValueError(f"SavedModel {path!r} has no {SERVING_SIGNATURE!r} signature "
                             f"(it has {sorted(signatures)}); export it with cass_tf.export")
        signature = signatures[SERVING_SIGNATURE]
        inputs = signature.structured_input_signature[1]
        if set(inputs) != {WAVEFORM_INPUT}:
            raise ValueError(f"SavedModel {path!r}: {SERVING_SIGNATURE} takes {sorted(inputs)}, "
                             f"expected one input {WAVEFORM_INPUT!r}; not a cass_tf export")
        served = read_serving_config(path)
        outputs = set(signature.structured_outputs)
        if outputs != set(served["components"]):
            raise ValueError(f"SavedModel {path!r}: outputs {sorted(outputs)} do not match the components "
                             f"{served['components']} in assets/{CONFIG_ASSET}")
        self._loaded = loaded  # keeps the restored variables alive
        self.function = lambda waveform: signature(**{WAVEFORM_INPUT: waveform})
        self._set_meta(path, "savedmodel", served["sample_rate"], served["components"], served["stft"], served["patch"])

    def _wrap_model(self, model: Any, path: str) -> None:
        import tensorflow as tf

        from cass_tf.export import WAVEFORM_INPUT
        from cass_tf.spectral import Spectral
        from cass_tf.windows import separate_waveform

        config = model.config
        spectral = Spectral.from_config(config)
        names = tuple(config.components)

        def networks(features: tf.Tensor) -> dict[str, tf.Tensor]:
            return model(features, training=False)

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name=WAVEFORM_INPUT)])
        def function(waveform: tf.Tensor) -> dict[str, tf.Tensor]:
            return separate_waveform(spectral, networks, names, waveform)

        self._model = model
        self.function = function
        stft, patch = config.to_dict()["stft"], config.to_dict()["patch"]
        self._set_meta(path, "checkpoint", config.data.sample_rate, names, stft, patch)

    def _set_meta(self, path: str, kind: str, rate: int, components: Sequence[str], stft: dict, patch: dict) -> None:
        self.source, self.kind = path, kind
        self._sample_rate, self._components = int(rate), tuple(components)
        self._stft, self._patch = dict(stft), dict(patch)

    # ---- properties ----

    @property
    def sample_rate(self) -> int:
        """The rate (Hz) the model expects its input at."""
        return self._sample_rate

    @property
    def components(self) -> tuple[str, ...]:
        """Component names, in output order."""
        return self._components

    def __repr__(self) -> str:
        return (f"Separator({self.source!r}, kind={self.kind!r}, sample_rate={self.sample_rate}, "
                f"components={list(self.components)})")

    # ---- separation ----

    def __call__(self, waveform: np.ndarray) -> dict[str, np.ndarray]:
        """One-shot separation of [samples] or [batch, samples] float audio at `sample_rate`; same shapes out."""
        x = check_array(waveform, "waveform", layout="(samples,) or (batch, samples)")
        batch = x if x.ndim == 2 else x[np.newaxis]
        outputs = self._run(batch)
        return {n: (v if x.ndim == 2 else v[0]) for n, v in outputs.items()}

    def process(self, waveform: np.ndarray, block_seconds: Optional[float] = DEFAULT_BLOCK_SECONDS,
                progress: Optional[Progress] = None) -> dict[str, np.ndarray]:
        """Like `__call__`, but in overlapping blocks of about `block_seconds` (None: one shot); see the module doc.

        `progress(fraction)` is called after each block with the fraction of samples done (ending with 1.0).
        """
        x = check_array(waveform, "waveform", layout="(samples,) or (batch, samples)")
        batch = x if x.ndim == 2 else x[np.newaxis]
        samples = batch.shape[1]
        done = _scaled(progress, 0.0, 1.0)
        blocks = self.blocks(samples, block_seconds)
        if len(blocks) == 1:
            outputs = self._run(batch)
            done(1.0)
        else:
            outputs = {n: np.zeros(batch.shape, np.float32) for n in self.components}
            for k, (start, end, weight) in enumerate(blocks):
                part = self._run(batch[:, start:end])
                for n in self.components:
                    outputs[n][:, start:end] += weight * part[n]
                done(end / samples if k + 1 < len(blocks) else 1.0)
        return {n: (v if x.ndim == 2 else v[0]) for n, v in outputs.items()}

    def blocks(self, samples: int, block_seconds: Optional[float] = DEFAULT_BLOCK_SECONDS
               ) -> list[tuple[int, int, np.ndarray]]:
        """(start, end, weight) per block for a signal of `samples`; the weights sum to 1 at every sample."""
        if check_block_seconds(block_seconds) is None:
            return [(0, samples, np.ones(samples, np.float32))]
        hop, window, frames = self._stft["hop"], self._stft["window"], self._patch["frames"]
        unit = hop * (frames // 2)  # one patch hop in samples: block starts stay on the whole signal's patch grid
        context = _round_up(window + frames * hop, unit)  # samples at a block edge that differ from one-shot
        fade = unit
        overlap = 2 * context + fade
        length = max(_round_up(math.ceil(block_seconds * self.sample_rate), unit), 2 * overlap)
        if samples <= length:
            return [(0, samples, np.ones(samples, np.float32))]
        step = length - overlap
        starts = [0]
        while starts[-1] + length < samples:
            starts.append(starts[-1] + step)
        ramp = (0.5 + 0.5 * np.cos(np.pi * (np.arange(fade) + 0.5) / fade)).astype(np.float32)  # 1 -> 0
        result = []
        for k, start in enumerate(starts):
            end = min(start + length, samples)
            weight = np.ones(end - start, np.float32)
            if k > 0:  # fade in over [start + context, start + context + fade), nothing before
                weight[:context] = 0.0
                weight[context:context + fade] = 1.0 - ramp
            if k + 1 < len(starts):  # fade out where the next block fades in
                cut = starts[k + 1] + context - start
                weight[cut:cut + fade] = ramp
                weight[cut + fade:] = 0.0
            result.append((start, end, weight))
        return result

    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        import tensorflow as tf

        outputs = self.function(tf.constant(batch, tf.float32))
        return {n: outputs[n].numpy() for n in self.components}


def separate(mixture: Union[np.ndarray, PathLike, Sequence[Union[np.ndarray, PathLike]]],
             model: Union[PathLike, Separator, Any], sample_rate: Optional[int] = None, *,
             block_seconds: Optional[float] = DEFAULT_BLOCK_SECONDS,
             progress: Optional[Progress] = None) -> Union[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """Separates a mixture into the model's components; returns {component: float32 (samples,)}.

    mixture: a 1-D float array (samples,); a 2-D float array (channels, samples), averaged to mono first; an audio
        file path (str or PathLike; read with soundfile, channels averaged, its own rate used); or a list/tuple of
        those, giving a list of dicts in the same order. Integer arrays are rejected (convert them yourself, e.g.
        `pcm.astype(np.float32) / 32768` for 16-bit), as are empty arrays, NaN/inf, values beyond float32's range and 3-D arrays.
    model: a Separator, or anything Separator accepts (a path is loaded on every call: keep a Separator to reuse).
    sample_rate: the rate of array inputs in Hz (default: the model's). Inputs are resampled to the model's rate
        (audio.resample) and the outputs back to the input's rate; outputs have the input's length.
    block_seconds: block length for long inputs (see the module doc); None processes each input in one piece.
    progress: called with the fraction of all input samples done, after each block (ending with 1.0).
    Raises ValueError (or FileNotFoundError for a missing file or model) naming the problem, before any work.
    """
    if sample_rate is not None:
        sample_rate = check_rate(sample_rate)
    check_block_seconds(block_seconds)
    mixtures, many = load_mixtures(mixture, sample_rate)
    loaded = [(audio.to_mono(x), rate) for x, rate in mixtures]
    separator = model if isinstance(model, Separator) else Separator(model)
    total = sum(x.shape[0] for x, _ in loaded)
    results, done = [], 0
    for x, rate in loaded:
        report = _scaled(progress, done / total, x.shape[0] / total)
        results.append(_separate_one(separator, x, rate or separator.sample_rate, block_seconds, report))
        done += x.shape[0]
    return results if many else results[0]


def _separate_one(separator: Separator, x: np.ndarray, rate: int, block_seconds: Optional[float],
                  progress: Progress) -> dict[str, np.ndarray]:
    model_rate = separator.sample_rate
    resampled = audio.resample(x, rate, model_rate)
    outputs = separator.process(resampled, block_seconds, progress)
    return {n: audio.fit_length(audio.resample(v, model_rate, rate), x.shape[0]) for n, v in outputs.items()}


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
    if os.path.exists(os.path.join(path, "config.json")):
        return "checkpoint", path
    from cass_tf.export import versions  # imports TensorFlow, which loading the model needs next anyway

    found = versions(path)
    if not found:
        raise ValueError(f"model {path!r} has no versions and is not a model: {what}")
    latest = os.path.join(path, str(found[-1]))
    if not os.path.exists(os.path.join(latest, "saved_model.pb")):
        raise ValueError(f"model {path!r}: its highest version {latest!r} has no saved_model.pb")
    return "savedmodel", latest


def _scaled(progress: Optional[Progress], offset: float, span: float) -> Progress:
    """`progress` called with offset + span * fraction (a no-op when progress is None)."""
    if progress is None:
        return lambda fraction: None
    return lambda fraction: progress(min(1.0, offset + span * fraction))


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


# ---- command line ----

class _Bar:
    """A one-line progress bar on stderr (redrawn on a terminal; a line per file otherwise)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.tty = total, enabled, sys.stderr.isatty()
        self.started = time.time()

    def show(self, index: int, fraction: float, name: str, final: bool = False) -> None:
        if not self.enabled or not (self.tty or final):
            return
        overall = (index + fraction) / self.total
        filled = int(round(30 * overall))
        line = (f"[{'=' * filled}{'.' * (30 - filled)}] {100 * overall:5.1f}%  file {index + 1}/{self.total} "
                f"{name}  {time.time() - self.started:.0f}s")
        sys.stderr.write(("\r" + line + " " * 4) if self.tty else line + "\n")
        if final and self.tty and index + 1 == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run_files(paths: Sequence[str], model: Union[PathLike, Separator], out_dir: str,
              block_seconds: Optional[float] = DEFAULT_BLOCK_SECONDS, show_progress: bool = True) -> list[str]:
    """Separates each file into `<out_dir>/<stem>/<component>.wav`; everything is validated first. Returns paths."""
    check_audio_files(paths)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"out_dir {out_dir!r} exists and is not a directory")
    check_block_seconds(block_seconds)
    separator = model if isinstance(model, Separator) else Separator(model)
    bar = _Bar(len(paths), show_progress)
    written = []
    for index, path in enumerate(paths):
        name = os.path.basename(path)
        x, rate = audio.read_audio(path, mono=True)
        parts = _separate_one(separator, x, rate, block_seconds, lambda f: bar.show(index, f, name))
        stem = os.path.splitext(name)[0]
        for component, signal in parts.items():
            target = os.path.join(out_dir, stem, f"{component}.wav")
            audio.write_audio(target, signal, rate)
            written.append(target)
        bar.show(index, 1.0, name, final=True)
    return written


def main(argv: list[str]) -> None:
    paths = argv[1:]
    try:
        written = run_files(paths, FLAGS.model, FLAGS.out_dir, FLAGS.block_seconds or None, not FLAGS.quiet)
    except (ValueError, FileNotFoundError, OSError) as e:
        sys.exit(f"error: {e}")
    if not FLAGS.quiet:
        print(f"wrote {len(written)} files under {FLAGS.out_dir}/")


def define_flags() -> None:
    flags.DEFINE_string("model", None, "SavedModel version or base directory, or a training model_dir", required=True)
    flags.DEFINE_string("out_dir", None, "outputs go to <out_dir>/<file stem>/<component>.wav", required=True)
    flags.DEFINE_float("block_seconds", DEFAULT_BLOCK_SECONDS, "block length for long files (0: one piece)",
                       lower_bound=0.0)
    flags.DEFINE_bool("quiet", False, "no progress bar or summary")


if __name__ == "__main__":
    define_flags()
    app.run(main)
