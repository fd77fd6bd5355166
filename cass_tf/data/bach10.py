"""Loads the real Bach10 dataset (Duan & Pardo) into `Recording`s: chosen stems, mixture, train/test split."""

from __future__ import annotations

import functools
import os

import numpy as np

from cass_tf import audio
from cass_tf.config import Config
from cass_tf.data import Recording

SOURCE_RATE = 44100
FILE_SUFFIX = {"violin": "violin", "clarinet": "clarinet", "saxophone": "saxphone", "bassoon": "bassoon"}
MAX_LENGTH_MISMATCH_S = 0.1  # stems of one piece longer apart than this are not the same take


def load(config: Config) -> dict[str, list[Recording]]:
    """{"train": [...], "test": [...]} Bach10 pieces at `config.data.sample_rate`, one `Recording` per piece.

    Pieces are the sub-directories of `data.bach10.root`, sorted; `test_pieces` are the test split, the rest
    train. Only the stems of `data.components` are read ("saxophone" is the dataset's `-saxphone.wav`); every
    file must be mono at 44.1 kHz. Stems of a piece may differ by a few samples: all are trimmed to the
    shortest. The mixture is, by `data.bach10.mixture`:
      - "components": the sum of the chosen stems, so the mixture holds exactly the targets; or
      - "full": the dataset's four-instrument mix `<piece>.wav` (the other instruments act as interference).
    Both are offered because the paper is ambiguous: it separates bassoon and saxophone "from the ensemble
    of them". Files are cached in memory (per absolute path and rate), so a second `load` reads nothing.
    """
    params = config.data.bach10
    pieces = _pieces(params.root, params.test_pieces)
    splits: dict[str, list[Recording]] = {"train": [], "test": []}
    for piece in pieces:
        split = "test" if piece in params.test_pieces else "train"
        splits[split].append(_load_piece(config, piece))
    return splits


def _pieces(root: str, test_pieces: tuple[str, ...]) -> list[str]:
    """The piece directories under `root`, sorted, after checking the test pieces are there and leave some to train on."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"data.bach10.root: Bach10 directory not found: {root!r} ({os.path.abspath(root)!r})")
    pieces = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    missing = [p for p in test_pieces if p not in pieces]
    if missing:
        raise ValueError(f"data.bach10.test_pieces: no piece {missing[0]!r} in {root!r} (has {pieces})")
    if len(test_pieces) >= len(pieces):
        raise ValueError(f"data.bach10.test_pieces: {list(test_pieces)} leave none of the {len(pieces)} pieces in "
                         f"{root!r} to train on")
    return pieces


def _load_piece(config: Config, piece: str) -> Recording:
    rate = config.data.sample_rate
    names = config.data.components
    folder = os.path.abspath(os.path.join(config.data.bach10.root, piece))
    paths = [os.path.join(folder, f"{piece}-{FILE_SUFFIX[name]}.wav") for name in names]
    full = config.data.bach10.mixture == "full"
    if full:
        paths.append(os.path.join(folder, f"{piece}.wav"))
    waves = _trim(piece, [_read(path, rate) for path in paths], rate)
    components = dict(zip(names, waves))
    mixture = waves[-1] if full else np.sum(np.stack(waves), axis=0, dtype=np.float32)
    return Recording(name=piece, mixture=mixture, components=components)


def _trim(piece: str, waves: list[np.ndarray], rate: int) -> list[np.ndarray]:
    lengths = [len(w) for w in waves]
    if max(lengths) - min(lengths) > MAX_LENGTH_MISMATCH_S * rate:
        raise ValueError(f"Bach10 piece {piece!r}: files differ in length by more than {MAX_LENGTH_MISMATCH_S} s "
                         f"({lengths} samples at {rate} Hz)")
    return [w[:min(lengths)] for w in waves]


@functools.lru_cache(maxsize=None)
def _read(path: str, rate: int) -> np.ndarray:
    """One mono 44.1 kHz file resampled to `rate`, read once per process; read-only so the cache stays intact."""
    samples, _ = audio.read_audio(path, expected_rate=SOURCE_RATE, expected_channels=1)
    wave = audio.resample(samples, SOURCE_RATE, rate)
    wave.setflags(write=False)
    return wave
