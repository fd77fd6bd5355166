"""Tests for the bench scripts: they run with the shipped configs (one tiny step each), parse their arguments, and
what they print is self-consistent (samples/s, FLOP/step and FLOP/s agree; the JSON holds what was printed)."""

import json
import re
import sys

import numpy as np
import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))

TINY = ["--set", "patch.frequency_bins=16", "--set", "patch.frames=16", "--width", "2", "--batch", "2"]
LINE = re.compile(r"(?P<rate>[\d.]+) ± [\d.]+ samples/s .*?, (?P<flop>[\d.]+) GFLOP/step, (?P<achieved>[\d.]+) GFLOP/s "
                  r"= (?P<fraction>[\d.]+) of bf16 matmul, x(?P<speedup>[\d.]+) of float32 graph")


@pytest.mark.slow  # trains or runs a real model for tens of seconds
def test_bench_train_runs_the_shipped_config_in_both_precisions(tmp_path, capsys, monkeypatch):
    import bench_train

    # The matmul references at small sizes: the checks below are about consistency, whatever the reference is
    # (the bench's own 2048 and 4096 take about 12 s of CPU here, 256 and 512 0.2 s).
    monkeypatch.setattr(bench_train, "MATMUL_SIZES", (256, 512))
    raw = tmp_path / "bench.json"
    argv = ["--configs", str(REPO / "configs" / "ppg.json"), "--steps", "1", "--repeats", "2", *TINY,
            "--json", str(raw)]
    assert bench_train.main(argv) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ppg")]
    assert [line.split()[2] for line in lines] == ["float32", "mixed_bfloat16"]
    run = json.loads(raw.read_text())[-1]
    assert run["lines"] == lines and "bench_train.py --configs" in run["meta"]["command"]
    assert sorted(run["matmul_gflops"]) == ["bfloat16 256²", "bfloat16 512²", "float32 256²", "float32 512²"]
    reference = max(v for k, v in run["matmul_gflops"].items() if k.startswith("bfloat16"))
    for line in lines:
        m = {k: float(v) for k, v in LINE.search(line).groupdict().items()}
        # batch 2; each printed figure is rounded (GFLOP/step to 0.005, GFLOP/s to 0.05)
        low, high = m["rate"] / 2 * (m["flop"] - 0.005), m["rate"] / 2 * (m["flop"] + 0.005)
        assert low - 0.05 <= m["achieved"] <= high + 0.05
        assert m["fraction"] == pytest.approx(m["achieved"] / reference, rel=0.1, abs=2e-3)
    assert LINE.search(lines[0])["speedup"] == "1.00"


def test_bench_train_refuses_bad_arguments(capsys):
    import bench_train

    for argv in (["--steps", "0"], ["--precisions", "bfloat16"], ["--modes", "eager"]):
        with pytest.raises(SystemExit) as exit_:
            bench_train.main(argv)
        assert exit_.value.code == 2
    assert "--steps and --repeats must be >= 1" in capsys.readouterr().err


@pytest.mark.slow  # trains or runs a real model for tens of seconds
def test_profile_train_shares_add_up(tmp_path, capsys):
    import profile_train

    raw = tmp_path / "profile.json"
    assert profile_train.main(["--config", str(REPO / "configs" / "ecg.json"), "--steps", "1",
                               "--precisions", "mixed_bfloat16", *TINY, "--json", str(raw)]) == 0
    result = json.loads(raw.read_text())["mixed_bfloat16"]
    assert set(result["kinds"]) <= {kind for kind, _ in profile_train.KINDS}
    assert result["kinds"]["convolution"] > 0
    # the kinds partition the same op times the op types do (the 20 largest types: at most the total)
    assert sum(result["ops"].values()) <= sum(result["kinds"].values()) * (1 + 1e-9)
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  mixed_bfloat16: ")]
    assert len(printed) == 1 and "convolution" in printed[0]


def test_bench_separate_skips_what_does_not_exist(tmp_path, capsys):
    import bench_separate

    assert bench_separate.main(["--models", str(tmp_path / "none"), "--model_dirs", "--seconds", "1",
                                "--hour_seconds", "1", "--repeats", "1"]) == 0
    assert "none" in capsys.readouterr().out


def test_ecg_ideal_mask_is_exact_without_noise_and_shares_a_bin_by_power():
    import ecg_ideal_mask
    from cass_tf.config import load_config
    from cass_tf.spectral import Spectral

    spectral = Spectral.from_config(load_config(REPO / "configs" / "ecg.json", overrides=[
        "stft.n_fft=64", "stft.window=64", "stft.hop=8", "patch.frequency_bins=32"]))
    rng = np.random.default_rng(0)
    noise, tone = rng.standard_normal(2003), np.sin(np.arange(2003) / 3.0)
    # No noise: the two masks sum to 1 in every bin, so the estimates sum back to the mixture (odd length included).
    both = ecg_ideal_mask.ideal_mask(noise + tone, {"a": noise, "b": tone}, spectral)
    assert ecg_ideal_mask.l2(both["a"] + both["b"], noise + tone) < 1e-5
    # One component and noise of the same spectrum at 1/4 of its power: each mask is 0.8 in every bin, so the
    # estimate is 0.8 times the mixture (up to the bin-by-bin fluctuation of two independent noises' powers).
    other = 0.5 * rng.standard_normal(2003)
    alone = ecg_ideal_mask.ideal_mask(noise + other, {"a": noise}, spectral)["a"]
    gain = float(np.dot(alone, noise + other) / np.dot(noise + other, noise + other))
    assert 0.7 < gain < 0.9
    # A perfect estimate scores 0; a silent one 1.
    assert ecg_ideal_mask.l2(noise, noise) == 0 and ecg_ideal_mask.l2(np.zeros_like(noise), noise) == 1


def test_oracle_wiener_nulls_a_noise_with_its_own_projection_and_returns_a_lone_component():
    import ecg_oracle_beats

    rng = np.random.default_rng(1)
    rate, samples = 256, 20 * 256
    source, interference = rng.standard_normal(samples), rng.standard_normal(samples)
    toward, away = np.array([1.0, 0.5, -0.3, 0.8]), np.array([0.2, -1.0, 0.7, 0.4])
    component = np.outer(toward, source)
    mixture = component + 3 * np.outer(away, interference)  # two rank-1 sources on four leads
    # A spatial filter can cancel the interference exactly in every band, so the oracle recovers the component.
    estimate = ecg_oracle_beats.wiener(mixture, component, rate)
    assert max(ecg_oracle_beats.l2(e, t) for e, t in zip(estimate, component)) < 1e-6
    # Asked for the whole mixture it returns it; a component with no projection at all it returns as silence.
    np.testing.assert_allclose(ecg_oracle_beats.wiener(mixture, mixture, rate), mixture, atol=1e-9)
    one_lead = np.vstack([component[:1] + rng.standard_normal((1, samples)), np.zeros((3, samples))])
    assert np.abs(ecg_oracle_beats.wiener(one_lead, np.zeros_like(one_lead), rate)).max() < 1e-9


def test_breath_share_is_the_band_power_near_the_annotated_rate():
    """bench/ppg_breath_outputs.breath_share: a lone breath at the annotated rate holds all of the band's power near
    it; an equal tone 12 /min away halves the share; a window without a reference is left out."""
    import ppg_breath_outputs
    from cass_tf.metrics import rate_windows

    rate, seconds = 25.0, 96.0
    t = np.arange(int(rate * seconds)) / rate
    breath = np.sin(2 * np.pi * 0.3 * t)  # 18 /min
    windows = len(rate_windows(t.size, rate, hop=16.0))
    reference = np.full(windows, 18.0)
    assert ppg_breath_outputs.breath_share(breath, rate, reference) > 0.99
    other = np.sin(2 * np.pi * 0.5 * t)  # 30 /min, as strong
    assert ppg_breath_outputs.breath_share(breath + other, rate, reference) == pytest.approx(0.5, abs=0.02)
    reference[1:] = np.nan
    assert ppg_breath_outputs.breath_share(breath + other, rate, reference) == pytest.approx(0.5, abs=0.02)
    assert np.isnan(ppg_breath_outputs.breath_share(breath, rate, np.full(windows, np.nan)))


def test_rate_sources_filter_each_component_in_its_own_band_and_average_seeds():
    """bench/ppg_rate_sources: "band-passed" is exactly the reference's filter of each quantity's band; the high-pass
    keeps a breath and drops a slow drift, the low-pass keeps it and drops a pulse; a mean of seeds is sample-wise."""
    import ppg_rate_sources
    from cass_tf import metrics

    rate = 32.0
    t = np.arange(int(rate * 240)) / rate
    breath, drift, pulse = (np.sin(2 * np.pi * f * t) for f in (0.3, 0.01, 1.5))
    core = slice(int(rate * 60), int(rate * 180))
    outputs = {"respiratory": breath + drift + pulse, "heart": pulse + breath}
    band = ppg_rate_sources.filtered(outputs, rate, "band-passed")
    np.testing.assert_array_equal(band["heart"], metrics.bandpass(outputs["heart"], rate, metrics.PULSE_BAND))
    np.testing.assert_array_equal(band["respiratory"],
                                  metrics.bandpass(outputs["respiratory"], rate, metrics.BREATHING_BAND))

    def share(x, wave):  # the fraction of x's power that is `wave`'s, by projection
        return float(np.dot(x[core], wave[core]) ** 2 / np.dot(wave[core], wave[core]) / np.dot(x[core], x[core]))

    high = ppg_rate_sources.filtered(outputs, rate, "high-passed")["respiratory"]
    low = ppg_rate_sources.filtered(outputs, rate, "low-passed")["respiratory"]
    assert share(high, drift) < 0.01 and share(high, pulse) > 0.45 and share(high, breath) > 0.45
    assert share(low, pulse) < 0.01 and share(low, drift) > 0.4 and share(low, breath) > 0.4
    a, b = {"heart": np.arange(4.0)}, {"heart": np.arange(4.0) * 3}
    np.testing.assert_array_equal(ppg_rate_sources.mean_outputs([a, b])["heart"], [0.0, 2.0, 4.0, 6.0])
