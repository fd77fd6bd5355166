"""Owns CASSModel: per-component autoencoders and discriminators, and the train/test steps for eqs. 7-9."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from cass_tf import losses
from cass_tf.config import Config
from cass_tf.models.resnet9 import build_autoencoder, build_discriminator
from cass_tf.spectral import unscale

Batch = tuple[tf.Tensor, dict[str, tf.Tensor]]


class CASSModel(keras.Model):
    """K autoencoders AE_i (mixture -> component i) and, unless mode is "baseline", K discriminators D_i.

    `call(mixture)` returns {component: features}. `train_step` computes every loss in one forward pass, then
    applies the AE group's gradients with `ae_optimizer` and the discriminator group's with `d_optimizer`.
    Discriminators see AE outputs through `tf.stop_gradient`, so no D loss reaches an AE variable.
    Losses are reduced over the global batch (`global_batch_size`), so per-replica values sum to the global mean.
    """

    def __init__(self, config: Config, **kwargs: Any):
        super().__init__(name=kwargs.pop("name", "cass"), **kwargs)
        self.config = config
        self.names = config.components
        shape = (config.patch.frequency_bins, config.patch.frames)
        width, output = config.model.width, config.model.output
        self.autoencoders = {n: build_autoencoder(shape, width, output, f"ae_{n}") for n in self.names}
        adversarial = config.loss.mode != "baseline"
        self.discriminators = {n: build_discriminator(shape, width, f"d_{n}") for n in self.names} if adversarial else {}
        # Keras 3 does not make dict-held layers checkpoint dependencies (its TrackedDict is no tf Trackable), so
        # tf.train.Checkpoint would save none of these weights; plain attributes are tracked.
        for n in self.names:
            setattr(self, f"ae_{n}", self.autoencoders[n])
            if adversarial:
                setattr(self, f"d_{n}", self.discriminators[n])
        self.cross = config.loss.cross_matrix(len(self.names))
        self.ae_optimizer: keras.optimizers.Optimizer | None = None
        self.d_optimizer: keras.optimizers.Optimizer | None = None

    def call(self, mixture: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        return {n: self.autoencoders[n](mixture, training=training) for n in self.names}

    def set_optimizers(self, ae_optimizer: keras.optimizers.Optimizer, d_optimizer: keras.optimizers.Optimizer) -> None:
        """Attaches both optimizers and creates their slots, so a checkpoint can restore them before step 1."""
        self.ae_optimizer, self.d_optimizer = ae_optimizer, d_optimizer
        ae_optimizer.build(self.ae_variables)
        if self.discriminators:
            d_optimizer.build(self.d_variables)

    @property
    def ae_variables(self) -> list[tf.Variable]:
        return [v for n in self.names for v in self.autoencoders[n].trainable_variables]

    @property
    def d_variables(self) -> list[tf.Variable]:
        return [v for n in self.discriminators for v in self.discriminators[n].trainable_variables]

    def compute_losses(self, batch: Batch, global_batch_size: tf.Tensor | int | None = None,
                       training: bool = True) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor], dict[str, tf.Tensor]]:
        """Eqs. 7-9 for every component: ({ae_loss/i}, {d_loss/i}, {component: estimate})."""
        mixture, targets = batch
        alpha, beta = self.config.loss.alpha, self.config.loss.beta
        estimates = self(mixture, training=training)
        if not self.discriminators:
            ae = {n: losses.reconstruction_loss(estimates[n], targets[n], global_batch_size) for n in self.names}
            return ae, {}, estimates
        fixed = {n: tf.stop_gradient(estimates[n]) for n in self.names}
        ae, d = {}, {}
        for i, name in enumerate(self.names):
            disc = self.discriminators[name]
            ae[name] = losses.ae_loss(estimates[name], targets[name], disc(estimates[name], training=training),
                                      alpha, beta, global_batch_size)
            others = [(j, other) for j, other in enumerate(self.names) if j != i and self.cross[i][j] > 0]
            d[name] = losses.discriminator_loss(
                real_logits=disc(targets[name], training=training),
                fake_logits=disc(fixed[name], training=training),
                cross_logits=[disc(fixed[other], training=training) for _, other in others],
                cross_weights=[self.cross[i][j] for j, _ in others],
                global_batch_size=global_batch_size,
            )
        return ae, d, estimates

    def train_step(self, batch: Batch) -> dict[str, tf.Tensor]:
        """One alternating update: the AE group on eq. 7 (or MSE), then the discriminator group on eq. 8/9."""
        global_batch = tf.shape(batch[0])[0] * tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as ae_tape, tf.GradientTape() as d_tape:
            ae, d, _ = self.compute_losses(batch, global_batch, training=True)
            # scale_loss is the identity unless the optimizer is a LossScaleOptimizer (mixed precision); it must be
            # recorded by the tape, or the scaled loss has no gradient.
            ae_total = self.ae_optimizer.scale_loss(tf.add_n(list(ae.values())))
            d_total = self.d_optimizer.scale_loss(tf.add_n(list(d.values()))) if d else None
        self.ae_optimizer.apply(ae_tape.gradient(ae_total, self.ae_variables), self.ae_variables)
        if d:
            self.d_optimizer.apply(d_tape.gradient(d_total, self.d_variables), self.d_variables)
        return _named(ae, d)

    def test_step(self, batch: Batch) -> dict[str, tf.Tensor]:
        """The training losses without updates, plus each component's relative L2 error of linear magnitudes
        (`l2_magnitude/<component>`; the waveform-domain error is cass_tf.evaluate.waveform_l2)."""
        ae, d, estimates = self.compute_losses(batch, global_batch_size=None, training=False)
        results = _named(ae, d)
        for name in self.names:
            results[f"l2_magnitude/{name}"] = relative_l2(estimates[name], batch[1][name], self.config)
        return results


def relative_l2(estimate: tf.Tensor, target: tf.Tensor, config: Config) -> tf.Tensor:
    """Mean over the batch of ||m_hat - m|| / ||m|| on linear magnitudes (features unscaled)."""
    estimate, target = unscale(estimate, config.scaling), unscale(target, config.scaling)
    error = tf.norm(tf.reshape(estimate - target, [tf.shape(target)[0], -1]), axis=-1)
    norm = tf.norm(tf.reshape(target, [tf.shape(target)[0], -1]), axis=-1)
    return tf.reduce_mean(error / tf.maximum(norm, 1e-12))


def _named(ae: dict[str, tf.Tensor], d: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    results = {f"ae_loss/{n}": v for n, v in ae.items()}
    results.update({f"d_loss/{n}": v for n, v in d.items()})
    return results


def restore(model_dir: str) -> CASSModel:
    """The model trained in `model_dir` (its config.json and latest checkpoint), ready for inference.

    Reads only the run directory: the config is validated (pure rules), the training data is never touched.
    """
    from cass_tf.rundir import RunDir

    run_dir = RunDir(model_dir)
    config = run_dir.load_config()
    latest = run_dir.latest_checkpoint()
    if latest is None:
        raise FileNotFoundError(f"{model_dir}: no checkpoint in {run_dir.checkpoints}")
    model = CASSModel(config)
    try:
        status = tf.train.Checkpoint(model=model).restore(latest)
        status.assert_existing_objects_matched()  # every network weight must come from the checkpoint
    except AssertionError as e:
        raise ValueError(f"{latest}: checkpoint does not hold this model's weights ({str(e)[:300]})") from None
    except (tf.errors.OpError, IndexError, ValueError) as e:  # truncated, garbage or missing checkpoint files
        detail = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise ValueError(f"{latest}: checkpoint cannot be read ({detail})") from None
    status.expect_partial()  # optimizer slots and counters are not needed for inference
    return model
