"""Owns CASSModel: per-component autoencoders and discriminators, and the train/test steps for eqs. 7-9."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from cass_tf import losses
from cass_tf.config import Config
from cass_tf.models.resnet9 import NetworkInput, build_autoencoder, build_discriminator, build_multilead_autoencoder
from cass_tf.rundir import RunDir
from cass_tf.spectral import Spectral, unscale

Batch = tuple[tf.Tensor, dict[str, tf.Tensor]]
NON_FINITE_MIXTURE = "non-finite values in the training batch's mixture"


class CASSModel(keras.Model):
    """K autoencoders AE_i (mixture -> component i) and, unless mode is "baseline", K discriminators D_i.

    `call(mixture)` returns {component: features} (`apply_autoencoders`). `train_step` applies the AE group's
    gradients with `ae_optimizer` and the discriminator group's with `d_optimizer`, simultaneously (one forward pass)
    or alternately (`train.update`). Each D_i sees its real, fake and cross inputs in one call (`_discriminate`);
    each group is differentiated on its own losses only, so no D loss reaches an AE variable.
    Losses are reduced over the global batch (`global_batch_size`), so per-replica values sum to the global mean.
    With `model.multilead` features are [B, leads, F, T, 2]: the autoencoders take all leads together
    (`build_multilead_autoencoder`), each D_i judges every lead on its own with one set of weights, and each
    example's loss is the mean over its leads of the one-lead loss (cass_tf.losses).
    """

    def __init__(self, config: Config, **kwargs: Any):
        super().__init__(name=kwargs.pop("name", "cass"), **kwargs)
        self.config = config
        self.names = config.components
        shape = (config.patch.frequency_bins, config.patch.frames)
        width, output = config.model.width, config.model.output
        self.spectral = Spectral.from_config(config)
        self.multilead = config.model.multilead
        if self.multilead:
            self.autoencoders = {n: build_multilead_autoencoder(shape, width, f"ae_{n}", config.model.input,
                                                                config.scaling) for n in self.names}
        else:
            self.autoencoders = {n: build_autoencoder(shape, width, output, f"ae_{n}", config.model.input,
                                                      config.scaling, n in config.model.direct,
                                                      n in config.model.borrowed_phase) for n in self.names}
        adversarial = config.loss.mode != "baseline"
        # complex estimates are judged by their scaled magnitude (the paper's view) unless loss.discriminator_input
        # is "complex"; magnitude estimates are judged as they are
        judged_channels = 2 if config.loss.discriminator_input == "complex" else 1
        self._judged = (NetworkInput("magnitude", config.scaling, name="judged_magnitude")
                        if config.model.complex and judged_channels == 1 else None)
        self.discriminators = ({n: build_discriminator(shape, width, f"d_{n}", judged_channels,
                                                       config.model.discriminator_norm) for n in self.names}
                               if adversarial else {})
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
        return apply_autoencoders(self.autoencoders, mixture, self.config.model.consistency, training)

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
        alpha, beta = self.config.loss.alpha, self._adversarial_weight(training)
        weights = self.config.loss.reconstruction
        estimates = self(mixture, training=training)
        waveforms = {n: self._waveforms(estimates[n], targets[n]) for n in self.names} if weights.waveform > 0 else {}
        if not self.discriminators:
            ae = {n: losses.reconstruction_loss(estimates[n], targets[n], global_batch_size, weights=weights,
                                                waveforms=waveforms.get(n)) for n in self.names}
            return ae, {}, estimates
        judged = {n: self._judge_view(estimates[n]) for n in self.names}
        ae, d = {}, {}
        for i, name in enumerate(self.names):
            others = [(j, other) for j, other in enumerate(self.names) if j != i and self.cross[i][j] > 0]
            real, fake, cross = self._discriminate(name, self._judge_view(targets[name]), judged[name],
                                                   [judged[other] for _, other in others], training)
            ae[name] = losses.ae_loss(estimates[name], targets[name], fake, alpha, beta, global_batch_size,
                                      weights=weights, waveforms=waveforms.get(name))
            d[name] = losses.discriminator_loss(
                real_logits=real,
                fake_logits=fake,
                cross_logits=cross,
                cross_weights=[self.cross[i][j] for j, _ in others],
                global_batch_size=global_batch_size,
            )
        return ae, d, estimates

    def _discriminate(self, name: str, real: tf.Tensor, fake: tf.Tensor, cross: list[tf.Tensor],
                      training: bool) -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
        """D_name's logits of (real X_i, AE_i(X), [AE_j(X) for the cross terms]).

        model.discriminator_batch "concatenated": one call on the concatenated batch [real; fake; cross...], so
        BatchNorm normalises all of them with the same statistics and cannot tell them apart by batch; "separate":
        one call per part, each normalised with its own batch statistics. The fake logits serve eq. 7 (carrying the
        gradient to AE_i) and eq. 8 alike; cross parts are held fixed (only eq. 9 sees them)."""
        cross = [tf.stop_gradient(c) for c in cross]
        if self.config.model.discriminator_batch == "separate":
            return (self._judge(name, real, training), self._judge(name, fake, training),
                    [self._judge(name, c, training) for c in cross])
        logits = self._judge(name, tf.concat([real, fake, *cross], axis=0), training)
        real_logits, fake_logits, *cross_logits = tf.split(logits, 2 + len(cross), axis=0)
        return real_logits, fake_logits, cross_logits

    def _judge(self, name: str, features: tf.Tensor, training: bool) -> tf.Tensor:
        """D_name's logits: [B, 1] of features [B, F, T, C]; multi-lead [B, leads, F, T, C] -> [B, leads], one logit
        per lead (the leads folded into D's batch, so one set of weights judges every lead)."""
        disc = self.discriminators[name]
        if not self.multilead:
            return disc(features, training=training)
        folded = tf.reshape(features, [-1, *features.shape[2:]])
        return tf.reshape(disc(folded, training=training), tf.shape(features)[:2])

    def _adversarial_weight(self, training: bool) -> float | tf.Tensor:
        """Eq. 7's beta; 0 while training during the first `train.warmup_steps` AE updates."""
        beta, warmup = self.config.loss.beta, self.config.train.warmup_steps
        if not training or not warmup or self.ae_optimizer is None:
            return beta
        return beta * tf.cast(self.ae_optimizer.iterations >= warmup, tf.float32)

    def _judge_view(self, features: tf.Tensor) -> tf.Tensor:
        """What a discriminator sees of a component's features (see __init__)."""
        return features if self._judged is None else self._judged(features)

    def _waveforms(self, estimate: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(estimate, target) waveforms [B, (leads,) samples] of complex features after the in-graph inverse STFT
        (crop length)."""
        samples = self.config.crop_length
        return self.spectral.waveform(estimate, None, samples), self.spectral.waveform(target, None, samples)

    def train_step(self, batch: Batch) -> dict[str, tf.Tensor]:
        """One training step, by `train.update`: "simultaneous" (the default): one forward pass, then both updates
        from it, the AE group on eq. 7 (or MSE) and the discriminator group on eqs. 8/9; "alternating" (the
        paper's "trained alternately", the Keras GAN guide's order): the discriminators step first, then the
        AEs step on a fresh forward pass judged by the updated discriminators (twice the work).

        A non-finite mixture stops the step with an InvalidArgumentError naming NON_FINITE_MIXTURE: the fused
        BatchNorm+ReLU and conv+ReLU kernels map NaN to 0, so a NaN input would not reach the losses."""
        batch = (tf.debugging.assert_all_finite(batch[0], NON_FINITE_MIXTURE), batch[1])
        global_batch = tf.shape(batch[0])[0] * tf.distribute.get_strategy().num_replicas_in_sync
        if self.discriminators and self.config.train.update == "alternating":
            _, d = self._update(batch, global_batch, update_ae=False)
            ae, _ = self._update(batch, global_batch, update_d=False)
            return _named(ae, d)
        return _named(*self._update(batch, global_batch))

    def _update(self, batch: Batch, global_batch: tf.Tensor, update_ae: bool = True,
                update_d: bool = True) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
        """One forward pass; applies the AE and/or discriminator group's gradients; returns (ae, d) losses."""
        with tf.GradientTape() as ae_tape, tf.GradientTape() as d_tape:
            ae, d, _ = self.compute_losses(batch, global_batch, training=True)
            # scale_loss is the identity unless the optimizer is a LossScaleOptimizer (mixed precision); it must be
            # recorded by the tape, or the scaled loss has no gradient.
            ae_total = self.ae_optimizer.scale_loss(tf.add_n(list(ae.values())))
            d_total = self.d_optimizer.scale_loss(tf.add_n(list(d.values()))) if d else None
        if update_ae:
            self.ae_optimizer.apply(ae_tape.gradient(ae_total, self.ae_variables), self.ae_variables)
        if update_d and d:
            self.d_optimizer.apply(d_tape.gradient(d_total, self.d_variables), self.d_variables)
        return ae, d

    def test_step(self, batch: Batch) -> dict[str, tf.Tensor]:
        """The training losses without updates, plus each component's relative L2 error of linear magnitudes
        (`l2_magnitude/<component>`, over all leads of a multi-lead crop together; the waveform-domain error is
        cass_tf.scoring.waveform_l2)."""
        ae, d, estimates = self.compute_losses(batch, global_batch_size=None, training=False)
        results = _named(ae, d)
        for name in self.names:
            results[f"l2_magnitude/{name}"] = relative_l2(estimates[name], batch[1][name], self.config)
        return results


def apply_autoencoders(autoencoders: dict[str, keras.Model], mixture: tf.Tensor, consistency: str = "none",
                       training: bool = False) -> dict[str, tf.Tensor]:
    """{component: AE_i(mixture)}, with consistency "project" moved to sum to the mixture (complex features):
    each estimate gets an equal share of mixture - sum(estimates) (Wisdom et al., ICASSP 2019, equal weights)."""
    estimates = {n: ae(mixture, training=training) for n, ae in autoencoders.items()}
    if consistency != "project":
        return estimates
    share = (tf.cast(mixture, tf.float32) - tf.add_n([tf.cast(e, tf.float32) for e in estimates.values()])) / len(estimates)
    return {n: tf.cast(e, tf.float32) + share for n, e in estimates.items()}


def relative_l2(estimate: tf.Tensor, target: tf.Tensor, config: Config) -> tf.Tensor:
    """Mean over the batch of ||m_hat - m|| / ||m||: linear magnitudes (features unscaled), or complex spectra."""
    if not config.model.complex:
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
