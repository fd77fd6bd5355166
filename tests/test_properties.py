"""Property-based tests (hypothesis) of the bad-input contract: generated configs, `--set` overrides, arrays, files
and model directories either work (finite outputs of the documented shapes) or raise one documented exception
(ConfigError, ValueError, FileNotFoundError, TypeError) whose message names the field or argument; nothing else.

Profiles (tests/conftest.py): "ci" by default (bounded, derandomized), HYPOTHESIS_PROFILE=thorough for more.
"""

import copy
import dataclasses
import json
import math
import os
import re
import shutil
import tempfile
import typing
import warnings

import numpy as np
import pytest
import soundfile as sf
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from cass_tf.config import Config, ConfigError, from_dict, load_config
from conftest import NAMES, RATE, REPO, signal

CONFIGS = {name: json.loads((REPO / "configs" / "paper" / f"{name}.json").read_text()) for name in ("ecg", "ppg", "bach10")}
DOCUMENTED = (ConfigError, ValueError, FileNotFoundError, TypeError)
CHEAP = settings(max_examples=5 * settings.default.max_examples)  # pure-Python checks: many more examples
SLOW = settings(max_examples=max(8, settings.default.max_examples // 2))  # an example may load a SavedModel


def schema(cls: type = Config, prefix: str = "") -> dict[str, typing.Any]:
    """{dotted path: type hint} of every field of the config schema, sections included."""
    paths = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path, hint = prefix + f.name, hints[f.name]
        paths[path] = hint
        inner = [a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)] or [hint]
        if dataclasses.is_dataclass(inner[0]):
            paths.update(schema(inner[0], path + "."))
    return paths


SCHEMA = set(schema())
FLOAT_FIELDS = sorted(path for path, hint in schema().items() if "float" in str(hint))  # floats, ranges, matrices


def leaves(tree: typing.Any, prefix: str = "") -> list[str]:
    """Dotted paths of every key (sections and leaves) of a nested dict."""
    paths = []
    for key, value in tree.items():
        paths.append(prefix + key)
        if isinstance(value, dict):
            paths += leaves(value, f"{prefix}{key}.")
    return paths


def assert_names_a_field(message: str, touched: set[str]) -> None:
    """A one-line message opening with a schema field path (indices allowed) or a path the test touched."""
    assert "\n" not in message, message
    head = re.sub(r"\[\d+\]", "", message.split(": ")[0])
    assert head in SCHEMA or any(head == t or head.startswith(t + ".") for t in touched), f"{message!r} names no field"


def assert_finite_floats(value: typing.Any, path: str = "") -> None:
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            assert_finite_floats(getattr(value, f.name), f"{path}.{f.name}")
    elif isinstance(value, tuple):
        for item in value:
            assert_finite_floats(item, path)
    elif isinstance(value, float):
        assert math.isfinite(value), f"{path} = {value} accepted"


# ---- configs ----

# sampled_from hands out the same list/dict objects every time: copy a drawn value before mutating around it
HOSTILE = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0, -1, 1, 2, 7, 0.5, -0.0, 1e308, 2**63, -2**63, 10**400, True,
                     False, None, "", "x", "ecg", [], {}, [1], [1, 2], [2, 1], [0.1, math.nan], [1, 2, 3],
                     [[0, 1], [1, 0]], [[0, math.inf], [0, 0]], [[0]], {"a": 1}]),
    st.integers(), st.floats(), st.text(max_size=6),
    st.lists(st.one_of(st.integers(-3, 300), st.floats()), max_size=4),
)


@st.composite
def mutated_configs(draw) -> tuple[dict, set[str]]:
    """A shipped config with 1-3 mutations: a field set to a hostile value, a key deleted, an unknown key added, a
    list lengthened or cut. Returns (raw, dotted paths touched)."""
    raw = copy.deepcopy(CONFIGS[draw(st.sampled_from(sorted(CONFIGS)))])
    touched = set()
    for _ in range(draw(st.integers(1, 3))):
        paths = leaves(raw)
        path = draw(st.sampled_from(paths + sorted(SCHEMA - set(paths))))
        *parents, last = path.split(".")
        node = raw
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        action = draw(st.sampled_from(["set", "set", "delete", "unknown", "resize"]))
        if action == "delete":
            node.pop(last, None)
        elif action == "unknown":
            last = draw(st.sampled_from(["bogus", "Seed", "sample_rate_hz", "", "a b", "\n"]))
            node[last] = copy.deepcopy(draw(HOSTILE))
            last = last if last.isidentifier() else json.dumps(last)  # as the message quotes it
        elif action == "resize" and isinstance(node.get(last), list):
            value = node[last]
            node[last] = value[:draw(st.integers(0, max(0, len(value) - 1)))] if draw(st.booleans()) \
                else value + value[:1] + [copy.deepcopy(draw(HOSTILE))]
        else:
            node[last] = copy.deepcopy(draw(HOSTILE))
        touched.add(".".join([*parents, last]))
    return raw, touched


@CHEAP
@given(case=mutated_configs())
def test_config_contract(case):
    raw, touched = case
    try:
        config = from_dict(raw)
    except ConfigError as e:
        assert_names_a_field(str(e), touched)
        return
    assert_finite_floats(config)
    assert from_dict(config.to_dict()) == config  # what was accepted round-trips


@CHEAP
@given(name=st.sampled_from(sorted(CONFIGS)), shape=st.sampled_from(["[]", "null", "1", '"x"', "NaN", "{"]))
def test_config_file_not_an_object(tmp_path_factory, name, shape):
    path = tmp_path_factory.getbasetemp() / f"{name}_bad.json"
    path.write_text(shape)
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_config(path)


KEYS = st.one_of(
    st.sampled_from(sorted(SCHEMA)),
    st.lists(st.sampled_from(["data", "ppg", "train", "loss", "cross", "seed", "x", "", "0"]), min_size=1,
             max_size=4).map(".".join),
    st.text(max_size=8),
)
VALUES = st.one_of(
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "nan", "null", "true", "[]", "{}", "[1, 2]",
                     "[0.1, NaN]", "[[0, 1], [0, 0]]", "-1", "0", "1.5", '"x"', "", "=", "64", "1e-3"]),
    st.text(max_size=10), st.integers().map(str), st.floats().map(repr),
)
NON_FINITE = st.tuples(st.sampled_from(FLOAT_FIELDS), st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999",
                                                                   "[0.1, NaN]", "[[0, NaN], [0, 0]]"]))
OVERRIDES = st.lists(st.one_of(st.tuples(KEYS, VALUES).map("=".join), NON_FINITE.map("=".join),
                               st.text(max_size=12)), min_size=1, max_size=3)


@CHEAP
@given(items=OVERRIDES)
def test_override_contract(items):
    """`--set` strings on the shipped PPG config: a valid config, or a ConfigError naming the file and then the
    override or a field."""
    path = REPO / "configs" / "paper" / "ppg.json"
    try:
        config = load_config(path, items)
    except ConfigError as e:
        message = str(e)
        assert message.startswith(f"{path}: "), message
        rest = message[len(f"{path}: "):]
        if any(rest.startswith(f"override {item!r}") for item in items):
            return
        keys = {item.partition("=")[0] for item in items}
        assert_names_a_field(rest, {".".join(k.split(".")[:n]) for k in keys for n in range(1, k.count(".") + 2)})
        return
    assert_finite_floats(config)


# ---- arrays and files ----

# Repeated entries weight the draws toward inputs that should work, so both sides of the contract are exercised.
DTYPES = [np.float32] * 6 + [np.float64] * 4 + [np.float16, np.longdouble, np.int16, np.int32, np.uint8, np.bool_,
                                                np.complex64, np.complex128, object]
SCALES = [1.0] * 6 + [0.0, 1e-300, 1e-30, 1e-6, 1e6, 1e30, 1e36, 3e38, 1e300]
SPECIALS = [math.nan, math.inf, -math.inf, 1e300, -1e300, 3.4e38, 1e-320]


@st.composite
def arrays(draw, max_samples: int = 3000) -> np.ndarray:
    """A signal-like array of a drawn dtype, shape (0-D to 3-D, 0 to ~3 blocks long), scale and special values."""
    ndim = draw(st.sampled_from([1, 1, 1, 2, 2, 0, 3]))
    samples = draw(st.one_of(st.integers(0, 40), st.integers(0, max_samples)))
    lead = [draw(st.integers(0, 3)) for _ in range(max(0, ndim - 1))]
    shape = tuple(lead + [samples])[-ndim:] if ndim else ()
    base = np.resize(signal(max(samples, 1)), shape).astype(np.float64) * draw(st.sampled_from(SCALES))
    if ndim == 2 and draw(st.booleans()):
        base = base.T  # (samples, channels): refused when it clearly is that
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2])) if base.size else 0):
        base.flat[draw(st.integers(0, base.size - 1))] = draw(st.sampled_from(SPECIALS))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # casting 1e300 to float32 or int is part of making the hostile input
        return base.astype(draw(st.sampled_from(DTYPES)))


def expected_shape(x: np.ndarray, mono: bool = False) -> tuple[int, ...]:
    """The documented output shape of `separate` for an accepted array: the input's, (samples,) or (channels,
    samples) (each channel separated); (samples,) with `mono` (channels averaged first)."""
    return (x.shape[-1],) if mono else x.shape


def assert_outputs(out: dict, shape: tuple[int, ...]) -> None:
    assert tuple(out) == NAMES
    for name, value in out.items():
        assert value.dtype == np.float32 and value.shape == shape, (name, value.dtype, value.shape, shape)
        assert np.isfinite(value).all(), f"non-finite {name!r} output"


def call_quietly(function: typing.Callable, *args, **kwargs) -> typing.Any:
    """function(...) or the exception it raised, asserting that no RuntimeWarning (e.g. NumPy overflow) escaped."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = function(*args, **kwargs)
        except DOCUMENTED as e:
            result = e
    runtime = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not runtime, runtime
    if isinstance(result, Exception):  # what `--hypothesis-show-statistics` tallies
        event(f"{type(result).__name__}: {re.sub(r'[0-9]+', 'N', str(result).split(': ')[-1][:40])}")
    else:
        event("accepted")
    return result


RATES = st.sampled_from([None] * 8 + [RATE, 2 * RATE, 32, 44100, 64.0, np.int64(128), 0, -1, 1.5, math.nan,
                                     math.inf, "64", True, 10**9])
BLOCKS = st.sampled_from([None, 1.0, 1.0, 5.0, 60.0, 60.0, 0, -1.0, math.nan, "10"])


@settings(max_examples=4 * settings.default.max_examples)
@given(x=arrays(), rate=RATES, block_seconds=BLOCKS, mono=st.booleans())
def test_separate_array_contract(tiny_separator, x, rate, block_seconds, mono):
    from cass_tf.separation import separate

    result = call_quietly(separate, x, tiny_separator, sample_rate=rate, block_seconds=block_seconds, mono=mono)
    if isinstance(result, Exception):
        assert str(result).startswith(("mixture: ", "sample_rate ", "block_seconds ")), repr(result)
        return
    assert_outputs(result, expected_shape(x, mono))


@st.composite
def valid_arrays(draw) -> np.ndarray:
    """Finite float arrays the documented contract accepts: (samples,) or (channels, samples), 1 to ~3 blocks."""
    samples = draw(st.integers(1, 3000))
    shape = (samples,) if draw(st.booleans()) else (draw(st.integers(1, 3)), samples)
    scale = draw(st.sampled_from([1.0, 1.0, 1e-30, 1e-6, 1e6, 1e30]))
    return (np.resize(signal(samples, seed=samples), shape) * scale).astype(draw(st.sampled_from(
        [np.float32, np.float64, np.float16] if scale <= 1e4 else [np.float32, np.float64])))


@given(x=valid_arrays(), rate=st.sampled_from([None, RATE, 2 * RATE, 48]), block_seconds=st.sampled_from([1.0, 5.0]))
def test_separate_valid_arrays(tiny_separator, x, rate, block_seconds):
    """What the contract accepts always works: finite float32 outputs of the input's shape, and blocks (the
    module doc's exactness claim) equal the one-shot result to 1e-5 of the output scale at every length."""
    from cass_tf.separation import separate

    blocked = call_quietly(separate, x, tiny_separator, sample_rate=rate, block_seconds=block_seconds)
    assert isinstance(blocked, dict), blocked
    assert_outputs(blocked, x.shape)
    whole = separate(x, tiny_separator, sample_rate=rate, block_seconds=None)
    for name in NAMES:
        scale = max(1e-3 * float(np.abs(x).max()), float(np.abs(whole[name]).max()))
        np.testing.assert_allclose(blocked[name], whole[name], rtol=0, atol=1e-5 * scale)


@given(items=st.lists(arrays(max_samples=600), min_size=0, max_size=3))
def test_separate_list_contract(tiny_separator, items):
    from cass_tf.separation import separate

    from cass_tf.checks import load_mixture

    result = call_quietly(separate, items, tiny_separator, block_seconds=1.0)
    if isinstance(result, Exception):
        assert re.match(r"mixture(\[\d\])?: ", str(result)), repr(result)
        if str(result).startswith("mixture["):  # every item is checked before any is separated
            index = int(str(result)[8])
            for item in items[:index]:
                load_mixture(item, None, "item")
        return
    assert isinstance(result, list) and len(result) == len(items)
    for x, out in zip(items, result):
        assert_outputs(out, expected_shape(x))


@settings(max_examples=2 * settings.default.max_examples)
@given(x=arrays(max_samples=600))
def test_separator_call_contract(tiny_separator, x):
    """`Separator(model)(waveform)`: (samples,) or (batch, samples) in, the same shape out, errors name `waveform`."""
    result = call_quietly(tiny_separator, x)
    if isinstance(result, Exception):
        assert str(result).startswith("waveform: "), repr(result)
        return
    assert_outputs(result, x.shape)


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    """Hostile and good files by name: {name: path} (see the cases below)."""
    folder = tmp_path_factory.mktemp("hostile_files")
    x = signal(700)
    files = {"missing": folder / "missing.wav", "directory": folder / "dir.wav"}
    files["directory"].mkdir()
    for name, data, rate, subtype in (("good", x, RATE, "FLOAT"), ("stereo", np.stack([x, -x]).T, 2 * RATE, "PCM_16"),
                                      ("nan", np.where(np.arange(700) == 5, np.nan, x), RATE, "FLOAT"),
                                      ("empty", np.zeros(0, np.float32), RATE, "FLOAT"),
                                      ("huge", np.full(700, 3e38, np.float32), RATE, "FLOAT"),
                                      ("fast", x, 2_000_000, "FLOAT")):
        files[name] = folder / f"{name}.wav"
        sf.write(files[name], data, rate, subtype=subtype)
    files["truncated"] = folder / "truncated.wav"
    files["truncated"].write_bytes(files["good"].read_bytes()[:-100])
    files["text"] = folder / "text.wav"
    files["text"].write_text("RIFF, but not really")
    files["header_only"] = folder / "header_only.wav"
    files["header_only"].write_bytes(files["good"].read_bytes()[:44])
    return files


GOOD_FILES = {"good": (700,), "stereo": (2, 700)}  # output shapes


@given(names=st.lists(st.sampled_from(["missing", "directory", "good", "stereo", "nan", "empty", "huge", "fast",
                                       "truncated", "text", "header_only"]), min_size=1, max_size=3),
       as_list=st.booleans(), rate=st.sampled_from([None, RATE, 2 * RATE]))
def test_separate_file_contract(tiny_separator, audio_files, names, as_list, rate):
    """Files: only complete, readable, finite audio at a sane rate is separated; other errors name the file."""
    from cass_tf.separation import separate

    names = names if as_list else names[:1]
    paths = [audio_files[n] for n in names]
    result = call_quietly(separate, paths if as_list else paths[0], tiny_separator, sample_rate=rate)
    if isinstance(result, Exception):
        message = str(result)
        assert any(str(p) in message for p in paths) or message.startswith("mixture"), message
        assert rate is not None or any(n not in GOOD_FILES for n in names), f"{names} refused: {message}"
        return
    assert all(n in GOOD_FILES for n in names), f"{names} accepted"
    for n, out in zip(names, result if as_list else [result]):
        assert_outputs(out, GOOD_FILES[n])


@given(names=st.lists(st.sampled_from(sorted(["missing", "directory", "good", "nan", "empty", "fast", "truncated",
                                              "text", "header_only"])), min_size=0, max_size=3))
def test_check_audio_files_contract(audio_files, names):
    """The CLI's up-front file check: passes only complete, finite audio of distinct stems, else names a file."""
    from cass_tf.checks import check_audio_files

    paths = [audio_files[n] for n in names]
    result = call_quietly(check_audio_files, paths)
    if isinstance(result, Exception):
        assert not names and "no input files" in str(result) or any(str(p) in str(result) for p in paths), result
    else:
        assert names == ["good"]
        (x, rate), = result
        assert rate == RATE and x.shape == (700,) and np.isfinite(x).all()


# ---- model directories ----

ASSET_PATHS = ["format_version", "sample_rate", "components", "stft", "stft.hop", "patch", "patch.frames",
               "scaling", "max_patches", "config", "config.data.sample_rate", "config.stft.n_fft", "config.patch",
               "config.loss.alpha", "config.name", "config.data.components", "signatures"]


@st.composite
def hostile_model_dirs(draw) -> tuple[str, typing.Any]:
    """(what to do, argument) to a copy of the export: corrupt or mutate its asset, or delete a file."""
    return draw(st.one_of(
        st.tuples(st.just("asset_bytes"), st.binary(max_size=40)),
        st.tuples(st.just("asset_json"), st.sampled_from(["[]", "null", "1", '"x"', "{}", "NaN"])),
        st.tuples(st.just("asset_field"), st.tuples(st.sampled_from(ASSET_PATHS), HOSTILE)),
        st.tuples(st.just("asset_delete"), st.sampled_from(ASSET_PATHS)),
        st.tuples(st.just("remove"), st.sampled_from(["assets/cass_config.json", "saved_model.pb", "variables",
                                                      "variables/variables.index", "fingerprint.pb"])),
    ))


@SLOW
@given(case=hostile_model_dirs())
@example(case=("remove", "fingerprint.pb"))  # harmless changes: the model must still load and separate
@example(case=("asset_field", ("signatures", None)))
def test_hostile_model_dir_contract(tiny_export, case):
    """A model directory is untrusted input: it loads and separates, or one error names the file or directory."""
    from cass_tf.separation import Separator

    action, argument = case
    with tempfile.TemporaryDirectory() as folder:
        copy_dir = os.path.join(folder, "1")
        shutil.copytree(tiny_export, copy_dir)
        asset = os.path.join(copy_dir, "assets", "cass_config.json")
        if action == "asset_bytes":
            with open(asset, "wb") as f:
                f.write(argument)
        elif action == "asset_json":
            with open(asset, "w") as f:
                f.write(argument)
        elif action in ("asset_field", "asset_delete"):
            with open(asset) as f:
                raw = json.load(f)
            path = argument[0] if action == "asset_field" else argument
            *parents, last = path.split(".")
            node = raw
            for part in parents:
                node = node[part]
            if action == "asset_field":
                node[last] = argument[1]
            else:
                del node[last]
            with open(asset, "w") as f:
                json.dump(raw, f)
        else:
            target = os.path.join(copy_dir, argument)
            shutil.rmtree(target) if os.path.isdir(target) else os.remove(target)
        result = call_quietly(Separator, copy_dir)
        if isinstance(result, Exception):
            assert isinstance(result, (ValueError, FileNotFoundError)), repr(result)
            assert "\n" not in str(result) and (asset in str(result) or copy_dir in str(result)), str(result)
            return
        assert_outputs(result(signal(300)), (300,))


# ---- biosignal files (cass_tf.records): cut, corrupted and mutated EDF and CSV ----

@pytest.fixture(scope="module")
def biosignal_files(tmp_path_factory):
    """A valid EDF+ (2 channels, 10 s at RATE) and CSV, as bytes."""
    pyedflib = pytest.importorskip("pyedflib")
    folder = tmp_path_factory.mktemp("biosignal")
    writer = pyedflib.EdfWriter(str(folder / "good.edf"), 2, pyedflib.FILETYPE_EDFPLUS)
    writer.setSignalHeaders([{"label": n, "dimension": "mV", "sample_frequency": RATE, "physical_min": -5.0,
                              "physical_max": 5.0, "digital_min": -32768, "digital_max": 32767, "transducer": "",
                              "prefilter": ""} for n in ("PLETH", "II")])
    writer.writeSamples([signal(10 * RATE).astype(np.float64), np.zeros(10 * RATE)])
    writer.close()
    rows = ["Time [s],PLETH,II"] + [f"{i / RATE!r},{v!r},0.5" for i, v in enumerate(signal(300).tolist())]
    return {"edf": (folder / "good.edf").read_bytes(), "csv": "\n".join(rows).encode() + b"\n"}


@CHEAP
@given(kind=st.sampled_from(["edf", "csv"]), cut=st.one_of(st.none(), st.integers(0, 4000)),
       edits=st.lists(st.tuples(st.integers(0, 1500), st.binary(min_size=1, max_size=8)), max_size=3))
def test_hostile_biosignal_file_contract(biosignal_files, kind, cut, edits):
    """A biosignal file cut short or with bytes overwritten (in the header, or in the first CSV rows) is read into a
    checked Record (finite samples, positive rates, distinct names) or refused by one ValueError naming the file."""
    from cass_tf import records

    data = biosignal_files[kind]
    for offset, patch in edits:
        data = data[:offset] + patch + data[offset + len(patch):]
    data = data if cut is None else data[:cut]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"x.{kind}")
        with open(path, "wb") as f:
            f.write(data)
        result = call_quietly(records.read_record, path)
    if isinstance(result, Exception):
        assert isinstance(result, ValueError) and path in str(result), repr(result)
        assert "\n" not in str(result).strip(), repr(result)
        event(f"{kind}: refused")
        return
    event(f"{kind}: read")
    assert len(set(result.names)) == len(result.names) and all(r > 0 for r in result.rates)
    assert all(np.isfinite(x).all() and x.size for x in result.signals)
