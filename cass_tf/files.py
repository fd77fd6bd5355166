"""Owns separating files into files, the `separate` command's work on audio: every input checked before anything is
written, <out_dir>/<stem>/<component>.wav at each input's own rate, a progress bar, and separation.png.

    cass-tf separate a.wav b.flac --model saved_models/bach10 --out_dir out/ [--plot]
        -> out/a/<component>.wav, out/b/<component>.wav (32-bit float WAV at each input's own rate)
           [and out/a/separation.png: waveforms and spectrograms]     (python -m cass_tf.separation: the same)

`cass_tf.separation` is this module (its `python -m` runner), and it also gives `separate`, `Separator` and
`DEFAULT_BLOCK_SECONDS` (cass_tf.separator), so `from cass_tf.separation import Separator, run_files` works.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Optional, Sequence, Union

import numpy as np

from cass_tf import audio, plots
from cass_tf.checks import PathLike, check_audio_files, check_block_seconds
from cass_tf.frontend import separate_mixtures
from cass_tf.separator import DEFAULT_BLOCK_SECONDS, Separator, in_blocks, separate  # noqa: F401 (cass_tf.separation.*)

PLOT = "separation.png"  # run_files(plot=True): beside each file's WAVs



class _Bar:
    """A one-line progress bar on stderr (redrawn on a terminal; a line per file otherwise)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.tty = total, enabled, sys.stderr.isatty()
        self.started = time.time()

    def show(self, index: int, fraction: float, name: str, final: bool = False) -> None:
        if not self.enabled or not (self.tty or final):
            return
        overall = (index + fraction) / self.total
        filled = int(round(30 * overall))
        line = (f"[{'=' * filled}{'.' * (30 - filled)}] {100 * overall:5.1f}%  file {index + 1}/{self.total} "
                f"{name}  {time.time() - self.started:.0f}s")
        sys.stderr.write(("\r" + line + " " * 4) if self.tty else line + "\n")
        if final and self.tty and index + 1 == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()



def run_files(paths: Sequence[str], model: Union[PathLike, Separator], out_dir: str,
              block_seconds: Optional[float] = DEFAULT_BLOCK_SECONDS, show_progress: bool = True,
              plot: bool = False, mono: bool = False) -> list[str]:
    """Separates each file into `<out_dir>/<stem>/<component>.wav` (and with `plot`, `<out_dir>/<stem>/separation.png`,
    see `plot_separation`); everything is validated first. Returns the paths written. Each WAV has its input's
    channels (each separated on its own), or one with `mono` (channels averaged first); the plot shows channel 0.
    A failure while separating or writing (a full disk) raises a RuntimeError listing the outputs already written."""
    inputs = check_audio_files(paths, mono)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"out_dir {out_dir!r} exists and is not a directory")
    check_block_seconds(block_seconds)
    separator = model if isinstance(model, Separator) else Separator(model)
    bar = _Bar(len(paths), show_progress)
    written: list[str] = []
    for index, (path, (x, rate)) in enumerate(zip(paths, inputs)):
        try:
            _write_one(separator, path, x, rate, out_dir, block_seconds, plot, bar, index, written)
        except Exception as e:  # noqa: BLE001 (whatever stopped it, the user must know what is on disk)
            detail = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise RuntimeError(f"{detail}; stopped at input {os.fspath(path)!r}, having written {len(written)} "
                               f"outputs: {', '.join(written) or 'none'}") from e
    return written



def _write_one(separator: Separator, path: PathLike, x: np.ndarray, rate: int, out_dir: str,
               block_seconds: Optional[float], plot: bool, bar: _Bar, index: int, written: list[str]) -> None:
    """run_files' work on one checked input: its WAVs (and plot), each path appended to `written` once written."""
    name = os.path.basename(path)
    run = in_blocks(separator, block_seconds, lambda f: bar.show(index, f, name), [x.shape[-1]])
    parts = separate_mixtures([(x, rate)], False, separator.sample_rate, run, names=[repr(os.fspath(path))])
    stem = os.path.splitext(name)[0]
    for component, signal in parts.items():
        target = os.path.join(out_dir, stem, f"{component}.wav")
        audio.write_audio(target, signal, rate)
        written.append(target)
    if plot:
        first = {n: v if v.ndim == 1 else v[0] for n, v in parts.items()}
        written.append(plot_separation(separator, os.path.join(out_dir, stem, PLOT), x if x.ndim == 1 else x[0],
                                       first, rate, title=name))
    bar.show(index, 1.0, name, final=True)



def plot_separation(separator: Separator, path: str, mixture: np.ndarray, estimates: dict[str, np.ndarray], rate: int,
                    truth: Optional[dict[str, np.ndarray]] = None, title: Optional[str] = None,
                    traces: Optional[dict[str, tuple[np.ndarray, np.ndarray]]] = None) -> str:
    """Draws a mixture, its estimates (and the true components, if known; rate `traces` under them) -> PNG at `path`
    (cass_tf.plots.separation), with spectrograms of the model's STFT window and hop, in seconds at `rate`."""
    stft, scale = separator._loaded.config.stft, rate / separator.sample_rate
    window, hop = (max(1, round(samples * scale)) for samples in (stft.window, stft.hop))
    return plots.separation(path, mixture, estimates, rate, window, hop, truth, title, traces)
