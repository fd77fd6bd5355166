"""Tests for pipelines/reproduce.py: budgets, variant configs, and a tiny end-to-end run of all three variants."""

import importlib
import importlib.util
import json
import pathlib
import re

import pytest

from cass_tf.config import ConfigError, load_config

REPO = pathlib.Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", REPO / "pipelines" / "reproduce.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("task", ["ppg", "ecg", "bach10"])
@pytest.mark.parametrize("budget", ["cpu", "cpu_large", "paper", "tiny"])
def test_budgets_give_valid_configs(reproduce, task, budget, tmp_path):
    if task == "bach10" and not (REPO / "../shared/data/Bach10").is_dir():
        pytest.skip("Bach10 not found at ../shared/data/Bach10")
    overrides = reproduce.budget_overrides(budget, task)
    config = load_config(REPO / "configs" / "paper" / f"{task}.json", overrides)  # validates
    variants = {v: reproduce.variant_config(config, v, str(tmp_path)) for v in reproduce.VARIANTS}
    dicts = {v: c.to_dict() for v, c in variants.items()}
    for variant, d in dicts.items():
        assert d["loss"]["mode"] == variant
        assert d["output"]["model_dir"] == str(tmp_path / variant)
        # everything but the loss mode and the directory is shared by the three variants
        d["loss"].pop("mode"), d["output"].pop("model_dir")
    assert dicts["baseline"] == dicts["cass"] == dicts["cass_cross"]
    if budget == "cpu_large":
        cpu = load_config(REPO / "configs" / "paper" / f"{task}.json", reproduce.budget_overrides("cpu", task))
        assert config.model.width == 2 * cpu.model.width and config.train.epochs == 3 * cpu.train.epochs
        assert config.train.precision == "auto" and config.train.batch_size == cpu.train.batch_size
    if budget == "paper":
        assert (config.train.epochs, config.train.batch_size, config.model.width) == (500, 50, 32)
        assert (config.train.ae_learning_rate, config.train.d_learning_rate) == (1e-5, 1e-6)


def test_unknown_budget(reproduce):
    with pytest.raises(ConfigError, match="unknown budget"):
        reproduce.budget_overrides("huge", "ppg")


def test_paper_reference_values(reproduce):
    """Spot checks against DESIGN.md's CASS-with-cross-training figures."""
    paper = reproduce.PAPER
    assert paper["bach10"]["bassoon"]["cass_cross"] == pytest.approx({"l1": 0.102, "l2": 0.108, "linf": 0.169},
                                                                     abs=6e-4)
    assert paper["ecg"]["fetal"]["cass_cross"] == pytest.approx({"l1": 0.372, "l2": 0.458, "linf": 0.745}, abs=6e-4)
    assert paper["ppg"]["respiratory"]["cass_cross"] == pytest.approx({"l1": 0.0531, "l2": 0.0604, "linf": 0.1193},
                                                                      abs=6e-5)
    for task in paper.values():  # "in every table the baseline is worst"
        for rows in task.values():
            assert all(rows["baseline"][m] > max(rows["cass"][m], rows["cass_cross"][m]) for m in ("l1", "l2"))


def test_compare_is_welch_over_seeds(reproduce):
    # clearly separated means with small spread: holds one way, contradicted the other (Welch p ~ 1e-4)
    assert reproduce.compare([0.10, 0.11, 0.12], [0.20, 0.21, 0.22]).startswith("holds")
    assert reproduce.compare([0.20, 0.21, 0.22], [0.10, 0.11, 0.12]).startswith("contradicted")
    # the same means 0.11 vs 0.12 with a spread of 0.05: within it (by hand, t = 0.24, p ~ 0.8)
    assert reproduce.compare([0.06, 0.11, 0.16], [0.07, 0.12, 0.17]).startswith("within the seeds' spread")
    assert reproduce.compare([0.1], [0.2, 0.3]).startswith("untested")


def test_budgets_side_by_side(reproduce):
    pages = importlib.import_module("pipelines.pages")  # importable once the reproduce fixture put the checkout on sys.path
    cpu = {"l2_mean": 0.120446, "l2_std": 0.018093, "l1_mean": 0.1, "linf_mean": 0.28, "seeds": 3}
    large = {"l2_mean": 0.09151, "l2_std": 0.00249, "l1_mean": 0.08, "linf_mean": 0.2, "seeds": 2}
    summary = {"ppg": {"waveform": {"cass": {"heart": cpu}}, "paper": {}},
               "ppg-cpu_large": {"waveform": {"cass": {"heart": large}, "baseline": {"heart": {**large, "seeds": 1}}},
                                 "paper": {}}}
    lines = pages.budgets_side_by_side(summary, "ppg", "cpu_large", ["heart"])
    assert lines[0] == "## Budgets side by side"
    assert "| protocol | component | model | `cpu` | `cpu_large` |" in lines
    rows = [line for line in lines if line.startswith("| waveform |") or line.startswith("| paper |")]
    assert len(rows) == 2 * 1 * 3  # protocols x components x variants, a row even where a budget has no run yet
    assert "| waveform | heart | CASS | 0.1204 ± 0.0181 (3) | 0.0915 ± 0.0025 (2) |" in rows
    assert "| waveform | heart | Baseline AE |  | 0.0915 (1) |" in rows  # one seed: no spread
    assert "| paper | heart | CASS with Cross Training |  |  |" in rows
    # nothing for the cpu page itself, nor before summary.json holds the cpu budget's entry
    assert pages.budgets_side_by_side(summary, "ppg", "cpu", ["heart"]) == []
    assert pages.budgets_side_by_side({"ppg-cpu_large": summary["ppg-cpu_large"]}, "ppg", "cpu_large", ["heart"]) == []


@pytest.mark.slow  # trains or runs a real model for tens of seconds
def test_tiny_end_to_end(reproduce, tmp_path, capsys):
    out_dir, results = tmp_path / "runs", tmp_path / "results"
    argv = ["--config", str(REPO / "configs" / "paper" / "ppg.json"), "--budget", "tiny", "--seeds", "3", "--out_dir",
            str(out_dir), "--results", str(results)]
    # the cpu budget's entry already published: the tiny page shows it beside its own
    results.mkdir()
    cpu = {"l2_mean": 0.987654, "l2_std": 0.012345, "l1_mean": 0.5, "linf_mean": 0.9, "seeds": 3}
    (results / "summary.json").write_text(json.dumps({"ppg": {"waveform": {"cass": {"heart": cpu}}}}))
    assert reproduce.main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    for variant in reproduce.VARIANTS:
        run = out_dir / "ppg-tiny" / variant / "seed3"
        assert f"[ppg {variant} seed 3] epoch 2/2" in printed
        assert json.loads((run / "config.json").read_text())["train"]["seed"] == 3
        assert json.loads((run / "wall_time.json").read_text())["steps"] == 6
        scores = json.loads((run / "scores.json").read_text())
        assert set(scores) == {"waveform", "paper"}
    # a budget other than cpu has its own page, figures and summary key beside the cpu budget's
    for figure in ("ppg-tiny_test_l2.png", "ppg-tiny_discriminator.png"):
        data = (results / figure).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
    report = (results / "ppg-tiny.md").read_text()
    assert "python pipelines/reproduce.py --config" in report and "--budget tiny" in report
    assert "`model.width=2`" in report
    for heading in ("## Waveform protocol", "## Paper protocol", "## Does the paper's ordering hold?"):
        assert heading in report
    side = report[report.index("## Budgets side by side"):report.index("<!-- /figures -->")]
    assert re.search(r"^\| waveform \| heart \| CASS \| 0\.9877 ± 0\.0123 \(3\) \| 0\.\d{4} \(1\) \|$", side, flags=re.M)
    # one seed: the orderings cannot be tested, and the page says so
    assert "untested (fewer than 2 seeds)" in report
    # a best mean L2 above the paper's says what stands in the way: the budget (paper protocol), the floor (waveform)
    assert "the budget is, 6 steps of batch 4 at width 2 against the paper's 500 epochs" in report
    assert "no magnitude model can go below the ideal-magnitude row under this protocol" in report
    labels = ("Baseline AE", "CASS", "CASS with Cross Training")
    for label in labels:  # a row per component in 2 protocols' tables, and a row in the runs table
        assert len(re.findall(rf"^\| {re.escape(label)} \|", report, flags=re.M)) == 2 * 2 + 1
    # paper values beside ours: Table 3, heart, baseline L1
    assert re.search(r"^\| Baseline AE \|.*\| 0\.0241 \|", report, flags=re.M)
    summary = json.loads((results / "summary.json").read_text())
    for protocol in ("waveform", "paper"):
        for variant in reproduce.VARIANTS:
            heart = summary["ppg-tiny"][protocol][variant]["heart"]
            assert set(heart) == {"l2_mean", "l2_std", "l1_mean", "linf_mean", "seeds"} and heart["seeds"] == 1
            assert heart["l2_mean"] == pytest.approx(
                json.loads((out_dir / "ppg-tiny" / variant / "seed3" / "scores.json").read_text())[protocol]["heart"]["l2"])

    # a rerun skips finished runs: no epoch is trained and the step count stays
    assert reproduce.main(argv) == 0
    assert "epoch" not in capsys.readouterr().out
    assert json.loads((out_dir / "ppg-tiny" / "baseline" / "seed3" / "wall_time.json").read_text())["steps"] == 6
