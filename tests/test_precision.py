"""Tests for train.precision (cass_tf.precision, the config's deprecated field, the device line) and FusedBatchNorm,
the BatchNorm that keeps mixed_bfloat16 fast: the same outputs, gradients and moving statistics as Keras'."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from cass_tf import cli
from cass_tf.config import ConfigError, from_dict, load_config
from cass_tf.models.resnet9 import FusedBatchNorm
from cass_tf.precision import read_cpu_flags, resolve
from conftest import REPO


def cpuinfo_has_bf16() -> bool:
    """Independently of cass_tf.precision: does any `flags` line of /proc/cpuinfo name a bfloat16 unit?"""
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return False
    return any(line.startswith("flags") and (" amx_bf16" in line or " avx512_bf16" in line)
               for line in text.splitlines())


@pytest.mark.parametrize("gpus,flags,policy", [
    ([(9, 0)], set(), "mixed_bfloat16"),             # H100
    ([(8, 0)], set(), "mixed_bfloat16"),             # A100
    ([(7, 5)], {"amx_bf16"}, "mixed_float16"),      # T4: the GPU decides, not the host CPU
    ([], {"avx512_bf16", "avx512f"}, "mixed_bfloat16"),
    ([], {"amx_bf16", "amx_tile"}, "mixed_bfloat16"),
    ([], {"avx2", "avx512f"}, "float32"),
    ([], set(), "float32"),
])
def test_auto_picks_by_device(gpus, flags, policy):
    chosen = resolve("auto", gpu_capabilities=gpus, cpu_flags=flags)
    assert chosen.policy == policy
    assert chosen.loss_scaling == (policy == "mixed_float16")
    assert chosen.reason.startswith("auto: ")


@pytest.mark.parametrize("setting", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_explicit_settings_are_kept_whatever_the_device(setting):
    assert resolve(setting, gpu_capabilities=[(9, 0)], cpu_flags={"amx_bf16"}).policy == setting


def test_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="train.precision"):
        resolve("bfloat16")
    with pytest.raises(ConfigError, match="train.precision"):
        load_config(REPO / "configs" / "ppg.json", ["train.precision=bfloat16"])


def test_cpu_flags_from_a_cpuinfo_file(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16\n\nprocessor\t: 1\nflags\t: fpu\n")
    assert read_cpu_flags(str(info)) == {"fpu", "avx512f", "avx512_bf16", "amx_bf16"}
    assert read_cpu_flags(str(tmp_path / "missing")) == set()


@pytest.mark.skipif(not cpuinfo_has_bf16(), reason="this CPU reports no amx_bf16/avx512_bf16 flag")
def test_auto_on_this_cpu_is_bfloat16_and_the_device_line_says_why():
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU decides auto here")
    assert resolve("auto").policy == "mixed_bfloat16"
    line = cli.device_line("auto")
    assert line.startswith("device: CPU") and "precision mixed_bfloat16 (auto: no GPU, the CPU has" in line
    assert cli.device_line("float32").endswith("precision float32 (train.precision)")  # forced off


def test_shipped_configs_use_auto_and_paper_configs_float32():
    for name in ("ecg", "ppg", "bach10"):
        assert load_config(REPO / "configs" / f"{name}.json",
                           ["data.bach10.root=."] if name == "bach10" else []).train.precision == "auto"
        assert load_config(REPO / "configs" / "paper" / f"{name}.json",
                           ["data.bach10.root=."] if name == "bach10" else []).train.precision == "float32"


@pytest.mark.parametrize("old,new", [(True, "mixed_float16"), (False, "float32")])
def test_deprecated_mixed_precision_is_mapped_with_a_warning(tmp_path, old, new):
    raw = load_config(REPO / "configs" / "ppg.json").to_dict()
    del raw["train"]["precision"]
    raw["train"]["mixed_precision"] = old
    path = tmp_path / "old.json"
    path.write_text(__import__("json").dumps(raw))
    with pytest.warns(FutureWarning, match=f"train.mixed_precision is deprecated.*train.precision='{new}'"):
        assert load_config(path).train.precision == new
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stored configs (run dirs, published models' assets) load silently
        assert from_dict(raw).train.precision == new


def test_both_precision_fields_are_refused():
    with pytest.raises(ConfigError, match="give train.precision only"):
        load_config(REPO / "configs" / "ppg.json", ["train.mixed_precision=true"])


def test_published_models_assets_still_load():
    """The shipped versions' asset configs say train.mixed_precision=false (written before train.precision)."""
    import json

    for asset in sorted((REPO / "saved_models").glob("*/*/assets/cass_config.json")):
        raw = json.loads(asset.read_text())["config"]
        if "mixed_precision" in raw["train"]:
            assert from_dict(raw).train.precision == "float32", asset


# ---- FusedBatchNorm ----

def _pair(shape, policy):
    keras.config.set_dtype_policy(policy)
    try:
        reference, fused = keras.layers.BatchNormalization(), FusedBatchNorm()
    finally:
        keras.config.set_dtype_policy("float32")
    for layer in (reference, fused):
        layer.build(shape)
        layer.gamma.assign(np.linspace(0.5, 2.0, shape[-1]))
        layer.beta.assign(np.linspace(-1.0, 1.0, shape[-1]))
    return reference, fused


@pytest.mark.parametrize("policy,tolerance", [("float32", 1e-5), ("mixed_bfloat16", 2e-2)])
def test_fused_batch_norm_equals_keras_batch_norm(policy, tolerance):
    x = tf.constant(np.random.default_rng(0).normal(2.0, 3.0, size=(4, 8, 8, 6)).astype(np.float32))
    reference, fused = _pair(x.shape, policy)
    outputs, grads = [], []
    for layer in (reference, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 3)  # a non-trivial upstream gradient
        outputs.append(tf.cast(y, tf.float32).numpy())
        grads.append([tf.cast(g, tf.float32).numpy() for g in tape.gradient(loss, [x, layer.gamma, layer.beta])])
        assert y.dtype == layer.compute_dtype
    scale = np.abs(outputs[0]).max()
    np.testing.assert_allclose(outputs[1], outputs[0], atol=tolerance * scale)
    for g_fused, g_ref in zip(grads[1], grads[0]):
        np.testing.assert_allclose(g_fused, g_ref, atol=tolerance * np.abs(g_ref).max())
    # the moving statistics: Keras' biased variance, the same momentum (checked against NumPy)
    data = tf.cast(tf.cast(x, fused.compute_dtype), tf.float64).numpy()  # what the layer saw
    np.testing.assert_allclose(fused.moving_mean.numpy(), 0.01 * data.mean(axis=(0, 1, 2)), rtol=1e-4)
    np.testing.assert_allclose(fused.moving_variance.numpy(), 0.99 + 0.01 * data.var(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), reference.moving_variance.numpy(), rtol=1e-5)
    # inference uses the moving statistics
    inference = [tf.cast(layer(x, training=False), tf.float32).numpy() for layer in (reference, fused)]
    np.testing.assert_allclose(inference[1], inference[0], atol=tolerance * np.abs(inference[0]).max())


def test_fused_batch_norm_keeps_keras_variable_names():
    """Checkpoints written with Keras' BatchNormalization restore into FusedBatchNorm and back."""
    reference, fused = _pair((2, 4, 4, 3), "float32")
    assert [v.path.split("/")[-1] for v in reference.variables] == [v.path.split("/")[-1] for v in fused.variables]


# ---- training in bfloat16, exporting float32 ----

@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory):
    """The tiny PPG model trained with train.precision=mixed_bfloat16 (2 epochs of 3 steps)."""
    from cass_tf.train import train
    from conftest import TINY

    model_dir = tmp_path_factory.mktemp("bf16") / "run"
    config = load_config(REPO / "configs" / "paper" / "ppg.json",
                         [*TINY, "train.precision=mixed_bfloat16", f"output.model_dir={model_dir}"])
    result = train(config, verbose=False)
    return config, model_dir, result


@pytest.mark.slow  # trains or runs a real model for tens of seconds
def test_bfloat16_training_exports_a_float32_model(bf16_run, tmp_path):
    """A model trained in bfloat16 restores and exports in float32: the SavedModel's signature takes and returns
    float32, and equals the float32 Keras model restored from the same checkpoint."""
    from cass_tf.export import export
    from cass_tf.models.cass import restore
    from conftest import assert_close, reference, signal

    _, model_dir, result = bf16_run
    assert all(np.isfinite(v) for row in result.history for k, v in row.items() if k.startswith("test_"))
    model = restore(str(model_dir))
    assert all(layer.compute_dtype == "float32" for ae in model.autoencoders.values() for layer in ae.layers)
    loaded = tf.saved_model.load(export(str(model_dir), tmp_path / "export"))
    signature = loaded.signatures["serving_default"]
    assert signature.structured_input_signature[1]["waveform"].dtype == tf.float32
    x = signal(256)[np.newaxis]
    out = signature(waveform=tf.constant(x))
    expected = reference(model, x)
    for name in model.config.components:
        assert out[name].dtype == tf.float32
        assert_close(out[name].numpy(), expected[name])


@pytest.mark.slow  # trains or runs a real model for tens of seconds
def test_resume_may_change_precision_but_not_to_loss_scaling(bf16_run):
    from cass_tf.train import TrainingError, train

    config, model_dir, _ = bf16_run
    more = config.replace(["train.precision=float32", f"train.epochs={config.train.epochs + 1}"])
    assert train(more, verbose=False).epoch == config.train.epochs + 1
    with pytest.raises(TrainingError, match=r"train\.precision"):
        train(config.replace(["train.precision=mixed_float16", f"train.epochs={config.train.epochs + 2}"]),
              verbose=False)
