"""Scale equivariance (model.input_rms): separate(c * x) == c * separate(x) for exported models, the shipped ones
included, with silence and constant inputs; blocks of a long input use the whole input's level; the shipped models'
re-export (format 2, weights unchanged) gives what the format-1 export gave at their reference level."""

import os

import numpy as np
import pytest
import tensorflow as tf

import cass_tf
from cass_tf import contract
from cass_tf.config import load_config
from cass_tf.export import export
from cass_tf.exporting import reexport
from cass_tf.models.cass import CASSModel
from conftest import REPO, TINY, assert_close, signal

SCALES = (1e-4, 3e-3, 1.0, 70.0, 1e4)
SHIPPED = {"ecg": 0.2733, "ppg": 0.5221}  # version 1's model.input_rms: the median mixture RMS of its training data
VERSIONS = [f"{name}/{v}" for name in sorted(SHIPPED)
            for v in contract.versions(os.path.join(REPO, "saved_models", name))]
SMALL = ["model.width=2", "patch.frequency_bins=16", "patch.frames=16", "stft.n_fft=32", "stft.window=32", "stft.hop=8"]
TINY_MODELS = {"complex": (REPO / "configs" / "ppg.json", TINY), "best_ecg": (REPO / "configs" / "ecg.json", SMALL)}


class Separators(dict):
    """Separators of every shipped model version and of untrained tiny models with the settings of
    configs/ppg.json ("complex": complex masks, consistency projection, normalised to RMS 1) and configs/ecg.json
    ("best_ecg"), each exported and loaded on first use (under pytest-xdist a worker builds only the ones its tests
    use)."""

    def __init__(self, tmp_path_factory):
        super().__init__()
        self.tmp_path_factory = tmp_path_factory

    def __missing__(self, which):
        if which in TINY_MODELS:
            path = export(CASSModel(load_config(*TINY_MODELS[which])), self.tmp_path_factory.mktemp(which) / "tiny")
        elif which == "complex_dc":  # "complex"'s weights, exported again with model.remove_dc
            path = reexport(self["complex"].source, ["model.remove_dc=true"])
        else:
            path = os.path.join(REPO, "saved_models", which)
        self[which] = cass_tf.Separator(path)
        return self[which]


@pytest.fixture(scope="module")
def separators(tmp_path_factory):
    return Separators(tmp_path_factory)


def assert_scaled(actual, expected, scale, tolerance=1e-4):
    """actual == scale * expected to `tolerance` of the larger output's peak."""
    peak = max(float(np.abs(scale * expected).max()), 1e-30)
    np.testing.assert_allclose(actual, scale * expected, rtol=0, atol=tolerance * peak)


@pytest.mark.slow  # trains or runs a real model for tens of seconds
@pytest.mark.parametrize("which", ["complex", "best_ecg", *VERSIONS])
def test_separation_is_scale_equivariant(separators, which):
    """To the rounding of the export's arithmetic: float32 within 1e-4 of the peak (measured: ~1e-6); a bfloat16
    export (output.precision mixed_bfloat16) within 2e-2, a few of bfloat16's 2**-8 relative steps (measured on
    ecg/3: up to 0.0056), since c * x brought to the model's level differs from x in the last float32 bit, which can
    move a network input across a bfloat16 rounding step."""
    separator = separators[which]
    tolerance = 2e-2 if separator.config.output.precision == "mixed_bfloat16" else 1e-4
    x = signal(separator.sample_rate * 12, rate=separator.sample_rate)
    base = separator(x)
    assert all(np.abs(v).max() > 0 for v in base.values())
    for c in SCALES:
        scaled = separator(c * x)
        for name in separator.components:
            assert_scaled(scaled[name], base[name], c, tolerance)


@pytest.mark.parametrize("which", ["complex", "best_ecg", "ecg/1"])
def test_silence_and_constant_inputs(separators, which):
    separator = separators[which]
    samples = separator.sample_rate * 5
    silent = separator(np.zeros(samples, np.float32))
    assert all(np.array_equal(v, np.zeros(samples, np.float32)) for v in silent.values())
    constant = separator(np.full(samples, 0.5, np.float32))
    assert all(np.isfinite(v).all() for v in constant.values())
    for c in (1e-4, 1e4):
        scaled = separator(np.full(samples, 0.5 * c, np.float32))
        for name in separator.components:
            assert_scaled(scaled[name], constant[name], c)


def test_serving_default_is_the_level_signature_at_the_rows_own_level(separators):
    loaded = separators["complex"]._loaded.keep
    x = np.stack([signal(900), 1e3 * signal(900, seed=1)])
    rms = np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=1)).astype(np.float32)
    own = loaded.signatures[contract.SERVING_SIGNATURE](waveform=tf.constant(x))
    given = loaded.signatures[contract.LEVEL_SIGNATURE](waveform=tf.constant(x), level=tf.constant(rms))
    halved = loaded.signatures[contract.LEVEL_SIGNATURE](waveform=tf.constant(x), level=tf.constant(rms / 2))
    for name in own:
        assert_close(given[name].numpy(), own[name].numpy())
        assert not np.allclose(halved[name].numpy(), own[name].numpy(), rtol=0, atol=1e-3 * np.abs(own[name]).max())


def test_best_ppg_settings_give_estimates_that_sum_to_the_mixture(separators):
    """configs/ppg.json projects the complex estimates onto the mixture (model.consistency "project")."""
    separator = separators["complex"]
    t = np.arange(separator.sample_rate * 12) / separator.sample_rate
    # inside the patch's frequency bins (the networks never see the bins above them, so no estimate holds those)
    x = (np.sin(2 * np.pi * 1.3 * t) + 0.4 * np.sin(2 * np.pi * 5.1 * t + 1) + 0.2 * np.cos(2 * np.pi * 11 * t))
    x = x.astype(np.float32)
    parts = separator(x)
    inner = slice(32, -32)  # one STFT window (TINY's n_fft) at each end: too little window overlap to invert exactly
    assert_close((parts["heart"] + parts["respiratory"])[inner], x[inner], tolerance=1e-4)  # float32 STFT round trip
    assert np.abs(parts["heart"]).max() > 0.05 and np.abs(parts["respiratory"]).max() > 0.05  # a real split


@pytest.mark.parametrize("which", ["complex", "ecg/1"])
def test_blocks_use_the_whole_signals_level(separators, which):
    separator = separators[which]
    rate = separator.sample_rate
    x = signal(rate * 60, rate=rate)
    x[: rate * 20] *= 30.0  # blocks of very different levels: a block's own level would change its output
    blocks = separator.blocks(len(x), block_seconds=15)
    assert len(blocks) >= 3
    whole = separator.process(x, block_seconds=None)
    blocked = separator.process(x, block_seconds=15)
    for name in separator.components:
        assert_close(blocked[name], whole[name])


def test_remove_dc_separates_the_rows_less_their_mean(separators):
    """model.remove_dc: separate(x + c) is the same model's separate(x - mean(x)) without it (centred in NumPy), one
    shot (the Separator, and the export's serving_default as TF Serving runs it) and in blocks of a long row whose
    parts differ in level, for offsets far above and below the signal."""
    plain, dc = separators["complex"], separators["complex_dc"]
    assert dc.config.model.remove_dc and not plain.config.model.remove_dc
    rate = plain.sample_rate
    x = signal(rate * 60, rate=rate)
    x[: rate * 20] *= 30.0
    for offset in (-0.5, 40.0, 3e3):
        shifted = (x + offset).astype(np.float32)
        expected = plain((shifted.astype(np.float64) - shifted.astype(np.float64).mean()).astype(np.float32))
        served = dc._loaded.keep.signatures[contract.SERVING_SIGNATURE](waveform=tf.constant(shifted[np.newaxis]))
        # offsets above the signal cost float32 digits in x + c itself: tolerance relative to the offset
        tolerance = 1e-4 * max(1.0, abs(offset) / np.abs(x).max())
        for outputs in (dc(shifted), dc.process(shifted, block_seconds=15), {n: v.numpy()[0] for n, v in served.items()}):
            for name in plain.components:
                assert_close(outputs[name], expected[name], tolerance=tolerance)
    # without model.remove_dc the largest offset moves the outputs (the check above is not vacuous)
    assert not np.allclose(plain(shifted)["heart"], expected["heart"], atol=1e-2 * np.abs(expected["heart"]).max())


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_reexport_gives_the_format_1_outputs(separators, name):
    """tests/data/shipped_v1_outputs.npz: the format-1 exports' outputs, computed before the re-export, for a signal
    at the model's reference level (where the level normalisation is the identity up to float32 round-off)."""
    golden = np.load(os.path.join(REPO, "tests", "data", "shipped_v1_outputs.npz"))
    base = os.path.join(REPO, "saved_models", name)
    asset = contract.read_asset(os.path.join(base, "1"))
    assert asset.format_version == 2 and asset.config.model.input_rms == SHIPPED[name]
    x = golden[f"{name}_input"]
    assert abs(np.sqrt(np.mean(x.astype(np.float64) ** 2)) - SHIPPED[name]) < 1e-6
    separator = separators[f"{name}/1"]
    for c in (1.0, 1e-3, 1e3):
        parts = separator(c * x)
        for component in asset.components:
            assert_scaled(parts[component], golden[f"{name}_{component}"], c, tolerance=1e-5)
