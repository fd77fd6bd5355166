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
    which training then leaves out (the test split is not returned, so nothing tuned on it can leak).
    A one-lead model (model.multilead false) of a multi-lead source (data.ecg.leads > 1) gets every lead of every
    recording as a recording of its own (`lead_recordings`), after the split, so a recording's leads stay together
    in one split; with data.ecg.one_lead_recordings N, its training split also holds the first N training
    recordings of the one-lead generator with the same settings (`one_lead_config`): both generators at once."""
    source = importlib.import_module(f"cass_tf.data.{config.data.source}")
    splits = source.load(config)
    held_out = config.data.validation_recordings
    if held_out:
        train = splits["train"]
        if held_out >= len(train):
            raise ValueError(f"data.validation_recordings: {held_out} would leave none of the {len(train)} training "
                             "recordings to train on")
        splits = {"train": train[:-held_out], "test": train[-held_out:]}
    if config.leads > 1 and not config.model.multilead:
        splits = {split: lead_recordings(recordings) for split, recordings in splits.items()}
    if config.leads > 1 and config.data.ecg.one_lead_recordings:
        splits["train"] += source.load(one_lead_config(config))["train"]
    return splits


def fresh_config(config: Config, seed: int, count: int) -> Config:
    """`config` drawing `count` new test recordings with data seed `seed` and as little else as it can: one training
    recording (the least a source draws), none held out, and none of the one-lead generator's training recordings
    (data.ecg.one_lead_recordings). A synthetic source only (Bach10 is a fixed dataset)."""
    source = config.data.source
    overrides = [f"seed={seed}", "data.validation_recordings=0", f"data.{source}.train_recordings=1",
                 f"data.{source}.test_recordings={count}"]
    if source == "ecg":
        overrides.append("data.ecg.one_lead_recordings=0")
    return config.replace(overrides)


def one_lead_config(config: Config) -> Config:
    """`config`'s one-lead generator for data.ecg.one_lead_recordings: the same settings and seed with one lead and
    that many training recordings, which are the first ones a one-lead config of more recordings draws (each
    recording's seed is its index's)."""
    count = config.data.ecg.one_lead_recordings
    return config.replace(["data.ecg.leads=1", "data.ecg.one_lead_recordings=0",
                           f"data.ecg.train_recordings={count}", "data.validation_recordings=0"])


def lead_recordings(recordings: list[Recording]) -> list[Recording]:
    """Each lead of (leads, samples) recordings as a one-lead recording of its own, named "<name>/lead<k>" (0-based),
    its components that lead's projections, its events the recording's (the same on every lead); one-lead
    recordings as they are."""
    return [lead for recording in recordings for lead in _leads(recording)]


def _leads(recording: Recording) -> list[Recording]:
    if recording.mixture.ndim == 1:
        return [recording]
    return [Recording(f"{recording.name}/lead{k}", recording.mixture[k],
                      {name: part[k] for name, part in recording.components.items()}, recording.events)
            for k in range(len(recording.mixture))]
