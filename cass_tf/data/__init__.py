"""Owns the waveform-level data contract: `Recording`, and `load_recordings(config)` dispatching to a source."""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np

from cass_tf.config import Config


@dataclasses.dataclass(frozen=True)
class Recording:
    """One recording: the mixture and each target component, float32 1-D arrays of equal length.

    `events`: per component, the sample indices of its true beats (R peaks for ECG, systolic peaks for the PPG
    heart, breath peaks for the PPG respiration), where the source knows them; empty for sources that do not.
    """

    name: str
    mixture: np.ndarray
    components: dict[str, np.ndarray]
    events: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.mixture.shape[0])


def load_recordings(config: Config) -> dict[str, list[Recording]]:
    """{"train": [...], "test": [...]} waveforms for `config.data.source`, at `config.data.sample_rate`."""
    source = importlib.import_module(f"cass_tf.data.{config.data.source}")
    return source.load(config)
