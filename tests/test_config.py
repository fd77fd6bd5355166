"""Tests for cass_tf.config: every validation rule names its dotted field, overrides, round trips, paper defaults."""

import copy
import json
import pathlib
import re

import pytest

from cass_tf.config import (Config, ConfigError, LossConfig, TrainConfig, apply_overrides, flatten,
                            from_dict, load_config)

REPO = pathlib.Path(__file__).resolve().parents[1]
BACH10 = (REPO / ".." / "shared" / "data" / "Bach10").resolve()


def shipped(name):
    with open(REPO / "configs" / "paper" / f"{name}.json", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture
def ppg():
    """The shipped PPG config with the STFT these tests' numbers are written for (64 Hz, n_fft 128, hop 16)."""
    raw = shipped("ppg")
    raw["data"]["sample_rate"] = 64
    raw["stft"].update(n_fft=128, window=128, hop=16)
    return raw


@pytest.fixture
def ecg():
    return shipped("ecg")


@pytest.fixture
def fake_bach10(tmp_path):
    """A Bach10-like root with two empty piece folders, and a bach10 config dict pointing at it."""
    root = tmp_path / "Bach10"
    for piece in ("01-First", "02-Second"):
        (root / piece).mkdir(parents=True)
    raw = shipped("bach10")
    raw["data"]["bach10"]["root"] = str(root)
    raw["data"]["bach10"]["test_pieces"] = ["02-Second"]
    return raw


def set_path(raw, dotted, value):
    raw = copy.deepcopy(raw)
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        node = node[part]
    node[last] = value
    return raw


def delete_path(raw, dotted):
    raw = copy.deepcopy(raw)
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        node = node[part]
    del node[last]
    return raw


def assert_rejected(raw, *fragments):
    with pytest.raises(ConfigError) as info:
        from_dict(raw)
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"


# ---- files ----

def test_missing_file(tmp_path):
    path = tmp_path / "absent.json"
    with pytest.raises(ConfigError, match="absent.json"):
        load_config(path)


def test_malformed_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x",')
    with pytest.raises(ConfigError, match="not valid JSON") as info:
        load_config(path)
    assert "broken.json" in str(info.value)


def test_top_level_not_object(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="top level"):
        load_config(path)


def test_file_errors_name_file_and_field(tmp_path, ppg):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(set_path(ppg, "train.batch_size", 0)))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "bad.json" in str(info.value) and "train.batch_size" in str(info.value)


# ---- structure and types ----

def test_unknown_key_top_level(ppg):
    assert_rejected(set_path(ppg, "bogus", 1), "bogus", "unknown key")


def test_unknown_key_nested(ppg, ecg):
    assert_rejected(set_path(ppg, "train.bogus", 1), "train.bogus")
    assert_rejected(set_path(ecg, "data.ecg.bogus", 1), "data.ecg.bogus")


def test_required_field_missing(ppg):
    assert_rejected(delete_path(ppg, "stft"), "stft", "missing")
    assert_rejected(delete_path(ppg, "stft.n_fft"), "stft.n_fft", "missing")


def test_section_not_object(ppg):
    assert_rejected(set_path(ppg, "train", 5), "train", "5")


@pytest.mark.parametrize("value, shown", [("8", '"8"'), (True, "true"), (8.5, "8.5"), (None, "null")])
def test_int_field_wrong_type(ppg, value, shown):
    assert_rejected(set_path(ppg, "train.batch_size", value), "train.batch_size", shown)


def test_bool_field_wrong_type(ppg):
    assert_rejected(set_path(ppg, "train.jit_compile", 1), "train.jit_compile", "1")


def test_float_field_rejects_string_and_bool(ppg):
    assert_rejected(set_path(ppg, "loss.alpha", "0.9"), "loss.alpha", '"0.9"')
    assert_rejected(set_path(ppg, "loss.alpha", False), "loss.alpha", "false")


def test_float_field_accepts_int(ppg):
    config = from_dict(set_path(ppg, "loss.alpha", 1))
    assert config.loss.alpha == 1.0 and isinstance(config.loss.alpha, float)


def test_range_wrong_length(ppg):
    assert_rejected(set_path(ppg, "data.ppg.heart_bpm", [50]), "data.ppg.heart_bpm", "[50]")
    assert_rejected(set_path(ppg, "data.ppg.heart_bpm", [50, 60, 70]), "data.ppg.heart_bpm", "[50, 60, 70]")
    assert_rejected(set_path(ppg, "data.ppg.heart_bpm", 50), "data.ppg.heart_bpm", "50")


def test_range_element_wrong_type(ppg):
    assert_rejected(set_path(ppg, "data.ppg.heart_bpm", [50, "x"]), "data.ppg.heart_bpm[1]", '"x"')


@pytest.mark.parametrize("field, value, shown", [
    ("loss.alpha", float("nan"), "NaN"),
    ("train.ae_learning_rate", float("nan"), "NaN"),  # NaN passes `< 0`: finiteness is checked by type
    ("scaling.gain", float("inf"), "Infinity"),
    ("data.ppg.seconds", float("inf"), "Infinity"),
    ("output.bless_threshold", float("-inf"), "-Infinity"),
    ("data.ppg.heart_bpm", [50.0, float("inf")], "data.ppg.heart_bpm[1]"),  # inside a range
    ("loss.cross", [[0.0, float("nan")], [0.0, 0.0]], "loss.cross[0][1]"),  # inside the cross matrix
    ("loss.beta", 10**400, "1000"),  # an integer beyond float's range
])
def test_float_fields_must_be_finite(ppg, field, value, shown):
    assert_rejected(set_path(ppg, field, value), field, "finite", shown)


@pytest.mark.parametrize("item, field", [
    ("train.ae_learning_rate=NaN", "train.ae_learning_rate"),
    ("loss.alpha=NaN", "loss.alpha"),
    ("scaling.gain=Infinity", "scaling.gain"),
    ("data.ppg.seconds=-Infinity", "data.ppg.seconds"),
    ("data.ppg.breathing_hz=[0.1, NaN]", "data.ppg.breathing_hz[1]"),
    ("loss.beta=1e999", "loss.beta"),  # json.loads reads it as inf
])
def test_override_non_finite_rejected(item, field):
    with pytest.raises(ConfigError, match=rf"ppg.json: {re.escape(field)}: must be a finite number"):
        load_config(REPO / "configs" / "paper" / "ppg.json", [item])


def test_config_file_non_finite_rejected(tmp_path, ppg):
    """JSON files may hold NaN/Infinity (Python's json reads them): the file and field are named."""
    path = tmp_path / "inf.json"
    path.write_text(json.dumps(set_path(ppg, "data.ppg.seconds", float("inf"))))
    assert "Infinity" in path.read_text()
    with pytest.raises(ConfigError, match=r"inf.json: data.ppg.seconds: must be a finite number, got Infinity"):
        load_config(path)


@pytest.mark.parametrize("field, value", [
    ("loss.mode", "gan"),
    ("model.output", "waveform"),
    ("scaling.kind", "sqrt"),
    ("data.source", "eeg"),
    ("stft.window_fn", "blackman"),
])
def test_literal_values(ppg, field, value):
    assert_rejected(set_path(ppg, field, value), field, value)


# ---- ranges ----

@pytest.mark.parametrize("field, value", [
    ("train.ae_learning_rate", -1e-5),
    ("train.d_learning_rate", -1.0),
    ("train.batch_size", 0),
    ("train.epochs", -3),
    ("train.steps_per_epoch", 0),
    ("loss.alpha", -0.5),
    ("loss.beta", -0.1),
    ("scaling.gain", 0.0),
    ("model.width", 0),
    ("data.sample_rate", 0),
    ("data.ppg.seconds", -1.0),
    ("data.ppg.train_recordings", 0),
])
def test_out_of_range(ppg, field, value):
    assert_rejected(set_path(ppg, field, value), field, str(value))


@pytest.mark.parametrize("value", [-1, 2**63])
def test_seed_out_of_range(ppg, value):
    assert_rejected(set_path(ppg, "seed", value), "seed", str(value))


def test_empty_name(ppg):
    assert_rejected(set_path(ppg, "name", ""), "name")


def test_range_low_above_high(ppg, ecg):
    assert_rejected(set_path(ppg, "data.ppg.heart_bpm", [110, 50]), "data.ppg.heart_bpm", "110")
    assert_rejected(set_path(ecg, "data.ecg.fetal_bpm", [160, 120]), "data.ecg.fetal_bpm", "160")
    assert_rejected(set_path(ecg, "data.ecg.noise_hz", [-0.1, 0.5]), "data.ecg.noise_hz", "-0.1")


def test_ecg_integration_rate_multiple(ecg):
    assert_rejected(set_path(ecg, "data.ecg.integration_rate", 500), "data.ecg.integration_rate", "500")


@pytest.mark.parametrize("field", ["patch.frequency_bins", "patch.frames"])
def test_patch_divisible_by_8(ppg, field):
    assert_rejected(set_path(ppg, field, 60), field, "60", "8")


def test_patch_zero(ppg):
    assert_rejected(set_path(ppg, "patch.frames", 0), "patch.frames", "0")


def test_window_longer_than_fft(ppg):
    assert_rejected(set_path(ppg, "stft.window", 256), "stft.window", "256")


def test_hop_above_half_window(ppg):
    assert_rejected(set_path(ppg, "stft.hop", 65), "stft.hop", "65")
    from_dict(set_path(set_path(ppg, "stft.hop", 64), "data.ppg.seconds", 120))  # exactly window/2 is allowed


def test_recordings_shorter_than_a_crop(ppg):
    assert_rejected(set_path(ppg, "data.ppg.seconds", 10), "data.ppg.seconds", "10")


def test_zero_heart_rate(ppg):
    assert_rejected(set_path(ppg, "data.ppg.heart_bpm", [0, 60]), "data.ppg.heart_bpm", "0")


def test_patch_more_bins_than_spectrum(ppg):
    assert_rejected(set_path(ppg, "patch.frequency_bins", 72), "patch.frequency_bins", "72", "65")


# ---- components and cross weights ----

def test_duplicate_components(ppg):
    assert_rejected(set_path(ppg, "data.components", ["heart", "heart"]), "data.components", "heart")


def test_component_not_of_source(ppg):
    assert_rejected(set_path(ppg, "data.components", ["heart", "fetal"]), "data.components", "'fetal'")


def test_no_components(ppg):
    assert_rejected(set_path(ppg, "data.components", []), "data.components")


def test_cross_not_square(ppg):
    assert_rejected(set_path(ppg, "loss.cross", [[0, 0.01]]), "loss.cross", "2x2")
    assert_rejected(set_path(ppg, "loss.cross", [[0, 0.01, 0], [0.01, 0, 0]]), "loss.cross", "2x2")


def test_cross_nonzero_diagonal(ppg):
    assert_rejected(set_path(ppg, "loss.cross", [[0, 0.01], [0.01, 0.5]]), "loss.cross[1][1]", "0.5")


def test_cross_negative(ppg):
    assert_rejected(set_path(ppg, "loss.cross", [[0, -0.1], [0.01, 0]]), "loss.cross[0][1]", "-0.1")


def test_source_section_missing(ppg):
    assert_rejected(delete_path(ppg, "data.ppg"), "data.ppg", "missing")


def test_other_source_section_given(ppg, ecg):
    raw = set_path(ppg, "data.ecg", ecg["data"]["ecg"])
    assert_rejected(raw, "data.ecg", "'ppg'")


# ---- Bach10: validation is pure (the data is checked when loaded, tests/test_bach10.py) ----

def test_fake_bach10_root_loads(fake_bach10):
    config = from_dict(fake_bach10)
    assert config.data.bach10.test_pieces == ("02-Second",)


def test_bach10_config_never_looks_at_the_data(fake_bach10, tmp_path, monkeypatch):
    missing = str(tmp_path / "nowhere")
    raw = set_path(set_path(fake_bach10, "data.bach10.root", missing), "data.bach10.test_pieces", ["03-Third"])
    monkeypatch.chdir(tmp_path)
    assert from_dict(raw).data.bach10.root == missing
    assert load_config(REPO / "configs" / "paper" / "bach10.json").data.bach10.test_pieces == ("09-Jesus", "10-NunBitten")


@pytest.mark.parametrize("pieces", [[], ["02-Second", "02-Second"], [""]])
def test_bach10_test_pieces_distinct_and_named(fake_bach10, pieces):
    assert_rejected(set_path(fake_bach10, "data.bach10.test_pieces", pieces), "data.bach10.test_pieces")


# ---- overrides ----

def test_override_int():
    config = load_config(REPO / "configs" / "paper" / "ppg.json", ["train.batch_size=8"])
    assert config.train.batch_size == 8 and type(config.train.batch_size) is int


def test_override_plain_string():
    raw = apply_overrides(shipped("bach10"), ["data.bach10.root=/some/path"])
    assert raw["data"]["bach10"]["root"] == "/some/path"


def test_override_string_loads(fake_bach10, tmp_path):
    other = tmp_path / "Other"
    for piece in ("01-A", "02-Second"):
        (other / piece).mkdir(parents=True)
    path = tmp_path / "bach10.json"
    path.write_text(json.dumps(fake_bach10))
    config = load_config(path, [f"data.bach10.root={other}"])
    assert config.data.bach10.root == str(other)


def test_override_matrix():
    config = load_config(REPO / "configs" / "paper" / "ppg.json", ["loss.cross=[[0,1],[0,0]]"])
    assert config.loss.cross == ((0.0, 1.0), (0.0, 0.0))
    assert config.loss.cross_matrix(2) == ((0.0, 1.0), (0.0, 0.0))


def test_override_does_not_touch_input(ppg):
    before = copy.deepcopy(ppg)
    apply_overrides(ppg, ["train.batch_size=8", "train.new.deep=1"])
    assert ppg == before


def test_override_unknown_key():
    with pytest.raises(ConfigError, match=r"train\.bogus"):
        load_config(REPO / "configs" / "paper" / "ppg.json", ["train.bogus=1"])
    with pytest.raises(ConfigError, match="nosuch"):
        load_config(REPO / "configs" / "paper" / "ppg.json", ["nosuch.section.key=1"])


@pytest.mark.parametrize("item", ["nokey", "=5", "\n=NaN", "data.=1", "train..epochs=2", "train.epochs =2"])
def test_override_malformed(item):
    with pytest.raises(ConfigError) as info:
        load_config(REPO / "configs" / "paper" / "ppg.json", [item])
    assert repr(item) in str(info.value)


def test_unknown_key_quoted_on_one_line(ppg):
    """A key that is not a field name (whitespace, newline, empty) is shown quoted, so the message stays one line."""
    assert_rejected(set_path(ppg, "train.\nx", 1), 'train."\\nx": unknown key')
    assert_rejected(set_path(ppg, "", 1), '"": unknown key')


def test_override_through_non_section():
    with pytest.raises(ConfigError, match="train.batch_size"):
        load_config(REPO / "configs" / "paper" / "ppg.json", ["train.batch_size.x=1"])


def test_override_invalid_value_named():
    with pytest.raises(ConfigError, match=r"train\.batch_size.*-2"):
        load_config(REPO / "configs" / "paper" / "ppg.json", ["train.batch_size=-2"])


def test_replace():
    config = load_config(REPO / "configs" / "paper" / "ppg.json")
    changed = config.replace(["train.batch_size=8", "seed=3"])
    assert (changed.train.batch_size, changed.seed) == (8, 3)
    assert (config.train.batch_size, config.seed) == (50, 0)
    assert changed.replace(["train.batch_size=50", "seed=0"]) == config
    with pytest.raises(ConfigError, match="train.batch_size"):
        config.replace(["train.batch_size=0"])


# ---- round trips, shipped configs, paper defaults ----

CONFIG_FILES = sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").rglob("*.json"))


@pytest.mark.parametrize("path", CONFIG_FILES)
def test_round_trip(path):
    raw = json.loads((REPO / path).read_text(encoding="utf-8"))
    config = from_dict(raw)
    assert from_dict(config.to_dict()) == config
    assert from_dict(json.loads(config.to_json())) == config
    plain = config.to_dict()
    plain["data"] = {k: v for k, v in plain["data"].items() if v is not None}  # other sources' sections: null
    assert plain == raw  # the shipped configs spell out every field


def test_round_trip_fake_bach10(fake_bach10):
    config = from_dict(fake_bach10)
    assert from_dict(config.to_dict()) == config


def test_frozen():
    config = load_config(REPO / "configs" / "paper" / "ppg.json")
    with pytest.raises(AttributeError):
        config.seed = 3


def test_crop_length_is_patch_frames():
    config = load_config(REPO / "configs" / "paper" / "ecg.json")
    length = config.crop_length
    frames = 1 + (length - config.stft.window) // config.stft.hop
    assert frames == config.patch.frames
    assert 1 + (length - 1 - config.stft.window) // config.stft.hop == config.patch.frames - 1


@pytest.mark.parametrize("name", ["ecg", "ppg", "bach10"])
def test_paper_configs_load(name, monkeypatch):
    """configs/paper/: the paper's settings (magnitude outputs, spectrogram MSE, its learning rates and batch)."""
    if name == "bach10" and not BACH10.is_dir():
        pytest.skip(f"Bach10 data not found at {BACH10}")
    monkeypatch.chdir(REPO)  # the bach10 root is relative to the repository root
    config = load_config(f"configs/paper/{name}.json")
    assert isinstance(config, Config)
    assert config.name == name and config.data.source == name
    assert config.loss.cross_matrix(len(config.components)) == ((0.0, 0.01), (0.01, 0.0))
    assert (config.loss.alpha, config.loss.beta) == (0.9, 0.1)
    assert (config.train.ae_learning_rate, config.train.d_learning_rate) == (1e-5, 1e-6)
    assert config.train.batch_size == 50
    assert (config.model.output, config.model.input, config.model.input_rms) == ("magnitude", "magnitude", None)
    assert config.loss.reconstruction.spectrum == 1.0 and config.loss.reconstruction.waveform == 0.0
    assert config.data.mixture_domain == "waveform"


@pytest.mark.parametrize("name", ["ecg", "ppg", "bach10"])
def test_best_configs_differ_from_the_paper_only_where_measured(name):
    """configs/: the paper's CASS (same task, STFT, patch, loss weights) with the settings docs/results/phase.md
    and training.md measured best: complex masks, level normalisation, spectral-norm discriminators."""
    best = json.loads((REPO / "configs" / f"{name}.json").read_text(encoding="utf-8"))
    paper = json.loads((REPO / "configs" / "paper" / f"{name}.json").read_text(encoding="utf-8"))
    for section in ("name", "seed", "stft", "patch", "scaling"):
        assert best[section] == paper[section], section
    for key in ("mode", "alpha", "beta", "cross"):
        assert best["loss"][key] == paper["loss"][key], key
    model = from_dict(best).model
    assert (model.output, model.input, model.input_rms, model.discriminator_norm) == (
        "complex_mask", "complex", 1.0, "spectral")


def test_quick_config_is_the_shipped_ppg_config_made_small():
    """configs/quick/ppg.json (the README's first command) is configs/ppg.json but for how much it trains on and where
    it writes: 12 x 20 steps, 16 training and 4 test recordings, no validation split, runs/ppg-quick."""
    quick = flatten(load_config(REPO / "configs" / "quick" / "ppg.json").to_dict())
    shipped = flatten(load_config(REPO / "configs" / "ppg.json").to_dict())
    changed = {k: quick[k] for k in quick if quick[k] != shipped[k]}
    assert changed == {"train.epochs": "12", "train.steps_per_epoch": "20", "data.ppg.train_recordings": "16",
                       "data.ppg.test_recordings": "4", "data.validation_recordings": "0",
                       "output.model_dir": '"runs/ppg-quick"'}


@pytest.mark.parametrize("name", ["ecg", "ppg"])
def test_best_biosignal_configs_train_on_realistic_data(name):
    params = getattr(from_dict(json.loads((REPO / "configs" / f"{name}.json").read_text())).data, name)
    assert params.morphology_jitter > 0 and params.noise_snr_db is not None
    if name == "ecg":
        assert params.polarity_flip
        assert None not in (params.wander_amplitude, params.powerline_amplitude, params.fetal_hr_std)
    else:
        assert None not in (params.amplitude_modulation, params.frequency_modulation, params.scale)


def test_dataclass_defaults_follow_paper():
    loss, train = LossConfig(), TrainConfig()
    assert (loss.mode, loss.alpha, loss.beta) == ("cass_cross", 0.9, 0.1)
    assert (train.ae_learning_rate, train.d_learning_rate, train.batch_size, train.epochs) == (1e-5, 1e-6, 50, 500)


def test_defaults_fill_omitted_sections(ppg):
    raw = {k: v for k, v in ppg.items() if k not in ("loss", "train", "scaling", "model", "output")}
    config = from_dict(raw)
    assert config.loss == LossConfig() and config.train == TrainConfig()


@pytest.mark.parametrize("k", [2, 3, 4])
def test_cross_matrix_by_mode(k):
    expected = tuple(tuple(0.0 if i == j else 0.01 for j in range(k)) for i in range(k))
    zeros = tuple((0.0,) * k for _ in range(k))
    assert LossConfig(mode="cass_cross").cross_matrix(k) == expected
    assert LossConfig(mode="cass").cross_matrix(k) == zeros
    assert LossConfig(mode="baseline").cross_matrix(k) == zeros


def test_cross_matrix_given_weights_only_in_cross_mode():
    given = ((0.0, 0.5), (0.25, 0.0))
    assert LossConfig(mode="cass_cross", cross=given).cross_matrix(2) == given
    assert LossConfig(mode="cass", cross=given).cross_matrix(2) == ((0.0, 0.0), (0.0, 0.0))


def test_cross_matrix_from_config_modes():
    for mode in ("baseline", "cass"):
        config = load_config(REPO / "configs" / "paper" / "ppg.json", [f"loss.mode={mode}"])
        assert config.loss.cross_matrix(2) == ((0.0, 0.0), (0.0, 0.0))
    config = load_config(REPO / "configs" / "paper" / "ppg.json", ["loss.cross=[]"])
    assert config.loss.cross_matrix(2) == ((0.0, 0.01), (0.01, 0.0))
