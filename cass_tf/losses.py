"""Owns the CASS training losses (paper eqs. 7-9) as pure TensorFlow functions of tensors.

Conventions:
- Discriminators output *logits*, one per example: shape `[B, 1]` or `[B]`; or one per lead of a multi-lead
  example, `[B, leads]`. BCE is computed from logits with `tf.nn.sigmoid_cross_entropy_with_logits` (stable for any
  logit magnitude).
- Multi-lead examples (`[B, leads, ...]`): each example's loss is the mean over its leads of the one-lead loss.
  MSE is per example the mean over all non-batch axes, which is that already; the BCE and the waveform errors are
  computed per lead and averaged over the leads.
- Every loss is a float32 scalar: the per-example losses summed and divided by `global_batch_size`
  (`tf.nn.compute_average_loss`). Under `tf.distribute`, pass the global batch size, so that summing the replicas'
  losses gives the global mean. With `global_batch_size=None` the divisor is this batch's size: a plain mean.
- Inputs are cast to float32 first, so mixed-precision network outputs are scored in float32.
- The reconstruction term of eq. 7 is `weights.spectrum` x MSE on the output features plus, when the caller passes
  waveforms (after its inverse STFT), `weights.waveform` x a waveform error (config `loss.reconstruction`).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from cass_tf.config import ReconstructionConfig

Waveforms = tuple[tf.Tensor, tf.Tensor]  # (estimate, target), float [B, samples]


def _average(per_example: tf.Tensor, global_batch_size: int | None) -> tf.Tensor:
    """Sum of per-example losses / global_batch_size (this batch's size when None)."""
    if global_batch_size is None:
        global_batch_size = tf.shape(per_example)[0]
    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)


def _bce(logits: tf.Tensor, label: float) -> tf.Tensor:
    """Per-example BCE(sigmoid(logits), label), shape [B]: the mean over an example's logits (one per lead)."""
    logits = tf.cast(logits, tf.float32)
    logits = tf.reshape(logits, [tf.shape(logits)[0], -1])
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), label), logits=logits)
    return tf.reduce_mean(bce, axis=1)


def _bce_loss(logits: tf.Tensor, label: float, global_batch_size: int | None) -> tf.Tensor:
    return _average(_bce(logits, label), global_batch_size)


def _mean_per_example(values: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def waveform_error(estimate: tf.Tensor, target: tf.Tensor, kind: str) -> tf.Tensor:
    """Per-example waveform error [B] of [B, samples] waveforms (or [B, leads, samples]: the mean over the leads of
    each lead's error): "l1" mean |e|, "l2" mean e^2, "neg_sdr" -SDR = 20 log10 of the relative L2 error (dB; what
    eq. 6's L2 measures, per example, whatever its scale), "neg_si_sdr" -SI-SDR (dB). The SDRs use an epsilon of
    1e-8 x the energies, so silence stays finite."""
    estimate, target = tf.cast(estimate, tf.float32), tf.cast(target, tf.float32)
    if kind == "l1":
        return _mean_per_example(tf.abs(estimate - target))
    if kind == "l2":
        return _mean_per_example(tf.square(estimate - target))
    if kind not in ("neg_sdr", "neg_si_sdr"):
        raise ValueError(f"waveform loss must be 'l1', 'l2', 'neg_sdr' or 'neg_si_sdr', got {kind!r}")
    energy = tf.reduce_sum(tf.square(target), axis=-1)
    tiny = 1e-8 * (energy + tf.reduce_sum(tf.square(estimate), axis=-1)) + 1e-20
    if kind == "neg_sdr":
        ratio = (energy + tiny) / (tf.reduce_sum(tf.square(estimate - target), axis=-1) + tiny)
    else:
        projection = (tf.reduce_sum(estimate * target, axis=-1) / (energy + tiny))[..., tf.newaxis] * target
        ratio = (tf.reduce_sum(tf.square(projection), axis=-1) + tiny) / (
            tf.reduce_sum(tf.square(estimate - projection), axis=-1) + tiny)
    return _mean_per_example(-10.0 * tf.math.log(ratio) / tf.math.log(10.0))


def reconstruction_loss(
    estimate: tf.Tensor, target: tf.Tensor, global_batch_size: int | None = None, *,
    weights: ReconstructionConfig | None = None, waveforms: Waveforms | None = None,
) -> tf.Tensor:
    """weights.spectrum x MSE(estimate, target) + weights.waveform x waveform_error(*waveforms), each averaged over
    the batch. MSE: mean over each example's elements. Default weights: MSE alone (the paper's)."""
    weights = weights or ReconstructionConfig()
    error = tf.square(tf.cast(estimate, tf.float32) - tf.cast(target, tf.float32))
    loss = weights.spectrum * _average(_mean_per_example(error), global_batch_size)
    if weights.waveform > 0:
        if waveforms is None:
            raise ValueError("weights.waveform > 0 needs the (estimate, target) waveforms")
        loss += weights.waveform * _average(waveform_error(*waveforms, weights.waveform_loss), global_batch_size)
    return loss


def adversarial_loss(fake_logits: tf.Tensor, global_batch_size: int | None = None) -> tf.Tensor:
    """Generator term BCE(D_i(AE_i(X)), 1): small when the discriminator takes the estimate for real."""
    return _bce_loss(fake_logits, 1.0, global_batch_size)


def ae_loss(
    estimate: tf.Tensor,
    target: tf.Tensor,
    fake_logits: tf.Tensor | None,
    alpha: float,
    beta: float,
    global_batch_size: int | None = None,
    *,
    weights: ReconstructionConfig | None = None,
    waveforms: Waveforms | None = None,
) -> tf.Tensor:
    """Eq. 7: alpha * reconstruction(AE_i(X), X_i) + beta * BCE(D_i(AE_i(X)), 1); see `reconstruction_loss`.

    With `fake_logits=None` (baseline mode, no discriminator) this is the reconstruction loss alone, *unweighted*
    by alpha: the baseline of Pandey et al. trains with the reconstruction loss only.
    """
    mse = reconstruction_loss(estimate, target, global_batch_size, weights=weights, waveforms=waveforms)
    if fake_logits is None:
        return mse
    return alpha * mse + beta * adversarial_loss(fake_logits, global_batch_size)


def discriminator_loss(
    real_logits: tf.Tensor,
    fake_logits: tf.Tensor,
    cross_logits: Sequence[tf.Tensor] = (),
    cross_weights: Sequence[float] = (),
    global_batch_size: int | None = None,
) -> tf.Tensor:
    """Loss of discriminator D_i: eq. 8, plus eq. 9's cross terms when given.

    Eq. 8: BCE(D_i(AE_i(X)), 0) + BCE(D_i(X_i), 1). Eq. 9 adds sum_j cross_weights[j] * BCE(D_i(AE_j(X)), 0)
    over `cross_logits[j]` = D_i(AE_j(X)); the caller passes only j != i. Raises ValueError when the two
    sequences differ in length.
    """
    cross_logits, cross_weights = list(cross_logits), list(cross_weights)
    if len(cross_logits) != len(cross_weights):
        raise ValueError(f"{len(cross_logits)} cross logits but {len(cross_weights)} cross weights")
    loss = _bce_loss(fake_logits, 0.0, global_batch_size) + _bce_loss(real_logits, 1.0, global_batch_size)
    for logits, weight in zip(cross_logits, cross_weights):
        loss += weight * _bce_loss(logits, 0.0, global_batch_size)
    return loss
