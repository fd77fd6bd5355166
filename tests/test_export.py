"""Tests for cass_tf.export: TF Serving layout, atomic versions, signatures (via saved_model_cli too), assets, and
the serving contract (cass_tf.contract): format 1 still loads, untrusted asset files and version directories.

The tiny PPG model (width 2, 16x16 patches, n_fft 32) is conftest's, trained once per session.
"""

import collections
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cass_tf import contract
from cass_tf import export as export_module
from cass_tf.export import ExportError, export
from cass_tf.models.cass import CASSModel, restore
from conftest import ENV, TF_LOG, assert_close, reference, run_cli

pytestmark = pytest.mark.slow  # trainings, exports and real subprocesses throughout


@pytest.fixture(scope="module")
def exported(tiny_model_dir, tiny_model, tmp_path_factory):
    """Two exports into one base directory: from the model_dir (version 1), then from a CASSModel (version 2)."""
    base = tmp_path_factory.mktemp("saved_models") / "tiny"
    first = export(str(tiny_model_dir), base)
    assert first == str(base / "1")
    return base, export(tiny_model, base)


def saved_model_cli(*args):
    result = subprocess.run(["saved_model_cli", *args], capture_output=True, text=True, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# ---- layout ----

def test_layout_versions_and_no_leftovers(exported, tiny_model_dir):
    base, second = exported
    assert second == str(base / "2")
    assert sorted(os.listdir(base)) == ["1", "2", "models.config"]  # no .tmp-* directories left
    for version in ("1", "2"):
        assert (base / version / "saved_model.pb").is_file()
        assert (base / version / "variables" / "variables.index").is_file()
    served = json.loads((base / "2" / "assets" / "cass_config.json").read_text())
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert served["config"] == config
    assert served["sample_rate"] == config["data"]["sample_rate"] == 64
    assert served["components"] == config["data"]["components"] == ["heart", "respiratory"]
    assert served["stft"] == config["stft"] and served["patch"] == config["patch"]
    assert served["scaling"] == config["scaling"]
    text = (base / "models.config").read_text()
    assert 'name: "tiny"' in text and 'base_path: "/models/tiny"' in text and 'model_platform: "tensorflow"' in text


def test_explicit_and_existing_versions(exported, tiny_model, tmp_path):
    base, _ = exported
    with pytest.raises(ExportError, match="version 2 already exists"):
        export(tiny_model, base, version=2)
    with pytest.raises(ExportError, match="positive integer"):
        export(tiny_model, base, version=0)
    assert sorted(os.listdir(base)) == ["1", "2", "models.config"]
    other = tmp_path / "other"
    assert export(tiny_model, other, version=7) == str(other / "7")
    (other / "3").mkdir()
    (other / "not-a-version").mkdir()
    assert contract.versions(other) == [3, 7]
    assert export_module._choose_version(str(other), None) == 8  # next free after the highest


def test_cli(exported, tiny_model_dir):
    """The CLI refuses an existing version with one error line (checked before the model is restored), exit 1;
    TensorFlow, which this module imports itself, logs nothing (the CLI quiets it first)."""
    base, _ = exported
    result = run_cli("--model_dir", tiny_model_dir, "--export_dir", base, "--version", "1", module="cass_tf.export")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: version 1 already exists")
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("device: CPU"), result.stderr[:2000]
    assert not TF_LOG.search(result.stderr), result.stderr[:2000]
    assert sorted(os.listdir(base)) == ["1", "2", "models.config"]


def test_failed_save_leaves_nothing(tiny_model, tmp_path, monkeypatch):
    """A crash while writing leaves neither a version directory nor the temporary one."""
    def broken_save(module, path, signatures=None):
        os.makedirs(os.path.join(path, "variables"))
        open(os.path.join(path, "saved_model.pb"), "w").close()
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_module.tf.saved_model, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        export(tiny_model, tmp_path / "broken")
    assert os.listdir(tmp_path / "broken") == []


def test_restore_loads_trained_weights(tiny_model_dir, tiny_model):
    """Two restores agree exactly (random initial weights would not), and the networks are the checkpoint's."""
    again = restore(str(tiny_model_dir))
    for a, b in zip(tiny_model.variables, again.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tiny_model_dir / "checkpoints")))
    keys = [k for k in reader.get_variable_to_shape_map() if k.startswith("model/ae_heart/")]
    assert keys, "the checkpoint holds no autoencoder weights under model/"


# ---- signatures ----

def test_saved_model_cli_show_lists_signatures(exported):
    base, _ = exported
    text = saved_model_cli("show", "--all", "--dir", str(base / "1"))
    assert "signature_def['serving_default']" in text and "signature_def['features']" in text
    serving = text.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    assert "inputs['waveform']" in serving and "shape: (-1, -1)" in serving
    assert "outputs['heart']" in serving and "outputs['respiratory']" in serving
    assert "output_0" not in text
    features = text.split("signature_def['features']")[1].split("signature_def[")[0]
    assert "inputs['mixture_features']" in features and "shape: (-1, 16, 16, 1)" in features
    assert "outputs['heart']" in features and "outputs['respiratory']" in features


def test_saved_model_cli_run(exported, tiny_model, tmp_path):
    """The session-based loader (what TF Serving's C++ loader does) restores every variable and gives the Keras
    model's values. (`--input_exprs 'waveform=np.zeros(...)'` is refused by this saved_model_cli: literals only.)"""
    base, _ = exported
    x = np.random.default_rng(0).normal(size=(2, 1000)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    saved_model_cli("run", "--dir", str(base / "1"), "--tag_set", "serve", "--signature_def", "serving_default",
                    "--inputs", f"waveform={tmp_path / 'x.npy'}", "--outdir", str(tmp_path / "out"))
    expected = reference(tiny_model, x)
    for name in ("heart", "respiratory"):
        y = np.load(tmp_path / "out" / f"{name}.npy")
        assert y.shape == (2, 1000) and y.dtype == np.float32
        assert_close(y, expected[name])


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported[0] / "2"))


@pytest.mark.parametrize("samples", [1, 333, 2000])
def test_reloaded_serving_equals_keras_model(loaded, tiny_model, samples):
    x = np.random.default_rng(samples).normal(size=(2, samples)).astype(np.float32)
    out = loaded.signatures["serving_default"](waveform=tf.constant(x))
    expected = reference(tiny_model, x)
    assert set(out) == {"heart", "respiratory"}
    for name in expected:
        assert out[name].shape == (2, samples)
        assert_close(out[name].numpy(), expected[name])
    if samples == 2000:  # several patches: 2000 samples are ~250 frames, patches hold 16
        assert np.abs(expected["heart"]).max() > 0


def test_features_signature_equals_model(loaded, tiny_model):
    features = np.random.default_rng(2).uniform(0, 2, size=(4, 16, 16, 1)).astype(np.float32)
    out = loaded.signatures["features"](mixture_features=tf.constant(features))
    for name, value in tiny_model(features, training=False).items():
        assert out[name].shape == (4, 16, 16, 1)
        assert_close(out[name].numpy(), value.numpy())
    assert not np.allclose(out["heart"].numpy(), out["respiratory"].numpy())


def test_config_asset_travels_with_the_model(exported, tmp_path):
    """The asset is a real SavedModel asset: a copied version directory points at its own copy."""
    import shutil

    base, _ = exported
    shutil.copytree(base / "1", tmp_path / "copy")
    loaded = tf.saved_model.load(str(tmp_path / "copy"))
    path = loaded.cass_config.asset_path.numpy().decode()
    assert path == str(tmp_path / "copy" / "assets" / "cass_config.json")
    assert json.loads(pathlib.Path(path).read_text())["components"] == ["heart", "respiratory"]


def test_wise_ft_runs_export_the_mix_of_init_from_and_the_trained_weights(exported, tiny_training, tmp_path):
    """train.wise_ft 0.25: a run started from an export (train.init_from) exports 0.75 of that export's weights plus
    0.25 of its own trained ones, every autoencoder variable; wise_ft without init_from, or with an export of
    another network, is refused before training."""
    from cass_tf import loading, training
    from cass_tf.config import ConfigError

    base, _ = exported
    config = tiny_training[0].replace([f"output.model_dir={tmp_path / 'run'}", f"train.init_from={base / '1'}",
                                       "train.wise_ft=0.25", "train.epochs=1", "train.steps_per_epoch=2"])
    training.train(config, verbose=False)
    start, trained = export_module.load_model(base / "1"), restore(str(tmp_path / "run"))
    mixed = export_module.load_model(export(str(tmp_path / "run"), tmp_path / "mixed"))
    moved = 0.0
    for name in config.components:
        triples = zip(start.autoencoders[name].variables, trained.autoencoders[name].variables,
                      mixed.autoencoders[name].variables)
        for a, b, m in triples:
            np.testing.assert_allclose(m.numpy(), 0.75 * a.numpy() + 0.25 * b.numpy(), rtol=1e-6, atol=1e-6)
            moved = max(moved, float(np.abs(b.numpy() - a.numpy()).max()))
    assert moved > 1e-4  # training moved the weights, so the mix differs from both
    separating = loading.load(str(tmp_path / "run")).keep  # a Separator of the model_dir holds the same mix
    for name in config.components:
        for m, s in zip(mixed.autoencoders[name].variables, separating.autoencoders[name].variables):
            np.testing.assert_allclose(s.numpy(), m.numpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(ConfigError, match=r"train\.wise_ft: needs train\.init_from"):
        config.replace(["train.init_from=null"])
    other = export(CASSModel(config.replace(["model.width=4", "train.init_from=null", "train.wise_ft=null"])),
                   tmp_path / "wide", 1)
    with pytest.raises(ConfigError, match=r"train\.init_from .*: its model is .*width=4"):
        training.train(config.replace([f"output.model_dir={tmp_path / 'run2'}", f"train.init_from={other}"]),
                       verbose=False)


def convolution_dtypes(loaded) -> collections.Counter:
    """How many convolutions of a SavedModel's features signature compute in each dtype."""
    library = loaded.signatures["features"].graph.as_graph_def().library
    return collections.Counter(tf.dtypes.as_dtype(node.attr["T"].type).name for function in library.function
                               for node in function.node_def if node.op in ("Conv2D", "Conv2DBackpropInput"))


def test_output_precision_mixed_bfloat16_exports_bfloat16_arithmetic_on_the_same_weights(exported, tiny_model_dir,
                                                                                         tmp_path):
    """`cass-tf export --precision mixed_bfloat16` of a float32 run: the export's convolutions compute in bfloat16
    (a float32 export's in float32) but for the decoders' output layers, which stay float32; it holds the same float32
    weights, its asset says so, and its outputs are the float32 export's to bfloat16 accuracy."""
    base, _ = exported
    result = run_cli("--model_dir", tiny_model_dir, "--export_dir", tmp_path / "bf16", "--precision",
                     "mixed_bfloat16", module="cass_tf.export")
    assert result.returncode == 0, result.stderr[-2000:]
    model = export_module.load_model(tmp_path / "bf16" / "1")
    fast = tf.saved_model.load(str(tmp_path / "bf16" / "1"))
    plain = tf.saved_model.load(str(base / "1"))
    assert set(convolution_dtypes(plain)) == {"float32"}
    counts = convolution_dtypes(fast)
    assert set(counts) == {"bfloat16", "float32"} and counts["bfloat16"] > 5 * counts["float32"]
    for name in model.config.components:
        for a, b in zip(plain.autoencoder_variables[name], fast.autoencoder_variables[name]):
            assert b.dtype == tf.float32
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    features = tf.constant(np.random.default_rng(4).uniform(0, 2, size=(8, 16, 16, 1)).astype(np.float32))
    want, got = (m.signatures["features"](mixture_features=features) for m in (plain, fast))
    for name in model.config.components:
        error = np.linalg.norm(got[name].numpy() - want[name].numpy()) / np.linalg.norm(want[name].numpy())
        assert got[name].dtype == tf.float32 and 0 < error < 0.05  # bfloat16 keeps 8 significant bits
    asset = json.loads((tmp_path / "bf16" / "1" / "assets" / "cass_config.json").read_text())
    assert asset["config"]["output"]["precision"] == "mixed_bfloat16"


# ---- the serving contract: format versions, untrusted model directories ----

def test_contract_imports_no_tensorflow():
    code = "import sys, cass_tf.contract, cass_tf.serving; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV)


@pytest.fixture(scope="module")
def format_1(tiny_model, tmp_path_factory):
    """The tiny model saved in format 1 (what versions published before format 2 hold); read it, never write into it."""
    path = tmp_path_factory.mktemp("format_1") / "1"
    export_module.save(tiny_model, str(path), format_version=1)
    return path


def test_format_1_export_still_loads(tiny_model, format_1):
    """A format-1 export (signature `spectrogram`, input `mixture_magnitude`) reads and separates like format 2."""
    from cass_tf.separation import Separator

    old = format_1
    asset = contract.read_asset(old)
    assert (asset.format_version, asset.features_signature, asset.features_input) == (1, "spectrogram",
                                                                                      "mixture_magnitude")
    loaded = tf.saved_model.load(str(old))
    features = np.random.default_rng(3).uniform(0, 2, size=(2, 16, 16, 1)).astype(np.float32)
    out = loaded.signatures["spectrogram"](mixture_magnitude=tf.constant(features))
    for name, value in tiny_model(features, training=False).items():
        assert_close(out[name].numpy(), value.numpy())
    x = np.random.default_rng(4).normal(size=300).astype(np.float32)
    expected = reference(tiny_model, x)
    for name, value in Separator(str(old))(x).items():
        assert_close(value, expected[name])


def broken_copy(exported, tmp_path, edit):
    """A copy of version 1 whose assets/cass_config.json is `edit(text)`."""
    import shutil

    copy = tmp_path / "broken"
    shutil.copytree(exported[0] / "1", copy)
    asset = copy / "assets" / "cass_config.json"
    asset.write_text(edit(asset.read_text()))
    return copy, asset


def with_asset(change):
    def edit(text):
        raw = json.loads(text)
        change(raw)
        return json.dumps(raw)
    return edit


@pytest.mark.parametrize("edit, field", [
    (lambda text: "{not json", "not valid JSON"),
    (lambda text: "[]", "top level must be a JSON object"),
    (with_asset(lambda raw: raw.pop("sample_rate")), "sample_rate: required field is missing"),
    (with_asset(lambda raw: raw.update(sample_rate="64")), "sample_rate: expected int"),
    (with_asset(lambda raw: raw.update(sample_rate=32)), "sample_rate: 32 disagrees with config"),
    (with_asset(lambda raw: raw.update(components=["heart"])), "components"),
    (with_asset(lambda raw: raw.update(format_version=99)), "format_version: 99"),
    (with_asset(lambda raw: raw.update(max_patches=0)), "max_patches: must be >= 1"),
    (with_asset(lambda raw: raw["config"]["data"].update(sample_rate=-64)), "config.data.sample_rate: must be > 0"),
    (with_asset(lambda raw: raw["config"]["stft"].update(hop=float("nan"))), "config.stft.hop"),
    (with_asset(lambda raw: raw["config"].update(extra=1)), "config.extra: unknown key"),
])
def test_bad_asset_is_one_error_naming_file_and_field(exported, tmp_path, edit, field):
    from cass_tf.separation import Separator

    copy, asset = broken_copy(exported, tmp_path, edit)
    for load in (contract.read_asset, Separator):
        with pytest.raises(ValueError) as info:
            load(str(copy))
        message = str(info.value)
        assert str(asset) in message and field in message and "\n" not in message, message


@pytest.mark.parametrize("remove", ["variables", "variables/variables.index", "saved_model.pb"])
def test_incomplete_version_dir_is_one_line_naming_what_is_missing(exported, tmp_path, remove):
    import shutil

    from cass_tf.separation import Separator

    copy, _ = broken_copy(exported, tmp_path, lambda text: text)
    target = copy / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(ValueError) as info:
        Separator(str(copy)) if remove != "saved_model.pb" else contract.check_version_dir(copy)
    message = str(info.value)
    assert str(copy) in message and remove.split("/")[-1].split(".")[0] in message and "\n" not in message, message


def test_export_removes_a_killed_exports_leftover(tiny_model, tmp_path):
    """kill -9 during an export leaves `.tmp-<version>-<pid>-<hex>`; the next export of that version removes it
    when the pid is dead, and never touches a live one's."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    base = tmp_path / "base"
    dead, live = base / f".tmp-1-{child.pid}-{'a' * 32}", base / f".tmp-1-{os.getppid()}-{'b' * 32}"
    for leftover in (dead, live):
        (leftover / "variables").mkdir(parents=True)
    export(tiny_model, base)
    assert sorted(os.listdir(base)) == sorted(["1", "models.config", live.name])


def test_export_dir_that_is_a_file(tiny_model, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ExportError, match="is not a directory"):
        export(tiny_model, blocker)
    with pytest.raises(ValueError, match=f"'{blocker}' is a file"):
        export(tiny_model, blocker / "sub")


@pytest.mark.parametrize("corrupt", ["data", "index", "config"])
def test_corrupt_model_dir_is_one_error_naming_the_file(tiny_model_dir, tmp_path, corrupt):
    """A training model_dir is untrusted too: garbage checkpoint files or config.json -> one ValueError line."""
    import glob
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(tiny_model_dir, copy)
    pattern = {"data": "checkpoints/*.data-*", "index": "checkpoints/*.index", "config": "config.json"}[corrupt]
    for path in glob.glob(str(copy / pattern)):
        pathlib.Path(path).write_bytes(b"garbage")
    with pytest.raises(ValueError) as info:
        restore(str(copy))
    message = str(info.value)
    assert str(copy) in message and "\n" not in message, message
    assert ("not valid JSON" if corrupt == "config" else "checkpoint cannot be read") in message


def test_reexport_writes_a_new_version_and_never_touches_the_published_one(format_1, tmp_path):
    """Published versions are immutable: re-exporting version 1 (format 1) writes version 2 (format 2, same
    weights, same outputs) and leaves every byte of version 1 as it was; asking for version 1 is refused."""
    import shutil

    from cass_tf.separation import Separator

    base = tmp_path / "base"
    shutil.copytree(format_1, base / "1")

    def snapshot():
        return {p.relative_to(base / "1"): p.read_bytes() for p in sorted((base / "1").rglob("*")) if p.is_file()}

    before = snapshot()
    assert export_module.reexport(base / "1") == str(base / "2")
    assert snapshot() == before
    assert contract.read_asset(base / "1").format_version == 1
    assert contract.read_asset(base / "2").format_version == 2
    x = np.random.default_rng(5).normal(size=300).astype(np.float32)
    old, new = Separator(str(base / "1"))(x), Separator(str(base / "2"))(x)
    for name in old:
        assert_close(new[name], old[name])
    with pytest.raises(ExportError, match="version 1 already exists"):
        export_module.reexport(base / "1", version=1)
    assert snapshot() == before and sorted(os.listdir(base)) == ["1", "2", "models.config"]


def test_interpolate_mixes_every_weight_and_refuses_another_network(exported, tmp_path):
    """A quarter of the way from version 1 to a perturbed copy of it: every autoencoder variable (batch-norm
    statistics too) is 0.75 a + 0.25 b, read back from the new export; another network or weight is refused."""
    base, _ = exported
    first = export_module.load_model(base / "1")
    other = export_module.load_model(base / "1")
    rng = np.random.default_rng(3)
    for name in other.config.components:
        for variable in other.autoencoders[name].variables:
            variable.assign(variable + rng.normal(size=variable.shape).astype(np.float32))
    second = export(other, tmp_path / "b", 1)
    mixed = export_module.load_model(export_module.interpolate(base / "1", second, 0.25, tmp_path / "mixed"))
    for name in first.config.components:
        triples = zip(first.autoencoders[name].variables, other.autoencoders[name].variables,
                      mixed.autoencoders[name].variables)
        for a, b, m in triples:
            np.testing.assert_allclose(m.numpy(), 0.75 * a.numpy() + 0.25 * b.numpy(), rtol=1e-6, atol=1e-6)
    assert any("moving" in v.name for v in mixed.autoencoders[name].variables)
    wider = CASSModel(first.config.replace([f"model.width={2 * first.config.model.width}"]))
    with pytest.raises(ValueError, match=r"not the network of .*\['model'\]"):
        export_module.interpolate(base / "1", export(wider, tmp_path / "w", 1), 0.5, tmp_path / "x")
    with pytest.raises(ValueError, match=r"weight: must be in \[0, 1\], got 1.5"):
        export_module.interpolate(base / "1", second, 1.5, tmp_path / "y")
