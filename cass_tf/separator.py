"""Owns inference: `separate()` on arrays, lists and files, and the reusable `Separator` (in blocks, at a level).

    from cass_tf import separate, Separator
    parts = separate("mix.wav", "saved_models/bach10")            # {"saxophone": array, "bassoon": array}
    sep = Separator("saved_models/bach10")                         # load once, call many times
    parts = separate(x, sep, sample_rate=44100, progress=print)    # resampled to the model's rate and back

A model is any of: a SavedModel version directory (`saved_models/x/3`), a TF Serving base directory (its highest
integer version), a training model_dir (config.json + checkpoints/: the weights its exports hold,
`cass_tf.exporting.trained_model`), or a Separator (loading: cass_tf.loading). Whichever it is, separation is
`cass_tf.windows.separate_waveform` (in the SavedModel it is inside the exported graph), traced once for inputs of
shape [None, None], so new lengths never re-trace.

Scale: a model with `model.input_rms` brings each row (a channel) to that RMS before separating and scales the
outputs back by the row's level, so separate(c * x) == c * separate(x); blocks of a long row all use the whole row's
level (the export's `separate_at_level` signature), so blocking does not change that. A model with
`model.remove_dc` separates each row (each lead) less its mean, so separate(x + c) == separate(x); blocks take the
whole row's mean.
Channels: a (channels, samples) input is separated channel by channel (channels go through the model as batch rows)
and every component comes back as (channels, samples); `mono=True` averages the channels first instead.
Multi-lead models (`model.multilead`, configs/ecg_leads.json) take a (leads, samples) input as ONE recording: all its leads go
through the networks together and every component comes back on every lead, (leads, samples); any number of leads
(a 1-D input is one lead). The level is one per recording, over all its leads.
Cancellation models (`model.cancellation`, cass_tf.cancellation) subtract the maternal templates of each recording
before the networks and add them back to the maternal output; a (channels, samples) input is one recording there.

Long inputs are processed in blocks (`block_seconds`, default 60 s at the model's rate) so memory stays bounded. Block
starts lie on the model's patch grid (multiples of patch.frames/2 STFT hops) and neighbouring blocks overlap by
two contexts plus a fade (context = one STFT window + one patch of frames, rounded up to the grid). Away from its
edges by one context, a block's output depends only on samples inside the block and uses exactly the patches the
whole-signal computation uses, so it equals the one-shot result; blocks are cross-faded (raised cosine) only where
both are in that exact region. Blocked and one-shot outputs therefore agree to float32 round-off (the tests allow
1e-5 of the output scale), not just approximately. Resampling (audio.resample, polyphase) runs on the whole signal.

Importing: `cass_tf.separate` and `cass_tf.Separator` (loaded lazily, so `import cass_tf` does not import TensorFlow)
are this module's `separate` and `Separator`. Around `separate()`: cass_tf.frontend (inputs to the model's rate and
back), cass_tf.files (files to files: the `separate` command).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from cass_tf import cancellation
from cass_tf.checks import (PathLike, check_array, check_block_seconds, check_outputs, check_progress, check_rate,
                            load_mixtures)
from cass_tf.frontend import Backend, record_mixture, separate_mixtures
from cass_tf.loading import load
from cass_tf.records import Record
from cass_tf.spectral import centred, recording_level

Progress = Callable[[float], None]

DEFAULT_BLOCK_SECONDS = 60.0



class Separator:
    """A loaded model: `Separator(model)(waveform)` -> {component: waveform}, at the model's sample rate.

    `model`: a SavedModel version directory, a TF Serving base directory (highest integer version), a training
    model_dir (config.json + checkpoints/), a CASSModel, or another Separator (shares its loaded model).
    Loading happens once, here; raises FileNotFoundError for a missing path and ValueError for a directory that is
    not a model (no versions, no serving_default signature, not a cass_tf export).
    """

    def __init__(self, model: Union[PathLike, "Separator", Any]):
        self._loaded = model._loaded if isinstance(model, Separator) else load(model)

    # ---- properties ----

    @property
    def source(self) -> str:
        """Where the model came from (a version directory or model_dir, or "<CASSModel>")."""
        return self._loaded.source

    @property
    def kind(self) -> str:
        """"savedmodel" or "checkpoint"."""
        return self._loaded.kind

    @property
    def function(self) -> Callable[[Any], dict[str, Any]]:
        """The separating graph: float32 tensor [batch, samples] -> {component: tensor [batch, samples]}."""
        return self._loaded.function

    @property
    def sample_rate(self) -> int:
        """The rate (Hz) the model expects its input at."""
        return self._loaded.config.data.sample_rate

    @property
    def config(self) -> Any:
        """The model's cass_tf.config.Config (its data source, rate, STFT, ...)."""
        return self._loaded.config

    @property
    def multilead(self) -> bool:
        """Whether the model takes all leads of a recording together ((leads, samples) is one recording)."""
        return self._loaded.config.model.multilead

    @property
    def components(self) -> tuple[str, ...]:
        """Component names, in output order."""
        return self._loaded.config.components

    def __repr__(self) -> str:
        return (f"Separator({self.source!r}, kind={self.kind!r}, sample_rate={self.sample_rate}, "
                f"components={list(self.components)})")

    # ---- separation ----

    def __call__(self, waveform: np.ndarray) -> dict[str, np.ndarray]:
        """One-shot separation of [samples] or [batch, samples] float audio at `sample_rate` (a multi-lead model:
        [leads, samples] or [batch, leads, samples]); same shapes out."""
        return self.process(waveform, block_seconds=None)

    def process(self, waveform: np.ndarray, block_seconds: Optional[float] = DEFAULT_BLOCK_SECONDS,
                progress: Optional[Progress] = None) -> dict[str, np.ndarray]:
        """Like `__call__`, but in overlapping blocks of about `block_seconds` (None: one shot); see the module doc.

        `progress(fraction)` is called after each block with the fraction of samples done (ending with 1.0).
        Raises ValueError naming `waveform` for bad input, or when the outputs would not be finite (an input so
        large that the model's float32 arithmetic overflows).
        """
        if self.multilead:
            x = check_array(waveform, "waveform", "(samples,), (leads, samples) or (batch, leads, samples)", (1, 2, 3))
        else:
            x = check_array(waveform, "waveform", layout="(samples,) or (batch, samples)")
        check_progress(progress)
        return check_outputs(self._process(x, block_seconds, progress), x, "waveform")

    def _process(self, x: np.ndarray, block_seconds: Optional[float], progress: Optional[Progress]
                 ) -> dict[str, np.ndarray]:
        """`process` on a checked float32 array, its outputs unchecked. A model with model.cancellation separates
        each recording with cass_tf.cancellation.around: a multi-lead model's [leads, samples] rows, and all the rows
        of a one-lead model's [batch, samples] input, are the leads of one recording."""
        if self.config.model.cancellation == "none":
            return self._blocks(x, block_seconds, progress)
        recordings = x.reshape((-1,) + x.shape[-2:]) if self.multilead and x.ndim == 3 else x[np.newaxis]
        parts = [cancellation.around(r, self.sample_rate, self.multilead,
                                     lambda m: self._blocks(m, block_seconds, progress)) for r in recordings]
        return {n: np.stack([p[n] for p in parts]).reshape(x.shape) for n in self.components}

    def _blocks(self, x: np.ndarray, block_seconds: Optional[float], progress: Optional[Progress]
                ) -> dict[str, np.ndarray]:
        """The model's outputs of a checked float32 array. Every block of a row is separated at the whole row's
        level (when the model has a level signature), so blocks equal the one-shot result."""
        rank = 3 if self.multilead else 2  # [batch, (leads,) samples]
        batch = x.reshape((1,) * (rank - x.ndim) + x.shape)
        samples = batch.shape[-1]
        done = _scaled(progress, 0.0, 1.0)
        blocks = self.blocks(samples, block_seconds)
        if self.config.model.remove_dc:  # at the whole row's level and mean (separate_at_level centres no block)
            batch = centred(batch).numpy()
        level = self._level(batch)
        if len(blocks) == 1:
            outputs = self._run(batch, level)
            done(1.0)
        else:
            outputs = {n: np.zeros(batch.shape, np.float32) for n in self.components}
            for k, (start, end, weight) in enumerate(blocks):
                part = self._run(batch[..., start:end], level)
                for n in self.components:
                    outputs[n][..., start:end] += weight * part[n]
                done(end / samples if k + 1 < len(blocks) else 1.0)
        return {n: v.reshape(x.shape) for n, v in outputs.items()}

    def blocks(self, samples: int, block_seconds: Optional[float] = DEFAULT_BLOCK_SECONDS
               ) -> list[tuple[int, int, np.ndarray]]:
        """(start, end, weight) per block for a signal of `samples`; the weights sum to 1 at every sample."""
        if check_block_seconds(block_seconds) is None:
            return [(0, samples, np.ones(samples, np.float32))]
        stft, frames = self._loaded.config.stft, self._loaded.config.patch.frames
        unit = stft.hop * (frames // 2)  # one patch hop in samples: block starts stay on the whole signal's patch grid
        context = _round_up(stft.samples_for(frames + 1), unit)  # samples at a block edge that differ from one-shot
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

    def _level(self, batch: np.ndarray) -> Optional[np.ndarray]:
        """Each recording's level (spectral.recording_level) if the model separates at a given level, else None."""
        if self._loaded.at_level is None:
            return None
        return recording_level(batch, self.multilead).numpy()

    def _run(self, batch: np.ndarray, level: Optional[np.ndarray] = None) -> dict[str, np.ndarray]:
        waveform = tf.constant(batch, tf.float32)
        outputs = self.function(waveform) if level is None else self._loaded.at_level(waveform, tf.constant(level))
        return {n: outputs[n].numpy() for n in self.components}



def separate(mixture: Union[np.ndarray, PathLike, Sequence[Union[np.ndarray, PathLike]]],
             model: Union[PathLike, Separator, Any], sample_rate: Optional[int] = None, *,
             block_seconds: Optional[float] = DEFAULT_BLOCK_SECONDS,
             progress: Optional[Progress] = None,
             mono: bool = False, channels: Optional[Sequence[Union[str, int]]] = None
             ) -> Union[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """Separates a mixture into the model's components; returns {component: float32 array of the input's shape}.

    mixture: a 1-D float array (samples,); a 2-D float array (channels, samples), each channel separated on its own
        (outputs (channels, samples)); an audio file path (str or PathLike; read with soundfile, its own rate used,
        its channels as for a 2-D array); or a list/tuple of those, giving a list of dicts in the same order. Integer arrays are rejected (convert them yourself, e.g.
        `pcm.astype(np.float32) / 32768` for 16-bit), as are empty arrays, NaN/inf, values beyond float32's range and 3-D arrays.
    model: a Separator, or anything Separator accepts (a path is loaded on every call: keep a Separator to reuse).
    sample_rate: the rate of array inputs in Hz (default: the model's). Inputs are resampled to the model's rate
        (audio.resample) and the outputs back to the input's rate; outputs have the input's length.
    block_seconds: block length for long inputs (see the module doc); None processes each input in one piece.
    progress: called with the fraction of all input samples done, after each block (ending with 1.0).
    mono: average the channels of a 2-D input or file first (outputs (samples,)), as cass_tf did before channels.
    channels: for biosignal files (EDF/BDF, WFDB .hea, CSV, NPY; cass_tf.records), the channels to separate (names
        or 0-based indices; default: the model's default leads, records.DEFAULT_CHANNELS), ECG channels minus
        their median, a PPG as recorded (cass_tf.frontend.record_mixture); outputs (channels, samples) at the
        file's rate. NPY files and CSVs without a time column need `sample_rate`.
    Raises ValueError (or FileNotFoundError for a missing file or model) naming the problem, before any work.
    """
    if sample_rate is not None:
        sample_rate = check_rate(sample_rate)
    check_block_seconds(block_seconds)
    check_progress(progress)
    mixtures, many = load_mixtures(mixture, sample_rate)
    separator = model if isinstance(model, Separator) else Separator(model)
    mixtures = [record_mixture(x, separator, channels)[1:] if isinstance(x, Record) else (x, rate)
                for x, rate in mixtures]
    run = in_blocks(separator, block_seconds, progress, [x.shape[-1] for x, _ in mixtures])
    return separate_mixtures(mixtures, many, separator.sample_rate, run, mono)



def in_blocks(separator: Separator, block_seconds: Optional[float], progress: Optional[Progress],
             lengths: Sequence[int]) -> Backend:
    """The front end's backend (cass_tf.frontend): each signal through the Separator in turn, in blocks; `progress`
    is told the fraction of all `lengths` (the inputs' own samples) done."""
    def run(signals: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        results, done, total = [], 0, sum(lengths)
        for x, length in zip(signals, lengths):
            results.append(separator._process(x, block_seconds, _scaled(progress, done / total, length / total)))
            done += length
        return results

    return run



def _scaled(progress: Optional[Progress], offset: float, span: float) -> Progress:
    """`progress` called with offset + span * fraction (a no-op when progress is None)."""
    if progress is None:
        return lambda fraction: None
    return lambda fraction: progress(min(1.0, offset + span * fraction))



def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit
