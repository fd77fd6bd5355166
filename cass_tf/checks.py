"""Owns input checking shared by `separate()` and the serving clients: arrays, rates, block lengths, mixtures, files.

Every check raises ValueError (FileNotFoundError for a missing file) whose message starts with the argument the
caller passed (`mixture`, `mixture[2]`, `sample_rate`, `block_seconds`, or a file path): the inputs before any work
is done, and (`check_outputs`) the results before they are returned, so no caller ever gets a non-finite output.
No TensorFlow here: bad input is reported without waiting for it to load. See docs/reliability.md.
"""

from __future__ import annotations

import math
import os
from typing import Any, Optional, Sequence, Union

import numpy as np

from cass_tf import audio, records

PathLike = Union[str, os.PathLike]
Mixture = Union[np.ndarray, PathLike, Sequence[Union[np.ndarray, PathLike]]]
FLOAT32_MAX = float(np.finfo(np.float32).max)
CHANNELS_LAYOUT = "(samples,) or (channels, samples)"
MAX_SAMPLE_RATE = 1_000_000  # Hz; resampling between coprime rates costs filters of ~20 * rate taps


def check_array(x: Any, what: str, layout: str = CHANNELS_LAYOUT, ranks: tuple[int, ...] = (1, 2)) -> np.ndarray:
    """`x` as float32 if it is a non-empty, finite floating array of one of `ranks` within float32's range, else a
    ValueError starting with `what`; `layout` says what the shapes mean."""
    try:
        x = np.asarray(x)
    except (ValueError, TypeError) as e:  # ragged nested sequences
        raise ValueError(f"{what}: not an array ({e})") from None
    if not np.issubdtype(x.dtype, np.floating):
        hint = (" (integer PCM: convert it to float first, e.g. x.astype(np.float32) / 32768 for 16-bit)"
                if np.issubdtype(x.dtype, np.integer) else "")
        raise ValueError(f"{what}: expected a floating-point array, got dtype {x.dtype}{hint}")
    if x.ndim not in ranks:
        raise ValueError(f"{what}: expected {layout}, got a {x.ndim}-D array of shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{what}: empty (shape {x.shape}); at least one sample is needed")
    finite = np.isfinite(x)
    if not finite.all():
        bad = int(x.size - np.count_nonzero(finite))
        first = np.unravel_index(int(np.argmin(finite)), x.shape)
        raise ValueError(f"{what}: {bad} non-finite value(s) (NaN or inf), the first at index "
                         f"{tuple(int(i) for i in first) if x.ndim > 1 else int(first[0])}")
    if x.dtype.itemsize > 4:  # checked before the cast, which would overflow to inf (with a NumPy warning)
        peak = float(np.abs(x).max())
        if peak > FLOAT32_MAX:
            raise ValueError(f"{what}: values exceed float32's range (max |x| = {peak:.6g} > {FLOAT32_MAX:.6g}); "
                             "the model computes in float32")
    return x.astype(np.float32, copy=False)


def check_outputs(outputs: dict[str, np.ndarray], x: np.ndarray, what: str) -> dict[str, np.ndarray]:
    """`outputs` if every one is finite, else a ValueError naming `what`: a finite input (`x`) can still be so large
    that the model's float32 arithmetic overflows (the STFT sums a window of samples)."""
    for name, value in outputs.items():
        if not np.isfinite(value).all():
            raise ValueError(f"{what}: the {name!r} output is not finite for this input (max |x| = "
                             f"{float(np.abs(x).max()):.6g}): the model's float32 arithmetic overflowed; scale the "
                             "input toward [-1, 1]")
    return outputs


def check_rate(rate: Any, what: str = "sample_rate") -> int:
    """`rate` as an int if it is a whole number of Hz (int or integral float) in 1..MAX_SAMPLE_RATE, else a
    ValueError."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) \
            or not math.isfinite(rate) or not 0 < rate <= MAX_SAMPLE_RATE or int(rate) != rate:
        raise ValueError(f"{what} must be a positive integer (Hz) of at most {MAX_SAMPLE_RATE}, got {rate!r}")
    return int(rate)


def check_block_seconds(value: Any) -> Optional[float]:
    """`block_seconds` as a float (None stays None: one piece), or a ValueError unless positive and finite."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"block_seconds must be a positive number of seconds or None, got {value!r}")
    return float(value)


def check_progress(progress: Any) -> Any:
    """`progress` if it is None or callable, else a TypeError naming `progress` (before any work is done)."""
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable (it is called with the fraction done) or None, "
                        f"got {type(progress).__name__} {progress!r:.60}")
    return progress


def load_mixtures(mixture: Mixture, sample_rate: Optional[int]
                  ) -> tuple[list[tuple[np.ndarray, Optional[int]]], bool]:
    """([(samples, rate) per mixture], whether a list was given) for `separate(mixture, ..., sample_rate)`.

    Each mixture is checked (`load_mixture`) before the first is processed; `sample_rate` must already be checked.
    """
    many = isinstance(mixture, (list, tuple))
    items = list(mixture) if many else [mixture]
    if many and not items:
        raise ValueError("mixture: the list of mixtures is empty")
    return [load_mixture(item, sample_rate, f"mixture[{i}]" if many else "mixture")
            for i, item in enumerate(items)], many


def load_mixture(item: Any, sample_rate: Optional[int], what: str) -> tuple[np.ndarray, Optional[int]]:
    """(float32 (samples,) or (channels, samples), rate) for one mixture, checked; rate None means "the model's".

    An array is taken at `sample_rate`; an audio file is read at its own rate (a different `sample_rate` is an
    error); a biosignal file (records.is_record) comes back as its checked records.Record, channels not yet chosen.
    """
    if isinstance(item, (str, os.PathLike)) and records.is_record(item):
        return records.read_record(item, sample_rate), None  # channels are chosen once the model is known
    if isinstance(item, (str, os.PathLike)):
        x, rate = audio.read_audio(item)
        check_rate(rate, f"{what}: the sample rate of {os.fspath(item)!r}")
        if sample_rate is not None and sample_rate != rate:
            raise ValueError(f"{what}: sample_rate={sample_rate} was given but {os.fspath(item)!r} is at {rate} Hz "
                             "(a file's own rate is used; leave sample_rate out)")
        return check_array(x, f"{what} ({os.fspath(item)!r})"), rate
    if isinstance(item, (list, tuple)):
        raise ValueError(f"{what}: a nested list; pass each mixture as a NumPy array or a path")
    if np.isscalar(item) or item is None:
        raise ValueError(f"{what}: expected an array or an audio file path, got {type(item).__name__}"
                         + (" (a list is taken as several mixtures: pass np.asarray(...) for one signal)"
                            if what.startswith("mixture[") else ""))
    x = check_array(item, what)
    if x.ndim == 2 and x.shape[0] > x.shape[1] and x.shape[0] > 8:
        raise ValueError(f"{what}: shape {x.shape} looks like (samples, channels); expected (channels, samples), "
                         "pass its transpose")
    return x, sample_rate


def check_audio_files(paths: Sequence[PathLike], mono: bool = False) -> list[tuple[np.ndarray, int]]:
    """Reads and validates every input file before any output is written: exists, is complete audio
    (`audio.audio_info`), has only finite samples, and has a file stem no other input has (outputs go to
    <out_dir>/<stem>/). Returns each file's (float32 (samples,) or (channels, samples), rate), decoded once (all
    held in memory); `mono` averages the channels."""
    if not paths:
        raise ValueError("no input files given")
    stems: dict[str, str] = {}
    loaded = []
    for path in paths:
        name = os.fspath(path)
        stem = os.path.splitext(os.path.basename(name))[0]
        if stem in stems:
            raise ValueError(f"{name!r} and {stems[stem]!r} would both write to <out_dir>/{stem}/; rename one")
        stems[stem] = name
        x, rate = audio.read_audio(path, mono=mono)
        check_rate(rate, f"the sample rate of {name!r}")
        if not np.isfinite(x).all():
            raise ValueError(f"audio file {name!r} contains NaN or inf samples")
        loaded.append((x, rate))
    return loaded
