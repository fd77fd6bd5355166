"""Owns whole-signal separation: any length, STFT patches at 50% overlap cross-faded in the linear spectral domain.

A signal of any length (>= 1 sample) is zero-padded by one STFT window on each side (so every real sample lies
where the inverse STFT is exact), its feature frames are cut into (F, T) patches with hop T/2, each patch goes
through the networks, and the linear component magnitudes (complex models: the complex spectra, real and imaginary
parts) are overlap-added with a Hann weight over the patch's frames and divided by the summed weights. One inverse
STFT (magnitudes with the mixture phase) then gives each component. Cross-fading happens before the inverse STFT,
so there are no seams at patch boundaries.
`separate_at_level` brings each row to the model's input RMS first (given the row's level, e.g. a whole signal's
when this is one block of it) and scales the outputs back, which makes separation scale-equivariant. `traced` is
that pair of functions traced once for any batch and length: what an export serves, what a Separator of a
checkpoint runs and what training draws example.png with.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import tensorflow as tf

from cass_tf.contract import LEVEL_INPUT, WAVEFORM_INPUT
from cass_tf.spectral import Spectral, from_reference, level, to_reference

Networks = Callable[[tf.Tensor], dict[str, tf.Tensor]]  # features [N, F, T, C] -> {component: [N, F, T, C]}


def separate_waveform(spectral: Spectral, networks: Networks, names: Sequence[str], waveform: tf.Tensor,
                      max_patches: int = 64) -> dict[str, tf.Tensor]:
    """float32 [B, samples] -> {component: float32 [B, samples]}; the networks see at most `max_patches` at once."""
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    samples = tf.shape(waveform)[1]
    frames, hop = spectral.frames, spectral.frames // 2
    padded = _pad(waveform, spectral, samples, frames, hop)
    spectrum = spectral.stft(padded)  # [B, M, bins]
    features = spectral.features(spectrum)  # [B, F, M, C]
    channels = spectral.channels
    patches = tf.signal.frame(features, frames, hop, axis=2)  # [B, F, P, T, C]
    batch, bins, count = tf.shape(patches)[0], tf.shape(patches)[1], tf.shape(patches)[2]
    flat = tf.reshape(tf.transpose(patches, [0, 2, 1, 3, 4]), [batch * count, bins, frames, channels])
    outputs = _in_chunks(networks, names, flat, max_patches)
    weight = tf.signal.hann_window(frames, periodic=False, dtype=tf.float32) + 1e-3
    norm = tf.signal.overlap_and_add(tf.tile(weight[tf.newaxis], [count, 1]), hop)  # [M]
    results = {}
    for name, estimate in outputs.items():
        if spectral.complex:
            linear = tf.cast(estimate, tf.float32)  # [B*P, F, T, 2]: real and imaginary parts
        else:
            linear = tf.linalg.matrix_transpose(spectral.magnitude(estimate))[..., tf.newaxis]  # [B*P, F, T, 1]
        linear = tf.reshape(linear, [batch, count, bins, frames, channels]) * weight[:, tf.newaxis]
        linear = tf.transpose(linear, [0, 2, 4, 1, 3])  # [B, F, C, P, T]
        merged = tf.transpose(tf.signal.overlap_and_add(linear, hop) / norm, [0, 2, 3, 1])  # [B, C, M, F]
        if spectral.complex:
            full = spectral.waveform_from_spectrum(tf.complex(merged[:, 0], merged[:, 1]), tf.shape(padded)[1])
        else:
            full = spectral.waveform_from_magnitude(merged[:, 0], spectrum, tf.shape(padded)[1])
        results[name] = full[:, spectral.window: spectral.window + samples]
    return results


def separate_at_level(spectral: Spectral, networks: Networks, names: Sequence[str], waveform: tf.Tensor,
                      reference: float | None, row_level: tf.Tensor | None = None,
                      max_patches: int = 64) -> dict[str, tf.Tensor]:
    """`separate_waveform` of each row brought from `row_level` [B] (default: the row's own `spectral.level`) to RMS
    `reference`, outputs scaled back by row_level / reference; `reference` None: `separate_waveform` as it is."""
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    if reference is None:
        return separate_waveform(spectral, networks, names, waveform, max_patches)
    row_level = level(waveform) if row_level is None else tf.convert_to_tensor(row_level, tf.float32)
    outputs = separate_waveform(spectral, networks, names, to_reference(waveform, row_level, reference), max_patches)
    return {n: from_reference(v, row_level, reference) for n, v in outputs.items()}


def traced(spectral: Spectral, networks: Networks, names: Sequence[str], reference: float | None,
           max_patches: int = 64) -> tuple[Any, Any]:
    """(own_level, at_level): `separate_at_level` as two tf.functions over float32 [batch, samples] of any shape (so
    new lengths never re-trace), the inputs named as the serving contract names them: `own_level(waveform)` takes
    each row's own level, `at_level(waveform, level)` the given level [batch] (a block of a longer signal)."""
    waveform_spec = tf.TensorSpec([None, None], tf.float32, name=WAVEFORM_INPUT)

    def own_level(waveform: tf.Tensor) -> dict[str, tf.Tensor]:
        return separate_at_level(spectral, networks, names, waveform, reference, max_patches=max_patches)

    def at_level(waveform: tf.Tensor, level: tf.Tensor) -> dict[str, tf.Tensor]:
        return separate_at_level(spectral, networks, names, waveform, reference, level, max_patches)

    return (tf.function(own_level, input_signature=[waveform_spec]),
            tf.function(at_level, input_signature=[waveform_spec, tf.TensorSpec([None], tf.float32, name=LEVEL_INPUT)]))


def _pad(waveform: tf.Tensor, spectral: Spectral, samples: tf.Tensor, frames: int, hop: int) -> tf.Tensor:
    """Zero-pads one window before and enough after for a whole number of patch hops (at least one patch)."""
    window = spectral.window
    needed = tf.maximum(spectral.num_frames_tensor(samples + 2 * window), frames)
    patches = 1 + (needed - frames + hop - 1) // hop
    total_frames = frames + (patches - 1) * hop
    length = spectral.samples_for(total_frames)
    return tf.pad(waveform, [[0, 0], [window, length - window - samples]])


def _in_chunks(networks: Networks, names: Sequence[str], flat: tf.Tensor, size: int) -> dict[str, tf.Tensor]:
    """Runs the networks over `flat` [N, F, T, 1] in equal chunks of at most `size` patches (bounded memory)."""
    total = tf.shape(flat)[0]
    chunks = (total + size - 1) // size
    per_chunk = (total + chunks - 1) // chunks
    padded = tf.pad(flat, [[0, chunks * per_chunk - total], [0, 0], [0, 0], [0, 0]])
    shaped = tf.reshape(padded, tf.concat([[chunks, per_chunk], tf.shape(flat)[1:]], axis=0))
    signature = {n: tf.TensorSpec([None] + flat.shape[1:].as_list(), tf.float32) for n in names}

    def run(chunk: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = networks(chunk)
        return {n: tf.cast(outputs[n], tf.float32) for n in names}

    stacked = tf.map_fn(run, shaped, fn_output_signature=signature, parallel_iterations=1)
    return {n: tf.reshape(v, tf.concat([[-1], tf.shape(v)[2:]], axis=0))[:total] for n, v in stacked.items()}
