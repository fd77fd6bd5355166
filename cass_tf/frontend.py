"""Owns the mixture front end that `cass_tf.separate` and the serving clients share: after the inputs are decoded and
checked (cass_tf.checks.load_mixtures), average their channels if asked, bring them to the model's rate, hand them
all to a backend (a Separator, or a model server), then bring each result back to its input's rate and length and
check it; and the model's input from a biosignal record (`record_mixture`). No TensorFlow here."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from cass_tf import audio, records
from cass_tf.checks import check_outputs

# Signals at the model's rate, (samples,) or (channels, samples) -> one {component: array of that shape} per signal.
Backend = Callable[[list[np.ndarray]], list[dict[str, np.ndarray]]]
Result = Union[dict[str, np.ndarray], list[dict[str, np.ndarray]]]
MEDIAN_REMOVED = ("ecg",)  # data.source whose record channels lose their median before separation (record_mixture)


def separate_mixtures(mixtures: Sequence[tuple[np.ndarray, Optional[int]]], many: bool, model_rate: Optional[int],
                      backend: Backend, mono: bool = False, names: Optional[Sequence[str]] = None) -> Result:
    """{component: float32 array of its input's shape} per mixture (a list if `many`, else the one dict).

    `mixtures`: checked (x, rate) pairs; rate None means "the model's". `model_rate` None (a server whose rate the
    caller does not know) is allowed only while every rate is None. Outputs are checked finite, naming the mixture
    as `names` does (default: `mixture`, or `mixture[i]` in a list).
    """
    loaded = [(audio.to_mono(x) if mono else x, rate) for x, rate in mixtures]
    names = names or [f"mixture[{i}]" if many else "mixture" for i in range(len(loaded))]
    for what, (_, rate) in zip(names, loaded):
        if rate is not None and model_rate is None:
            raise ValueError(f"{what} is at {rate} Hz but this client does not know the model's sample rate: "
                             f"construct it with sample_rate=<the model's rate> (\"sample_rate\" in the export's "
                             "assets/cass_config.json) so the input can be resampled")
    separated = backend([x if rate is None else audio.resample(x, rate, model_rate) for x, rate in loaded])
    results = []
    for what, (x, rate), parts in zip(names, loaded, separated):
        if rate is not None:
            parts = {n: audio.resample(v, model_rate, rate) for n, v in parts.items()}
        results.append(check_outputs({n: audio.fit_length(v, x.shape[-1]) for n, v in parts.items()}, x, what))
    return results if many else results[0]


def record_mixture(record: records.Record, separator: Any, channels: Optional[Sequence[Union[str, int]]] = None
                   ) -> tuple[tuple[str, ...], np.ndarray, int]:
    """(channel names, float32 (channels, samples), rate): the model's input from a biosignal record, the chosen
    channels (records.select: `channels`, else the model's default leads) at the record's rate, fed as the model's
    real-data scoring feeds them, so that files give what docs/results/real.md reports: for the sources in
    MEDIAN_REMOVED (ECG) each channel minus its median, the electrode's DC offset, as pipelines/validate_real.py does
    (the .fqrs peaks of `cass-tf separate --events` score as its "own blind" column); a PPG as recorded, its level
    included, as cass_tf.bidmc does (issue 21's protocol; the PPG models' rates depend on that level)."""
    source = separator.config.data.source
    names, x, rate = records.select(record, source, channels)
    return names, x - np.median(x, axis=1, keepdims=True) if source in MEDIAN_REMOVED else x, rate
