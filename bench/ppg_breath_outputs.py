"""Shows how much of each PPG respiratory output's breathing band is the breath, on BIDMC (why magnitude models read
breathing better than complex-mask models, saved_models/README.md "Candidates J to N").

    python bench/ppg_breath_outputs.py [--ppg_model LABEL=saved_models/ppg/2 ...] [--record 03]
        [--out docs/raw/ppg_breath_outputs.json] [--plot docs/results/ppg_breath_outputs.png]

Per source (the band-passed PLETH, each model's respiratory output), record and 32-s window (hop 16 s, as
cass_tf.bidmc scores rates): the signal band-passed to metrics.BREATHING_BAND as every rate estimator does first, its
periodogram inside the band (metrics.band_periodogram, the "spectral" estimator's), and the share of that band's
power within BREATH_HALF_WIDTH of annotator 1's rate in the window. A share near 1 is an output whose band holds the
breath alone, whatever the estimator; a low share leaves the estimators to pick among other waves. Reported per
record (mean over windows with a reference) and as the mean over records. The plot shows one record: a minute of each
source with annotator 1's breaths, and each source's whole-record spectrum. BIDMC is validation data: this only
reports; nothing here is chosen or fitted on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cass_tf import bidmc, metrics, plots, realdata  # noqa: E402
from cass_tf.atomic import write_text  # noqa: E402
from cass_tf.separator import Separator  # noqa: E402
from pipelines.validate_real import ppg_models  # noqa: E402

BREATH_HALF_WIDTH = 3.0 / 60.0  # Hz: +-3 breaths/min around the annotated rate, about a 32-s window's main lobe
PLOT_SECONDS = (120.0, 180.0)  # the stretch of the plotted record shown as waveforms


def breathing_signals(record: realdata.PPGRecord, sources: dict[str, Any]) -> dict[str, np.ndarray]:
    """{source: the respiratory signal band-passed to metrics.BREATHING_BAND}; the band-pass source is the PLETH."""
    raw = {label: record.pleth if model is None else bidmc.separated(model, record)["respiratory"]
           for label, model in sources.items()}
    return {label: metrics.bandpass(x, record.rate, metrics.BREATHING_BAND) for label, x in raw.items()}


def breath_share(signal: np.ndarray, rate: float, reference: np.ndarray) -> float:
    """Mean over windows with a reference rate (per minute) of the in-band power share within BREATH_HALF_WIDTH of
    that rate."""
    shares = []
    for (a, b), expected in zip(metrics.rate_windows(signal.size, rate, hop=metrics.RATE_HOP_SECONDS), reference):
        frequencies, power = metrics.band_periodogram(signal[a:b], rate, metrics.BREATHING_BAND)
        if np.isfinite(expected) and power.sum() > 0:
            near = np.abs(frequencies - expected / 60.0) <= BREATH_HALF_WIDTH
            shares.append(power[near].sum() / power.sum())
    return float(np.mean(shares)) if shares else float("nan")


def plot(path: str, record: realdata.PPGRecord, signals: dict[str, np.ndarray]) -> None:
    """A minute of each source with annotator 1's breaths, and each source's whole-record spectrum below 1 Hz."""
    fig, axes = plots.plt.subplots(len(signals) + 1, 1, figsize=(10, 2 * len(signals) + 2.5))
    rate, (start, stop) = record.rate, PLOT_SECONDS
    time = np.arange(record.pleth.size) / rate
    shown = (time >= start) & (time < stop)
    breaths = record.breaths[bidmc.BREATH_ANNOTATOR] / rate
    for ax, (label, x) in zip(axes, signals.items()):
        ax.plot(time[shown], x[shown] / (np.std(x[shown]) or 1.0), lw=1)
        for t in breaths[(breaths >= start) & (breaths < stop)]:
            ax.axvline(t, color="grey", lw=0.6, ls=":")
        ax.set_ylabel(label, fontsize=8)
    axes[-2].set_xlabel("s (dotted: annotator 1's breaths)")
    frequencies = np.fft.rfftfreq(record.pleth.size, 1.0 / rate)
    low = frequencies < 1.0
    for label, x in signals.items():
        power = np.abs(np.fft.rfft(x)) ** 2
        axes[-1].plot(frequencies[low] * 60.0, power[low] / power[low].max(), lw=1, label=label)
    axes[-1].axvspan(*(60.0 * np.array(metrics.BREATHING_BAND)), color="grey", alpha=0.1)
    axes[-1].set_xlabel("per minute (shaded: the estimators' breathing band)")
    axes[-1].set_ylabel("power / max", fontsize=8)
    axes[-1].legend(fontsize=7)
    fig.suptitle(f"{record.name}: breathing-band signals of each source, normalised")
    plots.save(fig, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--ppg_model", action="append", default=None, help="[LABEL=]MODEL (repeatable)")
    parser.add_argument("--record", default="03", help="the BIDMC record plotted")
    parser.add_argument("--out", default="docs/raw/ppg_breath_outputs.json")
    parser.add_argument("--plot", default="docs/results/ppg_breath_outputs.png")
    args = parser.parse_args()
    models = ppg_models(args.ppg_model or ["saved_models/ppg/1", "saved_models/ppg/2"])
    sources = {bidmc.BANDPASS: None, **{label: Separator(path) for label, path in models.items()}}
    rows = []
    for name in realdata.BIDMC_RECORDS:
        record = realdata.read_bidmc(name, args.data)
        signals = breathing_signals(record, sources)
        reference = bidmc.references(record)["breathing"]
        rows.append({"record": record.name, **{s: breath_share(x, record.rate, reference) for s, x in signals.items()}})
        print(name, {s: round(rows[-1][s], 3) for s in sources}, flush=True)
        if name == args.record:
            plot(args.plot, record, signals)
    means = {s: float(np.nanmean([r[s] for r in rows])) for s in sources}
    meta = {"command": "python bench/ppg_breath_outputs.py " + " ".join(sys.argv[1:]), "models": models,
            "machine": f"{os.cpu_count()}-core CPU, no GPU", "statistic": "mean over records of each record's mean "
            f"window share of in-band power within {BREATH_HALF_WIDTH * 60:g} /min of annotator 1's rate"}
    write_text(args.out, json.dumps({"meta": meta, "mean": means, "records": rows}, indent=1) + "\n")
    print(json.dumps(means, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
