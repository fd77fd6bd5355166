"""Owns the paper's side of pipelines/reproduce.py: its Tables 1-3, the variants and protocols compared, and the
training budgets (the recipe, then per-budget and per-task overrides)."""

from __future__ import annotations

from cass_tf.config import ConfigError

VARIANTS = ("baseline", "cass", "cass_cross")
LABELS = {"baseline": "Baseline AE", "cass": "CASS", "cass_cross": "CASS with Cross Training"}
# protocol -> the cass_tf.evaluate scope scored for it (the test crops under both)
PROTOCOL_SCOPES = {"waveform": "crops", "paper": "crops_paper"}
PROTOCOL_NOTES = {
    "waveform": "estimates against the TRUE component waveforms (what a user gets)",
    "paper": "the paper's protocol: estimate and true component magnitude both put back with the mixture's phase "
             "(phase errors do not count; the ideal magnitude scores 0); like for like with the paper's tables",
}
# The training recipe chosen on the validation split by pipelines/ablate.py (docs/results/training.md), for every
# budget, task and variant alike.
RECIPE: list[str] = ["model.discriminator_norm=spectral"]

# Per budget: overrides for every task ("common"), then per data source. Applied before the user's --set.
BUDGETS: dict[str, dict[str, list[str]]] = {
    "paper": {
        "common": ["train.epochs=500", "train.batch_size=50", "train.ae_learning_rate=1e-5",
                   "train.d_learning_rate=1e-6", "model.width=32"],
    },
    "cpu": {
        "common": ["model.width=8", "train.batch_size=16", "train.steps_per_epoch=20",
                   "train.ae_learning_rate=1e-3", "train.d_learning_rate=1e-4"],
        "ppg": ["train.epochs=30"],
        "ecg": ["train.epochs=30"],
        # 16 kHz and the config's STFT (n_fft 1024, 512 bins) kept; patches of 16 frames (0.3 s) instead of 64.
        "bach10": ["train.epochs=20", "patch.frames=16"],
    },
    # what bfloat16 training buys in about the cpu budget's wall time (docs/benchmarks.md): width 16 and 3x the steps
    "cpu_large": {
        "common": ["model.width=16", "train.batch_size=16", "train.steps_per_epoch=20", "train.precision=auto",
                   "train.ae_learning_rate=1e-3", "train.d_learning_rate=1e-4"],
        "ppg": ["train.epochs=90"],
        "ecg": ["train.epochs=90"],
        "bach10": ["train.epochs=60", "patch.frames=16"],
    },
    "tiny": {
        "common": ["model.width=2", "patch.frequency_bins=16", "patch.frames=16", "train.batch_size=4",
                   "train.epochs=2", "train.steps_per_epoch=3", "train.ae_learning_rate=1e-3",
                   "train.d_learning_rate=1e-4", "data.cache_dir=null"],
        "ppg": ["data.ppg.train_recordings=3", "data.ppg.test_recordings=2", "data.ppg.seconds=20"],
        "ecg": ["data.ecg.train_recordings=2", "data.ecg.test_recordings=1", "data.ecg.seconds=12"],
        "bach10": ["data.sample_rate=4000", "stft.n_fft=128", "stft.window=128", "stft.hop=32"],
    },
}

# The paper's Tables 1-3 (CASS, Ong, Chui & Yang), relative errors after the inverse STFT, for reference only.
PAPER: dict[str, dict[str, dict[str, dict[str, float]]]] = {
    "bach10": {  # Table 1 ("bass" is Bach10's bassoon)
        "bassoon": {"baseline": {"l1": 0.13942, "l2": 0.14630, "linf": 0.21712},
                    "cass": {"l1": 0.10363, "l2": 0.10909, "linf": 0.16692},
                    "cass_cross": {"l1": 0.10241, "l2": 0.10825, "linf": 0.16887}},
        "saxophone": {"baseline": {"l1": 0.15845, "l2": 0.16984, "linf": 0.26421},
                      "cass": {"l1": 0.13325, "l2": 0.14254, "linf": 0.22329},
                      "cass_cross": {"l1": 0.12850, "l2": 0.13717, "linf": 0.21234}},
    },
    "ecg": {  # Table 2
        "maternal": {"baseline": {"l1": 0.45158, "l2": 0.53502, "linf": 0.85077},
                     "cass": {"l1": 0.40672, "l2": 0.47942, "linf": 0.77370},
                     "cass_cross": {"l1": 0.40994, "l2": 0.48082, "linf": 0.77911}},
        "fetal": {"baseline": {"l1": 0.49818, "l2": 0.57435, "linf": 0.80709},
                  "cass": {"l1": 0.37387, "l2": 0.46627, "linf": 0.75402},
                  "cass_cross": {"l1": 0.37218, "l2": 0.45848, "linf": 0.74462}},
    },
    "ppg": {  # Table 3
        "heart": {"baseline": {"l1": 0.02409, "l2": 0.026174, "linf": 0.051244},
                  "cass": {"l1": 0.019765, "l2": 0.021612, "linf": 0.04225},
                  "cass_cross": {"l1": 0.02047, "l2": 0.022261, "linf": 0.043220}},
        "respiratory": {"baseline": {"l1": 0.05874, "l2": 0.066493, "linf": 0.13064},
                        "cass": {"l1": 0.05117, "l2": 0.058100, "linf": 0.11460},
                        "cass_cross": {"l1": 0.05310, "l2": 0.06036, "linf": 0.119324}},
    },
}


def budget_overrides(budget: str, source: str) -> list[str]:
    """The overrides a budget applies to a task (data source): the recipe, the budget's common ones, the task's."""
    if budget not in BUDGETS:
        raise ConfigError(f"--budget: unknown budget {budget!r} (choose from {sorted(BUDGETS)})")
    return [*RECIPE, *BUDGETS[budget].get("common", []), *BUDGETS[budget].get(source, [])]
