"""Owns whole-signal separation: any length, STFT patches at 50% overlap cross-faded in the linear spectral domain.

A signal of any length (>= 1 sample) is zero-padded by one STFT window on each side (so every real sample lies
where the inverse STFT is exact), its feature frames are cut into (F, T) patches with hop T/2, each patch goes
through the networks, and the linear component magnitudes (complex models: the complex spectra, real and imaginary
parts) are overlap-added with a Hann weight over the patch's frames and divided by the summed weights. One inverse
STFT (magnitudes with the mixture phase) then gives each component. Cross-fading happens before the inverse STFT,
so there are no seams at patch boundaries.
`separate_at_level` brings each row to the model's input RMS first (given the row's level, e.g. a whole signal's
when this is one block of it) and scales the outputs back, which makes separation scale-equivariant; with
`remove_dc` (model.remove_dc) a row at its own level is first centred (`spectral.centred`), while a block given a
level is taken as it comes: the caller has centred the whole row (cass_tf.separator does). `traced` is
that pair of functions traced once for any batch and length: what an export serves, what a Separator of a
checkpoint runs and what training draws example.png with.
Multi-lead models (`model.multilead`, `leads=True`): waveforms are [B, leads, samples]; every lead is cut into patches
at the same frames, the networks see each patch position's leads together ([N, leads, F, T, C]), and the level is
one per recording, over all its leads (as in training, cass_tf.data.pipeline), so the leads keep their relative
amplitudes.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import tensorflow as tf

from cass_tf.contract import LEVEL_INPUT, WAVEFORM_INPUT
from cass_tf.spectral import Spectral, centred, from_reference, recording_level, to_reference

# features [N, F, T, C] (multi-lead: [N, leads, F, T, C]) -> {component: the same shape}
Networks = Callable[[tf.Tensor], dict[str, tf.Tensor]]


def separate_waveform(spectral: Spectral, networks: Networks, names: Sequence[str], waveform: tf.Tensor,
                      max_patches: int = 64, leads: bool = False) -> dict[str, tf.Tensor]:
    """float32 [B, samples] -> {component: float32 [B, samples]}; the networks see at most `max_patches` patch
    positions at once. `leads`: [B, leads, samples] in and out, each patch position's leads through the networks
    together."""
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    shape = tf.shape(waveform)
    rows = tf.reshape(waveform, [-1, shape[-1]]) if leads else waveform  # leads: one row per lead
    samples = shape[-1]
    frames, hop = spectral.frames, spectral.frames // 2
    padded = _pad(rows, spectral, samples, frames, hop)
    spectrum = spectral.stft(padded)  # [rows, M, bins]
    features = spectral.features(spectrum)  # [rows, F, M, C]
    channels = spectral.channels
    patches = tf.signal.frame(features, frames, hop, axis=2)  # [rows, F, P, T, C]
    batch, bins, count = tf.shape(patches)[0], tf.shape(patches)[1], tf.shape(patches)[2]
    flat = tf.reshape(tf.transpose(patches, [0, 2, 1, 3, 4]), [batch * count, bins, frames, channels])
    if leads:  # [B * leads * P, ...] -> [B * P, leads, ...]: a patch position's leads together, and back
        by_lead = [shape[0], shape[1], count, bins, frames, channels]
        grouped = tf.reshape(tf.transpose(tf.reshape(flat, by_lead), [0, 2, 1, 3, 4, 5]),
                             [-1, shape[1], bins, frames, channels])
        outputs = _in_chunks(networks, names, grouped, max_patches)
        outputs = {n: tf.reshape(tf.transpose(tf.reshape(v, [shape[0], count, shape[1], bins, frames, channels]),
                                              [0, 2, 1, 3, 4, 5]), tf.shape(flat)) for n, v in outputs.items()}
    else:
        outputs = _in_chunks(networks, names, flat, max_patches)
    weight = tf.signal.hann_window(frames, periodic=False, dtype=tf.float32) + 1e-3
    norm = tf.signal.overlap_and_add(tf.tile(weight[tf.newaxis], [count, 1]), hop)  # [M]
    results = {}
    for name, estimate in outputs.items():
        if spectral.complex:
            linear = tf.cast(estimate, tf.float32)  # [rows*P, F, T, 2]: real and imaginary parts
        else:
            linear = tf.linalg.matrix_transpose(spectral.magnitude(estimate))[..., tf.newaxis]  # [rows*P, F, T, 1]
        linear = tf.reshape(linear, [batch, count, bins, frames, channels]) * weight[:, tf.newaxis]
        linear = tf.transpose(linear, [0, 2, 4, 1, 3])  # [rows, F, C, P, T]
        merged = tf.transpose(tf.signal.overlap_and_add(linear, hop) / norm, [0, 2, 3, 1])  # [rows, C, M, F]
        if spectral.complex:
            full = spectral.waveform_from_spectrum(tf.complex(merged[:, 0], merged[:, 1]), tf.shape(padded)[1])
        else:
            full = spectral.waveform_from_magnitude(merged[:, 0], spectrum, tf.shape(padded)[1])
        results[name] = tf.reshape(full[:, spectral.window: spectral.window + samples], shape)
    return results


def separate_at_level(spectral: Spectral, networks: Networks, names: Sequence[str], waveform: tf.Tensor,
                      reference: float | None, row_level: tf.Tensor | None = None,
                      max_patches: int = 64, leads: bool = False, remove_dc: bool = False) -> dict[str, tf.Tensor]:
    """`separate_waveform` of each row brought from `row_level` [B] (default: the row's own `spectral.recording_level`,
    with `leads` the recording's over all its leads) to RMS `reference`, outputs scaled back by row_level / reference;
    `reference` None: `separate_waveform` as it is. `remove_dc` (needs `reference`): without `row_level` each row (each
    lead) is centred first; with it the rows are taken as centred blocks of a longer row."""
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    if remove_dc and row_level is None:
        waveform = centred(waveform)
    if reference is None:
        return separate_waveform(spectral, networks, names, waveform, max_patches, leads)
    row_level = recording_level(waveform, leads) if row_level is None else tf.convert_to_tensor(row_level, tf.float32)
    gain_level = row_level[:, tf.newaxis] if leads else row_level  # one gain for all leads of a recording
    outputs = separate_waveform(spectral, networks, names, to_reference(waveform, gain_level, reference),
                                max_patches, leads)
    return {n: from_reference(v, gain_level, reference) for n, v in outputs.items()}


def traced(spectral: Spectral, networks: Networks, names: Sequence[str], reference: float | None,
           max_patches: int = 64, leads: bool = False, remove_dc: bool = False) -> tuple[Any, Any]:
    """(own_level, at_level): `separate_at_level` as two tf.functions over float32 [batch, samples] (`leads`:
    [batch, leads, samples]) of any shape (so new lengths never re-trace), the inputs named as the serving contract
    names them: `own_level(waveform)` takes each row's own level, `at_level(waveform, level)` the given level [batch]
    (a block of a longer signal, centred by the whole signal's mean with `remove_dc`)."""
    waveform_spec = tf.TensorSpec([None, None, None] if leads else [None, None], tf.float32, name=WAVEFORM_INPUT)

    def own_level(waveform: tf.Tensor) -> dict[str, tf.Tensor]:
        return separate_at_level(spectral, networks, names, waveform, reference, max_patches=max_patches, leads=leads,
                                 remove_dc=remove_dc)

    def at_level(waveform: tf.Tensor, level: tf.Tensor) -> dict[str, tf.Tensor]:
        return separate_at_level(spectral, networks, names, waveform, reference, level, max_patches, leads, remove_dc)

    return (tf.function(own_level, input_signature=[waveform_spec], autograph=False),
            tf.function(at_level, input_signature=[waveform_spec, tf.TensorSpec([None], tf.float32, name=LEVEL_INPUT)],
                        autograph=False))


def _pad(waveform: tf.Tensor, spectral: Spectral, samples: tf.Tensor, frames: int, hop: int) -> tf.Tensor:
    """Zero-pads one window before and enough after for a whole number of patch hops (at least one patch)."""
    window = spectral.window
    needed = tf.maximum(spectral.num_frames_tensor(samples + 2 * window), frames)
    patches = 1 + (needed - frames + hop - 1) // hop
    total_frames = frames + (patches - 1) * hop
    length = spectral.samples_for(total_frames)
    return tf.pad(waveform, [[0, 0], [window, length - window - samples]])


def _in_chunks(networks: Networks, names: Sequence[str], flat: tf.Tensor, size: int) -> dict[str, tf.Tensor]:
    """Runs the networks over `flat` [N, ...] in equal chunks of at most `size` along N (bounded memory)."""
    total = tf.shape(flat)[0]
    chunks = (total + size - 1) // size
    per_chunk = (total + chunks - 1) // chunks
    padded = tf.pad(flat, [[0, chunks * per_chunk - total]] + [[0, 0]] * (flat.shape.rank - 1))
    shaped = tf.reshape(padded, tf.concat([[chunks, per_chunk], tf.shape(flat)[1:]], axis=0))
    signature = {n: tf.TensorSpec([None] + flat.shape[1:].as_list(), tf.float32) for n in names}

    def run(chunk: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = networks(chunk)
        return {n: tf.cast(outputs[n], tf.float32) for n in names}

    stacked = tf.map_fn(run, shaped, fn_output_signature=signature, parallel_iterations=1)
    return {n: tf.reshape(v, tf.concat([[-1], tf.shape(v)[2:]], axis=0))[:total] for n, v in stacked.items()}
