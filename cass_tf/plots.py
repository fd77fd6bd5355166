"""Owns the PNG figures: training curves, discriminator outputs, separations (matplotlib, Agg backend)."""

from __future__ import annotations

import math
from typing import Mapping

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cass_tf import atomic  # noqa: E402
from cass_tf.rundir import MAGNITUDE_L2, SIGNAL_L2, WAVEFORM_L2  # noqa: E402
from cass_tf.spectral import spectrogram_db  # noqa: E402

MAX_FRAMES = 2000  # separation(): spectrogram columns drawn at most (the hop grows for longer signals)
MAX_POINTS = 4000  # separation(): waveform points drawn at most (longer signals: a min/max envelope)
DYNAMIC_RANGE_DB = 80.0  # separation(): spectrogram colours span this far below the mixture's peak


def training_curves(history: list[dict[str, float]], path: str) -> str:
    """Per-epoch test errors per component (left: waveform L2 of crops solid, of whole recordings dotted, magnitude
    L2 dashed) and training losses (right), log scale -> PNG at `path`."""
    epochs = [row["epoch"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for key in history[-1]:
        series = [row[key] for row in history]
        if key.startswith(WAVEFORM_L2):
            left.semilogy(epochs, series, label=f"{key.split('/', 1)[1]} (waveform)")
        elif key.startswith(SIGNAL_L2):
            left.semilogy(epochs, series, ":", label=f"{key.split('/', 1)[1]} (whole recordings)")
        elif key.startswith(MAGNITUDE_L2):
            left.semilogy(epochs, series, "--", label=f"{key.split('/', 1)[1]} (magnitude)")
        elif key.startswith(("ae_loss/", "d_loss/")):
            right.semilogy(epochs, series, label=key)
    left.set(title="test relative L2 error", xlabel="epoch")
    right.set(title="training losses", xlabel="epoch")
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return save(fig, path)


def save(fig: plt.Figure, path: str, tight: bool = True) -> str:
    """Writes `fig` atomically as PNG and closes it (`tight`: tight_layout first)."""
    if tight:
        fig.tight_layout()
    try:
        with atomic.writing(path, "wb") as f:
            fig.savefig(f, format="png", dpi=110)
    finally:
        plt.close(fig)
    return path


def test_l2_curves(histories: dict[str, list[dict[str, float]]], components: list[str] | tuple[str, ...], path: str,
                   key: str = WAVEFORM_L2 + "{}", tail: float = 0.4) -> str:
    """Paper Figs. 4/5: log test relative L2 per epoch, one row per component, one line per variant -> PNG.

    `histories` maps a variant name to its history.csv rows; `key` formats the column for a component. The left
    column shows every epoch, the right one the last `tail` fraction of them (the paper's zoom on late training).
    """
    fig, axes = plt.subplots(len(components), 2, figsize=(11, 3.2 * len(components)), squeeze=False)
    for row, name in enumerate(components):
        column = key.format(name)
        for variant, history in histories.items():
            points = [(r["epoch"], r[column]) for r in history if column in r]
            if not points:
                continue
            epochs, values = zip(*points)
            start = max(0, min(int(len(epochs) * (1 - tail)), len(epochs) - 2))
            style = ".-" if len(epochs) < 30 else "-"
            axes[row, 0].semilogy(epochs, values, style, label=variant)
            axes[row, 1].semilogy(epochs[start:], values[start:], style, label=variant)
        axes[row, 0].set(title=f"{name}: test relative L2 (waveform)", xlabel="epoch", ylabel="relative L2")
        axes[row, 1].set(title=f"{name}: last {round(100 * tail)}% of epochs", xlabel="epoch")
        for ax in axes[row]:
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
    return save(fig, path)


def discriminator_outputs(outputs: dict[str, dict[str, dict[str, "object"]]], path: str) -> str:
    """Paper Fig. 6: sigmoid(D_judge(AE_source(X))) per test sample, source != judge, one line per variant -> PNG.

    `outputs` maps a variant name to {judge: {source: probabilities}} (cass_tf.scoring.discriminator_outputs);
    the "real" entries (D_judge on the true component) are drawn dotted for reference.
    """
    pairs = sorted({(j, s) for per in outputs.values() for j, sources in per.items() for s in sources if s != "real"})
    fig, axes = plt.subplots(len(pairs), 1, figsize=(10, 3 * len(pairs)), squeeze=False)
    for ax, (judge, source) in zip(axes[:, 0], pairs):
        for index, (variant, per) in enumerate(outputs.items()):
            color = f"C{index}"
            if source in per.get(judge, {}):
                ax.plot(per[judge][source], ".-", color=color, label=f"{variant}: D_{judge}(AE_{source}(X))")
            if "real" in per.get(judge, {}):
                ax.plot(per[judge]["real"], ":", color=color, alpha=0.6, label=f"{variant}: D_{judge}(real {judge})")
        ax.set(title=f"{source} autoencoder output -> {judge} discriminator", xlabel="test sample",
               ylabel="P(real)", ylim=(-0.05, 1.05))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    return save(fig, path)



def separation(path: str, mixture: np.ndarray, estimates: Mapping[str, np.ndarray], sample_rate: int, window: int,
               hop: int, truth: Mapping[str, np.ndarray] | None = None, title: str | None = None,
               traces: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> str:
    """A separation at a glance -> PNG at `path`: one row for the mixture, then per component its true signal (when
    `truth` is given) and its estimate; waveform left, spectrogram right (Hann `window`, `hop`, in dB below the
    mixture's peak). All signals are 1-D at `sample_rate`; a component's rows share the waveform's y-axis.
    `traces` {label: (seconds, values)} (e.g. heart-rate traces) add one row each under the waveforms."""
    rows: list[tuple[str, np.ndarray, str | None]] = [("mixture", np.asarray(mixture), None)]
    for name, estimate in estimates.items():
        if truth is not None:
            rows.append((f"{name} (true)", np.asarray(truth[name]), name))
        rows.append((f"{name} (estimate)", np.asarray(estimate), name))
    hop = max(hop, math.ceil(len(mixture) / MAX_FRAMES))  # a long signal: fewer frames, the same window
    peak = float(np.max(spectrogram_db(rows[0][1], window, hop)))
    limits = {name: max(float(np.max(np.abs(s))) for _, s, c in rows if c == name) or 1.0 for name in estimates}
    seconds = len(mixture) / sample_rate
    traces = dict(traces or {})
    fig, axes = plt.subplots(len(rows) + len(traces), 2, figsize=(13, 1.8 * (len(rows) + len(traces)) + 0.8),
                             squeeze=False, layout="constrained")
    for (label, (times, values)), (left, right) in zip(traces.items(), axes[len(rows):]):
        left.plot(times, values, ".-", color="C2", lw=1)
        left.set(xlim=(0, seconds), xlabel="seconds", ylabel=label.split(" (")[0])
        left.set_title(label, fontsize=8, loc="left")
        right.axis("off")
    axes = axes[:len(rows)] if traces else axes
    for (label, signal, component), (wave, spectrum) in zip(rows, axes):
        color = "C0" if component is None else "C1"
        times, low, high = _envelope(signal, sample_rate)
        if low is high:
            wave.plot(times, low, color=color, lw=0.7)
        else:
            wave.fill_between(times, low, high, color=color, lw=0.7)
        if component is not None:
            wave.set_ylim(-1.05 * limits[component], 1.05 * limits[component])
        wave.set(xlim=(0, seconds), ylabel=label)
        image = spectrum.imshow(spectrogram_db(signal, window, hop), origin="lower", aspect="auto", cmap="magma",
                                extent=(0, seconds, 0, sample_rate / 2), vmin=peak - DYNAMIC_RANGE_DB, vmax=peak)
        spectrum.set(ylabel="Hz")
    for ax in axes[-1]:
        ax.set_xlabel("seconds")
    fig.colorbar(image, ax=axes[:, 1].tolist(), label="dB", fraction=0.03)
    if title:
        fig.suptitle(title)
    return save(fig, path, tight=False)


def _envelope(signal: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, low, high): the signal itself (low is high) when short, else its min and max over MAX_POINTS spans."""
    if len(signal) <= MAX_POINTS:
        return np.arange(len(signal)) / sample_rate, signal, signal
    starts = np.linspace(0, len(signal), MAX_POINTS + 1).astype(int)[:-1]
    return starts / sample_rate, np.minimum.reduceat(signal, starts), np.maximum.reduceat(signal, starts)
