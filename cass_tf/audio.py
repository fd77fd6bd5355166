"""Owns audio files: reading and writing them (soundfile), resampling (scipy) and mono mixdown."""

from __future__ import annotations

import io
import math
import os
import struct
from typing import Any, Optional

import numpy as np
import scipy.signal
import soundfile as sf

from cass_tf import atomic

PathLike = str | os.PathLike


def read_audio(path: PathLike, expected_rate: Optional[int] = None, mono: bool = False,
               expected_channels: Optional[int] = None) -> tuple[np.ndarray, int]:
    """Reads an audio file as float32 in [-1, 1]; returns (samples, rate).

    Layout: (samples,) when the file is mono or `mono` is true (channels averaged), else
    (channels, samples), channels first. Raises FileNotFoundError for a missing file; ValueError, naming
    the file, for what `audio_info` refuses, or when its rate differs from `expected_rate`, or its channel
    count from `expected_channels` (checked before any mixdown).
    """
    audio_info(path)
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as e:
        raise ValueError(f"{os.fspath(path)!r} is not a readable audio file ({e})") from None
    channels = data.shape[1]
    if expected_rate is not None and rate != expected_rate:
        raise ValueError(f"audio file {os.fspath(path)!r} has sample rate {rate} Hz, expected {expected_rate} Hz")
    if expected_channels is not None and channels != expected_channels:
        raise ValueError(f"audio file {os.fspath(path)!r} has {channels} channel(s), expected {expected_channels}")
    samples = np.ascontiguousarray(data.T)
    if mono or channels == 1:
        samples = to_mono(samples)
    return samples, rate


def audio_info(path: PathLike) -> Any:
    """soundfile's `info` of an audio file that exists, is readable, has frames and is complete.

    Raises FileNotFoundError for a missing file and ValueError, naming the file, for a directory, a file soundfile
    cannot read, one with 0 frames, or a WAV whose data chunk is shorter than its header declares (a truncated copy
    or an interrupted write: refused rather than processed on the frames present).
    """
    name = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"audio file not found: {name!r}")
    if os.path.isdir(path):
        raise ValueError(f"{name!r} is a directory, not an audio file")
    try:
        info = sf.info(path)
    except (sf.SoundFileError, RuntimeError) as e:
        raise ValueError(f"{name!r} is not a readable audio file ({e})") from None
    if info.frames == 0:
        raise ValueError(f"audio file {name!r} is empty (0 frames)")
    declared = _wav_declared_frames(path)
    if declared is not None and info.frames < declared:
        raise ValueError(f"audio file {name!r} is truncated: its header declares {declared} frames but only "
                         f"{info.frames} are present")
    return info


def _wav_declared_frames(path: PathLike) -> Optional[int]:
    """Frames a RIFF/WAVE header's data chunk declares; None for other formats or an unknown (streamed) length."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
            return None
        block_align = 0
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if kind == b"data":
                return size // block_align if block_align and size not in (0, 0xFFFFFFFF) else None
            body = f.read(size + (size & 1))  # chunks are padded to an even size
            if kind == b"fmt " and len(body) >= 14:
                block_align = struct.unpack("<H", body[12:14])[0]


def to_mono(x: np.ndarray) -> np.ndarray:
    """Averages the channels of a (channels, samples) array; a 1-D array passes through unchanged."""
    if x.ndim == 1:
        return x
    if x.ndim != 2:
        raise ValueError(f"expected (samples,) or (channels, samples), got shape {x.shape}")
    return x.mean(axis=0, dtype=np.float64).astype(x.dtype)


def fit_length(x: np.ndarray, samples: int) -> np.ndarray:
    """float32 `x` cut or zero-padded at the end of its last axis to exactly `samples`."""
    x = np.asarray(x, np.float32)[..., :samples]
    missing = samples - x.shape[-1]
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, missing)]) if missing > 0 else x


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling along the last axis (scipy.signal.resample_poly), float32 out.

    The output has ceil(n * to_rate / from_rate) samples; equal rates return the input as float32.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be > 0, got {from_rate} -> {to_rate}")
    if from_rate == to_rate:
        return np.asarray(x, dtype=np.float32)
    g = math.gcd(from_rate, to_rate)
    with np.errstate(over="ignore"):  # values near float32's limit may overshoot to inf: callers check outputs
        return scipy.signal.resample_poly(x, to_rate // g, from_rate // g, axis=-1).astype(np.float32)


def write_audio(path: PathLike, x: np.ndarray, rate: int) -> None:
    """Writes (samples,) or (channels, samples) as a 32-bit float WAV (lossless for float32 input).

    Parent directories are created; the file appears atomically (cass_tf.atomic: a temporary in the same
    directory, then renamed over `path`), so readers never see a half-written file.
    """
    x = np.asarray(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"expected (samples,) or (channels, samples), got shape {x.shape}")
    encoded = io.BytesIO()  # encoded first: soundfile's writes into a file object swallow the OSError of a full disk
    sf.write(encoded, x.T, rate, subtype="FLOAT", format="WAV")
    with atomic.writing(path, "wb") as f:
        f.write(encoded.getbuffer())
