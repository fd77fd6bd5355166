"""Owns the waveform-level data contract: `Recording`, and `load_recordings(config)` dispatching to a source."""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np

from cass_tf.config import Config


@dataclasses.dataclass(frozen=True)
class Recording:
    """One recording: the mixture and each target component, float32 arrays of equal shape: (samples,), or
    (leads, samples) for a multi-lead source (data.ecg.leads > 1; events are then the same on every lead).

    `events`: per component, the sample indices of its true beats (R peaks for ECG, systolic peaks for the PPG
    heart, breath peaks for the PPG respiration), where the source knows them; empty for sources that do not.
    """

    name: str
    mixture: np.ndarray
    components: dict[str, np.ndarray]
    events: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.mixture.shape[-1])


def as_recorded(config: Config) -> Config:
    """`config` whose recordings are as recorded: a model.cancellation model's own are what cancellation leaves
    (cass_tf.data.ecg.load), which scores of whole separations must not be computed on."""
    if config.model.cancellation == "none":
        return config
    return dataclasses.replace(config, model=dataclasses.replace(config.model, cancellation="none"))


def load_recordings(config: Config) -> dict[str, list[Recording]]:
    """{"train": [...], "test": [...]} waveforms for `config.data.source`, at `config.data.sample_rate`.

    With `data.validation_recordings` N > 0, "test" is the validation split instead: the last N training recordings,
    which training then leaves out (the test split is not returned, so nothing tuned on it can leak)."""
    source = importlib.import_module(f"cass_tf.data.{config.data.source}")
    splits = source.load(config)
    held_out = config.data.validation_recordings
    if not held_out:
        return splits
    train = splits["train"]
    if held_out >= len(train):
        raise ValueError(f"data.validation_recordings: {held_out} would leave none of the {len(train)} training "
                         "recordings to train on")
    return {"train": train[:-held_out], "test": train[-held_out:]}
