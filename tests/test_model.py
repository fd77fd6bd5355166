"""Tests for cass_tf.models (ResNet-9 networks, CASSModel): shapes, the alternating update, gradient flow,
eqs. 7-9 against a NumPy reference computed from the model's own network outputs, learning, restore.

Everything is tiny (PPG, width 2, 16x16 patches, batch 4) so the file runs in about a minute on two CPU cores.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from cass_tf.config import load_config
from cass_tf.data.pipeline import make_datasets
from cass_tf.models.cass import CASSModel, restore
from cass_tf.models.resnet9 import build_autoencoder, build_decoder, build_discriminator, build_encoder

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "paper", "ppg.json")
TINY = [
    "data.ppg.train_recordings=2", "data.ppg.test_recordings=1", "data.ppg.seconds=30", "data.cache_dir=null",
    "model.width=2", "patch.frequency_bins=16", "patch.frames=16",
    "stft.n_fft=32", "stft.window=32", "stft.hop=16", "train.batch_size=4",
]
F = T = 16
W = 2
B = 4


def tiny(*overrides):
    return load_config(CONFIG, overrides=TINY + list(overrides))


@pytest.fixture(scope="module")
def data():
    return make_datasets(tiny())


@pytest.fixture(scope="module")
def batch(data):
    """One fixed training batch: (mixture [4,16,16,1], {heart, respiratory})."""
    return next(iter(data.train))


def build(config, ae_lr=1e-3, d_lr=1e-3, seed=0):
    keras.utils.set_random_seed(seed)
    model = CASSModel(config)
    model.set_optimizers(keras.optimizers.Adam(ae_lr), keras.optimizers.Adam(d_lr))
    return model


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def bce(logits, label):
    """NumPy BCE(sigmoid(logits), label), mean over the batch."""
    s = sigmoid(np.reshape(logits, [-1]))
    return float(np.mean(-(label * np.log(s) + (1 - label) * np.log(1 - s))))


def mse(estimate, target):
    error = (np.asarray(estimate, np.float64) - np.asarray(target, np.float64)) ** 2
    return float(np.mean(error.reshape(len(error), -1).mean(axis=1)))


def snapshot(variables):
    return [v.numpy().copy() for v in variables]


def changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


# ---- network shapes ----

def test_encoder_decoder_discriminator_shapes():
    keras.utils.set_random_seed(1)
    x = tf.random.normal([3, F, T, 1])
    code = build_encoder((F, T), W, "enc")(x)
    assert code.shape == (3, F // 8, T // 8, 8 * W)
    # A decoder fed strongly negative codes still outputs a non-negative magnitude (softplus).
    out = build_decoder((F, T), W, "magnitude", "dec")(-10.0 * tf.abs(tf.random.normal([3, F // 8, T // 8, 8 * W])))
    assert out.shape == (3, F, T, 1)
    assert float(tf.reduce_min(out)) >= 0.0
    logits = build_discriminator((F, T), W, "disc")(x)
    assert logits.shape == (3, 1) and logits.dtype == tf.float32


def test_mask_output_is_between_zero_and_the_mixture():
    keras.utils.set_random_seed(2)
    mixture = tf.abs(tf.random.normal([3, F, T, 1])) * 3.0
    estimate = build_autoencoder((F, T), W, "mask", "ae_mask")(mixture).numpy()
    assert estimate.shape == (3, F, T, 1)
    assert estimate.min() >= 0.0
    assert np.all(estimate <= mixture.numpy() * (1 + 1e-6))
    assert not np.allclose(estimate, mixture.numpy())  # a mask in (0, 1), not the identity


def test_model_call_returns_one_estimate_per_component(batch):
    model = build(tiny())
    out = model(batch[0])
    assert sorted(out) == ["heart", "respiratory"]
    for value in out.values():
        assert value.shape == (B, F, T, 1)
    assert sorted(model.autoencoders) == sorted(model.discriminators) == ["heart", "respiratory"]


# ---- the alternating update (trainable variables only: BatchNorm moving statistics, which are not
# trainable, legitimately change in every training-mode forward pass, whatever the learning rates) ----

@pytest.mark.slow  # trains or runs a real model for tens of seconds
@pytest.mark.parametrize("ae_lr, d_lr", [(0.0, 0.0), (1e-3, 0.0), (0.0, 1e-3)])
def test_learning_rate_zero_freezes_exactly_its_group(batch, ae_lr, d_lr):
    model = build(tiny(), ae_lr=ae_lr, d_lr=d_lr)
    ae_vars, d_vars = model.ae_variables, model.d_variables
    assert ae_vars and d_vars
    assert len(ae_vars) + len(d_vars) == len(model.trainable_variables)
    ae_before, d_before = snapshot(ae_vars), snapshot(d_vars)
    results = model.train_step(batch)
    assert sorted(results) == ["ae_loss/heart", "ae_loss/respiratory", "d_loss/heart", "d_loss/respiratory"]
    ae_changed, d_changed = changed(ae_before, ae_vars), changed(d_before, d_vars)
    # lr 0: Adam's step is exactly 0, no variable of the group may move; lr > 0: every variable moves
    # (each gets a non-zero gradient on this batch).
    assert all(ae_changed) if ae_lr else not any(ae_changed)
    assert all(d_changed) if d_lr else not any(d_changed)


def test_each_loss_reaches_its_own_networks(batch):
    """AE_i's loss trains AE_i only; D_i's loss trains D_i. (D losses do depend on the AE outputs they judge,
    through the one concatenated call; train_step differentiates each group on its own losses only, which
    test_learning_rate_zero_freezes_exactly_its_group checks.)"""
    model = build(tiny())
    with tf.GradientTape(persistent=True) as tape:
        ae, d, _ = model.compute_losses(batch, B, training=True)
    for name in model.names:
        own = model.autoencoders[name].trainable_variables
        grads = tape.gradient(ae[name], own)
        assert all(g is not None for g in grads)
        assert sum(float(tf.reduce_sum(tf.abs(g))) for g in grads) > 0
        # AE_i's loss does not depend on the other autoencoders either.
        for other in model.names:
            if other != name:
                assert all(g is None for g in tape.gradient(ae[name], model.autoencoders[other].trainable_variables))
        # ...and each D loss does train its own discriminator.
        assert all(g is not None for g in tape.gradient(d[name], model.discriminators[name].trainable_variables))
    del tape


# ---- the losses, from the model's own outputs ----

def test_baseline_trains_on_unweighted_mse_only(batch):
    model = build(tiny("loss.mode=baseline", "loss.alpha=0.5"))
    assert model.discriminators == {}
    assert model.d_variables == []
    ae, d, estimates = model.compute_losses(batch, training=True)
    assert d == {}
    mixture, targets = batch
    expected = {n: mse(estimates[n].numpy(), targets[n].numpy()) for n in model.names}
    for n in model.names:
        np.testing.assert_allclose(float(ae[n]), expected[n], rtol=1e-5)
    # train_step reports the loss of the forward pass before its update: the same weights, the same batch
    # (training-mode BatchNorm uses batch statistics, so the extra forward pass above does not change it).
    results = model.train_step(batch)
    assert sorted(results) == ["ae_loss/heart", "ae_loss/respiratory"]
    for n in model.names:
        np.testing.assert_allclose(float(results[f"ae_loss/{n}"]), expected[n], rtol=1e-5)


@pytest.mark.parametrize("norm,calls", [("batch", "separate"), ("layer", "concatenated"), ("layer", "separate"),
                                        ("none", "concatenated")])
def test_cross_losses_match_eqs_7_to_9(batch, norm, calls):
    """cross [[0, 0], [0.5, 0]]: only D_respiratory learns from AE_heart's output (eq. 9); D_heart is plain eq. 8.

    The reference calls each discriminator once per part; one call on the concatenated batch must give the same
    losses whenever the discriminator has no batch-dependent layer (layer norm, none)."""
    config = tiny("loss.mode=cass_cross", "loss.cross=[[0, 0], [0.5, 0]]", "loss.alpha=0.7", "loss.beta=0.3",
                  f"model.discriminator_norm={norm}", f"model.discriminator_batch={calls}")
    model = build(config)
    mixture, targets = batch
    ae, d, est = model.compute_losses(batch, training=True)
    # Discriminators in the same training mode as compute_losses: BatchNorm normalises each call by its own batch
    # statistics, so calling them on the same inputs gives the same logits (with separate calls).
    D = {n: (lambda x, n=n: model.discriminators[n](x, training=True).numpy()) for n in model.names}
    heart, resp = est["heart"], est["respiratory"]

    d_heart = bce(D["heart"](heart), 0) + bce(D["heart"](targets["heart"]), 1)  # eq. 8
    d_resp = (bce(D["respiratory"](resp), 0) + bce(D["respiratory"](targets["respiratory"]), 1)
              + 0.5 * bce(D["respiratory"](heart), 0))  # eq. 9
    np.testing.assert_allclose(float(d["heart"]), d_heart, rtol=1e-5)
    np.testing.assert_allclose(float(d["respiratory"]), d_resp, rtol=1e-5)
    # The cross term is really there (not zero by accident).
    assert 0.5 * bce(D["respiratory"](heart), 0) > 1e-3

    for n in model.names:  # eq. 7
        expected = 0.7 * mse(est[n].numpy(), targets[n].numpy()) + 0.3 * bce(D[n](est[n]), 1)
        np.testing.assert_allclose(float(ae[n]), expected, rtol=1e-5)


def test_concatenated_batch_norm_differs_from_separate_calls(batch):
    """With BatchNorm, one call on [real; fake] normalises both with shared statistics: the losses must differ
    from separate calls (else the concatenation would change nothing and the test above would prove nothing)."""
    losses = {}
    for calls in ("separate", "concatenated"):
        model = build(tiny("loss.mode=cass", f"model.discriminator_batch={calls}"))
        losses[calls] = model.compute_losses(batch, training=True)[1]["heart"].numpy()
    assert abs(float(losses["separate"]) - float(losses["concatenated"])) > 1e-4


def test_global_batch_size_divides_the_summed_losses(batch):
    """Under tf.distribute each replica divides by the global batch: a replica of a 2-replica run gets half."""
    model = build(tiny())
    ae_local, d_local, _ = model.compute_losses(batch, None, training=True)
    ae_global, d_global, _ = model.compute_losses(batch, 2 * B, training=True)
    for n in model.names:
        np.testing.assert_allclose(float(ae_global[n]), float(ae_local[n]) / 2, rtol=1e-5)
        np.testing.assert_allclose(float(d_global[n]), float(d_local[n]) / 2, rtol=1e-5)


# ---- learning ----

def mean_test_l2_magnitude(test_step, model, data):
    values, sizes = [], []
    for b in data.test:
        results = test_step(b)
        values.append([float(results[f"l2_magnitude/{n}"]) for n in model.names])
        sizes.append(int(b[0].shape[0]))
    return np.average(np.array(values), axis=0, weights=sizes)


@pytest.mark.slow  # trains or runs a real model for tens of seconds
def test_training_lowers_ae_loss_and_test_error(data):
    model = build(tiny(), ae_lr=1e-3, d_lr=1e-4, seed=3)
    test_step = tf.function(model.test_step)
    before = mean_test_l2_magnitude(test_step, model, data)
    step = tf.function(model.train_step)
    iterator = iter(data.train)
    losses = []
    for _ in range(200):
        results = step(next(iterator))
        losses.append(sum(float(results[f"ae_loss/{n}"]) for n in model.names))
    after = mean_test_l2_magnitude(test_step, model, data)
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert np.all(np.isfinite(losses))
    assert last < 0.7 * first, (first, last)
    assert np.all(after < before), (before, after)
    assert np.mean(after) < 0.95 * np.mean(before), (before, after)


# ---- restore ----

@pytest.mark.slow  # trains or runs a real model for tens of seconds
def test_restore_returns_the_trained_model(tmp_path, monkeypatch, batch):
    from cass_tf import training

    built = []

    class Recording(CASSModel):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(training, "CASSModel", Recording)  # the class training builds
    config = tiny("train.epochs=1", "train.steps_per_epoch=2", "train.ae_learning_rate=1e-2",
                  f"output.model_dir={tmp_path / 'run'}")
    result = training.train(config, verbose=False)
    assert result.step == 2 and len(built) == 1
    trained = built[0]
    monkeypatch.undo()

    restored = restore(str(tmp_path / "run"))
    assert type(restored) is CASSModel
    mixture = batch[0]
    expected, got = trained(mixture, training=False), restored(mixture, training=False)
    for n in config.components:
        np.testing.assert_allclose(got[n].numpy(), expected[n].numpy(), rtol=1e-6, atol=1e-6)
    # Every weight (BatchNorm statistics and discriminators included) came back, not just some.
    assert [w.path for w in restored.weights] == [w.path for w in trained.weights]
    for a, b in zip(restored.weights, trained.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


# ---- mixed precision and XLA ----

@pytest.mark.slow  # trains or runs a real model for tens of seconds
@pytest.mark.parametrize("precision,compute", [("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")])
def test_mixed_precision_step_updates_float32_weights(batch, precision, compute):
    """train.build_model under a mixed policy: convolutions compute in `compute`, variables, outputs and logits stay
    float32, a step changes every weight, and the global policy is float32 again afterwards (export sees float32)."""
    from cass_tf.train import build_model

    keras.utils.set_random_seed(0)
    model = build_model(tiny(f"train.precision={precision}"))
    assert keras.config.dtype_policy().name == "float32"
    model(batch[0])
    conv = model.autoencoders["heart"].layers[1].layers[1]  # first conv of the encoder
    assert conv.compute_dtype == compute and conv.kernel.dtype == "float32"
    assert all(v.dtype == "float32" for v in model.ae_variables + model.d_variables)
    assert model(batch[0])["heart"].dtype == tf.float32  # outputs (and discriminator logits) stay float32
    assert model.discriminators["heart"](batch[1]["heart"]).dtype == tf.float32
    assert isinstance(model.ae_optimizer, keras.optimizers.LossScaleOptimizer) == (precision == "mixed_float16")
    ae_before, d_before = snapshot(model.ae_variables), snapshot(model.d_variables)
    step = tf.function(model.train_step)
    # A LossScaleOptimizer skips a step whose scaled float16 gradients overflow and halves its scale (the
    # concatenated discriminator batch overflows at the initial 2**15); a few steps reach a working scale.
    for _ in range(4):
        results = step(batch)
    assert all(np.isfinite(float(v)) for v in results.values())
    assert all(changed(ae_before, model.ae_variables)) and all(changed(d_before, model.d_variables))
    if precision == "mixed_float16":
        assert 0 < float(model.d_optimizer.dynamic_scale) <= 2.0**15


@pytest.mark.slow  # trains or runs a real model for tens of seconds
def test_xla_step_equals_graph_step(batch):
    config = tiny('data.components=["heart"]', "loss.cross=[[0]]")  # one component: half the XLA compile time
    results = []
    for jit in (False, True):
        model = build(config)
        model(batch[0])
        step = tf.function(model.train_step, jit_compile=jit)
        step(batch)
        results.append(snapshot(model.ae_variables))
    for graph, xla in zip(*results):
        np.testing.assert_allclose(xla, graph, rtol=1e-3, atol=1e-5)
