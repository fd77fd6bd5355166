"""Unit tests for cass_tf.contract (no TensorFlow, no SavedModel): the asset written for a config reads back to the
same facts, every damaged field is refused naming the file and the field, and version directories are listed and
checked by their files."""

import json

import pytest

from cass_tf import contract
from cass_tf.config import load_config
from conftest import REPO, TINY

CONFIG = load_config(REPO / "configs" / "paper" / "ppg.json", TINY)


def write_asset(version_dir, raw):
    (version_dir / "assets").mkdir(parents=True, exist_ok=True)
    (version_dir / "assets" / contract.CONFIG_ASSET).write_text(json.dumps(raw))
    return version_dir


def test_asset_reads_back_to_the_config(tmp_path):
    raw = contract.asset(CONFIG, max_patches=7)
    read = contract.read_asset(write_asset(tmp_path / "1", raw))
    assert read.format_version == contract.FORMAT_VERSION == 2
    assert (read.sample_rate, read.components, read.max_patches) == (64, ("heart", "respiratory"), 7)
    assert read.config.to_dict() == CONFIG.to_dict()
    assert (read.features_signature, read.features_input) == ("features", "mixture_features")
    signatures = raw["signatures"]
    assert set(signatures) == {contract.SERVING_SIGNATURE, contract.FEATURES_SIGNATURE}
    assert set(signatures[contract.SERVING_SIGNATURE]["outputs"]) == {"heart", "respiratory"}
    assert "[batch, 16, 16, 1]" in signatures["features"]["inputs"]["mixture_features"]


def test_format_1_names(tmp_path):
    read = contract.read_asset(write_asset(tmp_path / "1", contract.asset(CONFIG, format_version=1)))
    assert (read.features_signature, read.features_input) == ("spectrogram", "mixture_magnitude")


@pytest.mark.parametrize("kind, gain, exponent, text", [("log1p", 2.0, 0.5, "log1p(2.0 * m)"),
                                                        ("power", 3.0, 0.5, "(3.0 * m) ** 0.5"),
                                                        ("linear", 1.0, 0.5, "m, linear")])
def test_the_asset_states_the_scaling_formula(kind, gain, exponent, text):
    config = CONFIG.replace([f'scaling.kind="{kind}"', f"scaling.gain={gain}", f"scaling.exponent={exponent}"])
    assert config.scaling.formula() == text
    assert f"({text})" in contract.asset(config)["signatures"]["features"]["inputs"]["mixture_features"]


@pytest.mark.parametrize("change, message", [
    (lambda raw: raw.pop("sample_rate"), r"sample_rate: required field is missing"),
    (lambda raw: raw.update(sample_rate=True), r"sample_rate: expected int, got true"),
    (lambda raw: raw.update(sample_rate=65), r"sample_rate: 65 disagrees with config \(64\)"),
    (lambda raw: raw.update(components=["heart"]), r"components: \[\"heart\"\] disagrees with config"),
    (lambda raw: raw.update(format_version=3), r"format_version: 3 is not one this cass_tf reads \(\[1, 2\]\)"),
    (lambda raw: raw.update(max_patches=0), r"max_patches: must be >= 1, got 0"),
    (lambda raw: raw["config"]["model"].update(width="wide"), r"config\.model\.width"),
])
def test_damaged_asset_is_refused_naming_file_and_field(tmp_path, change, message):
    raw = contract.asset(CONFIG)
    change(raw)
    version_dir = write_asset(tmp_path / "1", raw)
    with pytest.raises(ValueError, match=rf"{contract.CONFIG_ASSET}: {message}"):
        contract.read_asset(version_dir)


def test_not_an_export(tmp_path):
    with pytest.raises(ValueError, match="is not a cass_tf export: no assets/cass_config.json"):
        contract.read_asset(tmp_path)
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / contract.CONFIG_ASSET).write_text("[1, 2]")
    with pytest.raises(ValueError, match="cass_config.json"):
        contract.read_asset(tmp_path)


def test_versions_lists_integer_directories_only(tmp_path):
    assert contract.versions(tmp_path / "missing") == []
    for name in ("3", "10", "1", "latest", ".1.tmp"):
        (tmp_path / name).mkdir()
    (tmp_path / "7").write_text("a file")
    assert contract.versions(tmp_path) == [1, 3, 10]


def test_check_version_dir_names_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="incomplete: no saved_model.pb"):
        contract.check_version_dir(tmp_path)
    (tmp_path / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ValueError, match="no variables/ directory"):
        contract.check_version_dir(tmp_path)
    (tmp_path / "variables").mkdir()
    with pytest.raises(ValueError, match="no variables/variables.index"):
        contract.check_version_dir(tmp_path)
    (tmp_path / "variables" / "variables.index").write_bytes(b"")
    assert contract.check_version_dir(tmp_path) == str(tmp_path)
