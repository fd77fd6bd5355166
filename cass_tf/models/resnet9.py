"""Owns the ResNet-9 building blocks: functional Keras builders for one component's encoder, decoder, discriminator.

The ResNet-9 pattern (Page's DAWNBench network, the "simplified ResNet" the paper refers to):
prep conv -> [conv, 2x down, residual block] -> [conv, 2x down] -> [conv, 2x down, residual block],
every conv a 3x3 conv-BatchNorm-ReLU, widths w, 2w, 4w, 8w. The decoder mirrors it with 2x transposed-conv
upsamplings back to (F, T, 1). The discriminator is the encoder trunk + global average pool + one dense unit
that outputs a LOGIT (losses apply the sigmoid inside a numerically stable BCE).
Final layers compute in float32 so mixed precision never reaches the outputs.
Complex models (output "complex_mask") take the mixture's complex feature [F, T, 2] (cass_tf.spectral), show the
network what `model.input` says of it (`NetworkInput`), and multiply it by a bounded complex mask (`ComplexMask`).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from cass_tf.config import ScalingConfig
from cass_tf.spectral import scale

INPUT_CHANNELS = {"magnitude": 1, "magnitude_phase": 3, "complex": 2}
_TINY = 1e-12  # added under square roots of |z|^2: keeps phases and gradients finite at z = 0


def batch_norm(name: str) -> layers.BatchNormalization:
    """BatchNormalization; built under a tf.distribute strategy, it uses the global batch's statistics.

    Keras 3 BN moving statistics are MirroredVariables with aggregation NONE: unsynchronized, each replica would
    update its copy from its own shard, so replicas (and workers) would silently diverge and the chief's checkpoint
    would hold the chief's statistics only. Synchronized batch statistics keep every replica identical and the
    math equal to single-device training on the global batch. Off without a strategy (it slows XLA down), where the
    layer is `FusedBatchNorm`."""
    if tf.distribute.has_strategy():
        return layers.BatchNormalization(synchronized=True, name=name)
    return FusedBatchNorm(name=name)


class FusedBatchNorm(layers.BatchNormalization):
    """Keras' BatchNormalization (the same variables, checkpoints and results) computed by TensorFlow's fused kernel.

    Keras 3 normalises with a dozen elementwise ops in float32, casting bfloat16 activations up and back; under
    mixed_bfloat16 that made BatchNorm twice as slow as in float32 and a fifth of the train step's op time
    (docs/benchmarks.md). FusedBatchNormV3 takes the bfloat16 activations with float32 statistics in one op
    (oneDNN's kernel on CPU) and one gradient op. It returns the Bessel-corrected batch variance, which is turned
    back into Keras' biased one for the moving average. Channels-last 4-D inputs only (what ResNet-9 feeds it)."""

    def call(self, inputs: tf.Tensor, training: bool | None = None, mask: tf.Tensor | None = None) -> tf.Tensor:
        if mask is not None or self.renorm or len(inputs.shape) != 4 or self.axis not in (-1, 3, [3], [-1]):
            return super().call(inputs, training=training, mask=mask)
        shape = tf.shape(inputs)
        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones([channels])
        beta = self.beta if self.center else tf.zeros([channels])
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, tf.cast(gamma, tf.float32), tf.cast(beta, tf.float32), epsilon=self.epsilon, is_training=True)
            count = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
            biased = variance * (count - 1.0) / count
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + biased * (1.0 - self.momentum))
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, tf.cast(gamma, tf.float32), tf.cast(beta, tf.float32), mean=self.moving_mean,
                variance=self.moving_variance, epsilon=self.epsilon, is_training=False)
        return tf.cast(outputs, self.compute_dtype)


def conv_block(x: keras.KerasTensor, width: int, name: str, norm: str = "batch") -> keras.KerasTensor:
    """3x3 conv, normalisation `norm` ("batch", "layer": per position over channels, "spectral": spectral
    normalisation of the conv's kernel, "none"), ReLU."""
    conv = layers.Conv2D(width, 3, padding="same", use_bias=norm in ("spectral", "none"), name=f"{name}_conv")
    if norm == "spectral":
        x = layers.SpectralNormalization(conv, name=f"{name}_sn")(x)
    else:
        x = conv(x)
    if norm == "batch":
        x = batch_norm(f"{name}_bn")(x)
    elif norm == "layer":
        x = layers.LayerNormalization(name=f"{name}_ln")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def up_block(x: keras.KerasTensor, width: int, name: str) -> keras.KerasTensor:
    x = layers.Conv2DTranspose(width, 3, strides=2, padding="same", use_bias=False, name=f"{name}_deconv")(x)
    x = batch_norm(f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def residual_block(x: keras.KerasTensor, width: int, name: str, norm: str = "batch") -> keras.KerasTensor:
    y = conv_block(x, width, f"{name}_a", norm)
    y = conv_block(y, width, f"{name}_b", norm)
    return layers.Add(name=f"{name}_add")([x, y])


def trunk(x: keras.KerasTensor, width: int, name: str, norm: str = "batch") -> keras.KerasTensor:
    """Input [F, T, C] -> features [F/8, T/8, 8*width]; `norm` as in `conv_block`."""
    x = conv_block(x, width, f"{name}_prep", norm)
    x = conv_block(x, 2 * width, f"{name}_stage1", norm)
    x = layers.MaxPooling2D(2, name=f"{name}_stage1_pool")(x)
    x = residual_block(x, 2 * width, f"{name}_stage1_res", norm)
    x = conv_block(x, 4 * width, f"{name}_stage2", norm)
    x = layers.MaxPooling2D(2, name=f"{name}_stage2_pool")(x)
    x = conv_block(x, 8 * width, f"{name}_stage3", norm)
    x = layers.MaxPooling2D(2, name=f"{name}_stage3_pool")(x)
    return residual_block(x, 8 * width, f"{name}_stage3_res", norm)


class NetworkInput(layers.Layer):
    """Complex feature [..., 2] (real, imaginary; linear) -> what the network sees (`model.input`), float32:
    "magnitude": scale(|X|) [..., 1]; "magnitude_phase": scale(|X|), cos, sin of the phase [..., 3];
    "complex": X * scale(|X|) / |X| [..., 2] (the real and imaginary parts with a compressed modulus)."""

    def __init__(self, kind: str, scaling: ScalingConfig, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.kind, self.scaling = kind, scaling

    def call(self, features: tf.Tensor) -> tf.Tensor:
        modulus = tf.sqrt(tf.reduce_sum(tf.square(features), axis=-1, keepdims=True) + _TINY)
        scaled = scale(modulus, self.scaling)
        if self.kind == "magnitude":
            return scaled
        if self.kind == "magnitude_phase":
            return tf.concat([scaled, features / modulus], axis=-1)
        return features * (scaled / modulus)


class ComplexMask(layers.Layer):
    """(z [..., 2], mixture [..., 2]) -> M * mixture, complex, with M = tanh(|z|) z / |z| (|M| < 1, as DCCRN)."""

    def __init__(self, **kwargs):
        super().__init__(dtype="float32", **kwargs)

    def call(self, inputs: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        z, mixture = (tf.cast(t, tf.float32) for t in inputs)
        modulus = tf.sqrt(tf.reduce_sum(tf.square(z), axis=-1, keepdims=True) + _TINY)
        mask = z * (tf.tanh(modulus) / modulus)
        real = mask[..., 0] * mixture[..., 0] - mask[..., 1] * mixture[..., 1]
        imag = mask[..., 0] * mixture[..., 1] + mask[..., 1] * mixture[..., 0]
        return tf.stack([real, imag], axis=-1)


class BorrowedPhase(layers.Layer):
    """(magnitude [..., 1], mixture [..., 2]) -> magnitude * mixture / |mixture|, complex; where the mixture is zero
    its phase is taken as 0 (the magnitude on the real axis)."""

    def __init__(self, **kwargs):
        super().__init__(dtype="float32", **kwargs)

    def call(self, inputs: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        magnitude, mixture = (tf.cast(t, tf.float32) for t in inputs)
        modulus = tf.sqrt(tf.reduce_sum(tf.square(mixture), axis=-1, keepdims=True))
        unit = tf.where(modulus > 0, mixture / tf.maximum(modulus, _TINY), tf.constant([1.0, 0.0]))
        return magnitude * unit


class FoldLeads(layers.Layer):
    """[B, leads, ...] -> [B * leads, ...]: every lead of every example becomes one example of the shared path."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.reshape(x, [-1, *x.shape[2:]])

    def compute_output_shape(self, shape: tuple) -> tuple:
        return (None, *shape[2:])


class UnfoldLeads(layers.Layer):
    """([B * leads, ...], like [B, leads, ...]) -> [B, leads, ...]: the inverse of `FoldLeads` for `like`'s leads."""

    def call(self, inputs: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        x, like = inputs
        return tf.reshape(x, tf.concat([tf.shape(like)[:2], x.shape[1:]], axis=0))

    def compute_output_shape(self, shapes: tuple) -> tuple:
        return (shapes[1][0], shapes[1][1], *shapes[0][1:])


class LeadContext(layers.Layer):
    """[B, leads, ..., K] -> [B, leads, ..., 2K]: each lead's features beside the mean over the example's leads.

    The mean is what every lead sees of the others: it is the same for any order of the leads and defined for any
    number of them, so a network applied to each lead after this layer is lead-permutation-equivariant (Zaheer et
    al., "Deep Sets", NeurIPS 2017, the equivariant layer)."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        mean = tf.reduce_mean(x, axis=1, keepdims=True)
        return tf.concat([x, tf.broadcast_to(mean, tf.shape(x))], axis=-1)

    def compute_output_shape(self, shape: tuple) -> tuple:
        return (*shape[:-1], 2 * shape[-1])


def build_encoder(shape: tuple[int, int], width: int, name: str = "encoder", channels: int = 1) -> keras.Model:
    """Mixture features [F, T, channels] -> code [F/8, T/8, 8*width]."""
    inputs = keras.Input((*shape, channels), name="mixture")
    return keras.Model(inputs, trunk(inputs, width, name), name=name)


def build_decoder(shape: tuple[int, int], width: int, output: str, name: str = "decoder") -> keras.Model:
    """Code [F/8, T/8, 8*width] -> non-negative [F, T, 1]: a magnitude (softplus) or a [0, 1] mask (sigmoid); for
    "complex_mask" an unbounded [F, T, 2] (the real and imaginary parts of z, bounded by `ComplexMask`).

    Softplus, not ReLU: a ReLU head whose pre-activations all turn negative outputs zeros with zero gradient for
    good (seen on the fetal ECG); softplus always has a gradient and its floor is negligible on linear magnitudes."""
    inputs = keras.Input((shape[0] // 8, shape[1] // 8, 8 * width), name="code")
    x = residual_block(inputs, 8 * width, f"{name}_stage3_res")
    x = up_block(x, 4 * width, f"{name}_stage3_up")
    x = up_block(x, 2 * width, f"{name}_stage2_up")
    x = residual_block(x, 2 * width, f"{name}_stage1_res")
    x = up_block(x, width, f"{name}_stage1_up")
    activation = {"magnitude": "softplus", "mask": "sigmoid", "complex_mask": None}[output]
    channels = 2 if output == "complex_mask" else 1
    outputs = layers.Conv2D(channels, 3, padding="same", activation=activation, dtype="float32", name=f"{name}_out")(x)
    return keras.Model(inputs, outputs, name=name)


def build_autoencoder(shape: tuple[int, int], width: int, output: str, name: str, network_input: str = "magnitude",
                      scaling: ScalingConfig | None = None, direct: bool = False, borrowed_phase: bool = False
                      ) -> keras.Model:
    """AE_i = Decoder_i o Encoder_i: mixture features [F, T, C] -> component features [F, T, C] (C: 1, or 2 complex).

    With output "mask" the decoder's [0, 1] mask multiplies the mixture features (masking in the scaled domain);
    with "complex_mask" the encoder sees `NetworkInput(network_input, scaling)` of the complex mixture feature and
    the decoder's bounded complex mask multiplies it, or (`direct`) the decoder's output is the component's complex
    feature itself (linear, float32), which may hold what the mixture's STFT does not, or (`borrowed_phase`) the
    decoder's softplus magnitude takes the mixture's phase (`BorrowedPhase`)."""
    if output == "complex_mask":
        inputs = keras.Input((*shape, 2), name="mixture")
        seen = NetworkInput(network_input, scaling or ScalingConfig(), name=f"{name}_input")(inputs)
        encoder = build_encoder(shape, width, f"{name}_encoder", INPUT_CHANNELS[network_input])
        z = build_decoder(shape, width, "magnitude" if borrowed_phase else output, f"{name}_decoder")(encoder(seen))
        if borrowed_phase:
            return keras.Model(inputs, BorrowedPhase(name=f"{name}_phased")((z, inputs)), name=name)
        return keras.Model(inputs, z if direct else ComplexMask(name=f"{name}_masked")((z, inputs)), name=name)
    inputs = keras.Input((*shape, 1), name="mixture")
    encoder = build_encoder(shape, width, f"{name}_encoder")
    decoder = build_decoder(shape, width, output, f"{name}_decoder")
    outputs = decoder(encoder(inputs))
    if output == "mask":
        outputs = layers.Multiply(dtype="float32", name=f"{name}_masked")([outputs, inputs])
    return keras.Model(inputs, outputs, name=name)


def build_multilead_autoencoder(shape: tuple[int, int], width: int, name: str, network_input: str = "complex",
                                scaling: ScalingConfig | None = None) -> keras.Model:
    """AE_i for all leads of a recording: complex features [B, leads, F, T, 2] -> [B, leads, F, T, 2], any number of
    leads, and lead-permutation-equivariant: permuting the input leads permutes the outputs the same way.

    Each lead goes through `build_autoencoder`'s complex path with shared weights (folded into the batch), seeing
    `NetworkInput` of its own STFT beside the mean of all leads' (`LeadContext`); at the bottleneck each lead's code
    gets a residual 1x1 conv-BatchNorm-ReLU of [its code, the leads' mean code], so the decoder of every lead knows the
    others (where the maternal and fetal hearts project). Its bounded complex mask multiplies that lead's STFT."""
    inputs = keras.Input((None, *shape, 2), name="mixture")
    seen = NetworkInput(network_input, scaling or ScalingConfig(), name=f"{name}_input")(inputs)
    channels = 2 * INPUT_CHANNELS[network_input]
    encoder = build_encoder(shape, width, f"{name}_encoder", channels)
    code = encoder(FoldLeads(name=f"{name}_fold")(LeadContext(name=f"{name}_input_context")(seen)))
    pooled = LeadContext(name=f"{name}_code_context")(UnfoldLeads(name=f"{name}_unfold_code")((code, inputs)))
    x = layers.Conv2D(8 * width, 1, use_bias=False, name=f"{name}_context_conv")(FoldLeads(name=f"{name}_fold_code")(pooled))
    x = layers.ReLU(name=f"{name}_context_relu")(batch_norm(f"{name}_context_bn")(x))
    code = layers.Add(name=f"{name}_context_add")([code, x])
    z = build_decoder(shape, width, "complex_mask", f"{name}_decoder")(code)
    z = UnfoldLeads(name=f"{name}_unfold")((z, inputs))
    return keras.Model(inputs, ComplexMask(name=f"{name}_masked")((z, inputs)), name=name)


def copy_autoencoder(source: keras.Model, target: keras.Model) -> None:
    """Sets `target`'s weights from `source`, a one-lead complex autoencoder (`build_autoencoder`) of the same shape and
    width; `target` is another one, or a multi-lead one (`build_multilead_autoencoder`), which then computes exactly
    what `source` computes on each lead alone: the first convolution's inputs for the leads' mean get zero weights and
    the bottleneck's lead context adds zero (its BatchNorm gamma is 0). Training then starts from the one-lead model
    and learns what the other leads add. ValueError when the networks do not fit."""
    for part in ("encoder", "decoder"):
        old, new = source.get_layer(f"{source.name}_{part}").weights, target.get_layer(f"{target.name}_{part}").weights
        if len(old) != len(new):
            raise ValueError(f"the {part}s differ ({len(old)} and {len(new)} weights): not the same architecture")
        for o, n in zip(old, new):
            value = np.asarray(o.numpy())
            if value.ndim == 4 and tuple(n.shape) == (*value.shape[:2], 2 * value.shape[2], value.shape[3]):  # [own, mean]
                value = np.concatenate([value, np.zeros_like(value)], axis=2)
            if tuple(n.shape) != value.shape:
                raise ValueError(f"{n.path}: shape {tuple(n.shape)} does not fit {o.path} {value.shape} (same width, "
                                 "patch and network input needed)")
            n.assign(value)
    if any(layer.name == f"{target.name}_context_bn" for layer in target.layers):
        gamma = target.get_layer(f"{target.name}_context_bn").gamma
        gamma.assign(tf.zeros_like(gamma))


def build_discriminator(shape: tuple[int, int], width: int, name: str, channels: int = 1,
                        norm: str = "batch") -> keras.Model:
    """Component features [F, T, channels] -> one logit per example [1] (sigmoid of it: probability of a real X_i).

    `norm` (config model.discriminator_norm, see `conv_block`): with anything but "batch" each example's logit
    depends on that example alone, so real, fake and cross batches cannot be told apart by their statistics."""
    inputs = keras.Input((*shape, channels), name="component")
    x = trunk(inputs, width, name, norm)
    x = layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
    logits = layers.Dense(1, dtype="float32", name=f"{name}_logit")(x)
    return keras.Model(inputs, logits, name=name)
