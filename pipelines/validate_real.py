"""Scores the shipped ECG and PPG models on real recordings (ADFECGDB, BIDMC) beside classical references.

    python pipelines/validate_real.py [--data ../shared/data] [--ecg_model [LABEL=]MODEL ...]
                                      [--ppg_model [LABEL=]MODEL ...] [--out docs/results/real.md]

Writes <out> (per-record tables, the commands), <out stem>.json (every number) and two figures beside it. Validation
only: nothing here trains or tunes; detector thresholds are cass_tf.metrics' fixed rules (chosen on synthetic data).

ECG models: every version in saved_models/ecg by default (or each --ecg_model); the detailed ADFECGDB tables and
figures are the last one's (the newest: the one served), and a side-by-side section gives every model's own-blind
and fused F1 per record, its time for a 4-lead 5-min record, and its scores on the synthetic multi-lead validation
split (MULTILEAD_CONFIG's load_recordings "test" entry, which is its data.validation_recordings: whole-signal L2 per
lead, QRS F1 of the fused outputs, cass_tf.scoring.recording_scores). `--ecg_only` scores only that, and each ECG
model's SYNTHETIC_RECORDINGS check below, to a JSON file: no page, no figures, no BIDMC.
ADFECGDB (5 records x 4 abdominal channels, 1 kHz): each channel is separated on its own (a multi-lead model, e.g.
ecg/3, takes the 4 leads together and gives each lead's outputs), and fetal R peaks
(cass_tf.realdata.fetal_peaks) are picked on the model's fetal output, on the raw channel, and on the residual of
maternal template subtraction (cancellation.template_subtraction); each is matched to the reference peaks at 50 ms.
Blind channel (the issue's rule): the one whose fetal output carries the largest share of the channel's output
energy, |fetal|^2 / (|fetal|^2 + |maternal|^2); all three methods are scored on it. Each method also gets its own
blind choice by one rule for all: the channel whose detected fetal RR series is most regular (rr_irregularity); the
best channel per method is shown as an oracle bound.
All 4 leads together (no reference in any choice): the model's per-lead fetal outputs fused by cass_tf.fusion.fuse
(maternal remnants told apart by fusion.maternal_peaks of the model's maternal outputs; the fetal beats from the 3
most regular candidates, fusion.combined_peaks), and the classical
multi-lead reference realdata.multilead_fetal (template subtraction per lead, FastICA across leads, the same blind
rule). The same methods also run on SYNTHETIC_RECORDINGS synthetic 4-lead recordings (cass_tf.data.leads, the
settings of configs/ecg.json with data.ecg.leads=4), scored against their true fetal R peaks.
BIDMC (records 01-26, PLETH at 125 Hz): cass_tf.bidmc's protocol (issue 21's): breathing rate from each PPG
model's respiratory output against annotator 1's breaths, pulse rate from its heart output against the monitor's
median HR, 32-s windows every 16 s, under every metrics.RATE_ESTIMATORS estimator, beside the raw PLETH band-passed
to 0.1-0.7 Hz / 0.6-3.5 Hz; every shipped PPG version by default (each model gets the PLETH as recorded).
ECG model input: each channel minus its median (its DC offset), at its own scale: the shipped models bring every
input to their training level themselves (model.input_rms), so separation is scale-equivariant.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from typing import Any, Sequence

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __package__ in (None, ""):  # run as a script from a checkout: make the package importable
    sys.path.insert(0, REPO)

from cass_tf import bidmc, cancellation, contract, fusion, metrics, realdata  # noqa: E402
from cass_tf.events import fetal_share, rr_irregularity  # noqa: E402  (the channel rules `cass-tf separate --events` uses)
from cass_tf.atomic import write_text  # noqa: E402

FIGURE_SECONDS = 6.0
PPG_FIGURE_SECONDS = 64.0
METHODS = ("model", "raw", "classical")  # fetal-peak sources scored on ADFECGDB
LEAD_METHODS = ("model_fused", "multilead")  # all leads together: fusion.fuse of the model, the classical reference
SYNTHETIC_CONFIG = "configs/ecg.json"
SYNTHETIC_OVERRIDES = ("data.ecg.leads=4", "data.ecg.seconds=60", "data.ecg.train_recordings=1",
                       "data.ecg.test_recordings=8", "data.cache_dir=null")
SYNTHETIC_RECORDINGS = 8
OTHER_SYNTHETIC_SEED = 1  # synthetic_leads' data seed for pipelines/maternal_rule.py's and fetal_overlap.py's checks
MULTILEAD_CONFIG = "configs/ecg_leads.json"  # its validation split: the synthetic multi-lead scores of every ECG model


def separate_channels(separator: Any, channels: np.ndarray, rate: int) -> list[dict[str, np.ndarray]]:
    """Per row of `channels` (channels, samples), its components: one cass_tf.separate call for all rows, each
    row minus its median and separated on its own."""
    from cass_tf import separate

    outputs = separate((channels - np.median(channels, axis=1, keepdims=True)).astype(np.float32), separator,
                       sample_rate=rate)
    return [{name: value[k] for name, value in outputs.items()} for k in range(channels.shape[0])]


def score_ecg(record: realdata.AbdominalRecord, separator: Any) -> dict[str, Any]:
    """Per-channel F1 of model / raw / classical fetal peaks, the blind channels and their scores."""
    tolerance = round(metrics.MATCH_SECONDS * record.rate)
    outputs = separate_channels(separator, record.abdomen, record.rate)
    leads = all_leads(outputs, record.abdomen, record.rate)
    channels = []
    for channel, out in zip(record.abdomen, outputs):
        peaks = {
            "model": realdata.fetal_peaks(out["fetal"], record.rate),
            "raw": realdata.fetal_peaks(channel, record.rate),
            "classical": realdata.classical_fetal_peaks(channel, record.rate),
        }
        channels.append({
            "share": fetal_share(out),
            "irregularity": {m: rr_irregularity(p) for m, p in peaks.items()},
            **{m: metrics.match_events(p, record.fetal_peaks, tolerance) for m, p in peaks.items()},
        })
    return {"record": record.name, "reference_beats": int(record.fetal_peaks.size), "channels": channels,
            **channel_choices(channels),
            "leads": {m: {**metrics.match_events(f.peaks, record.fetal_peaks, tolerance), "candidate": f.candidate}
                      for m, f in leads.items()}}


def all_leads(outputs: list[dict[str, np.ndarray]], abdomen: np.ndarray, rate: float) -> dict[str, fusion.Fused]:
    """The fused fetal outputs of all leads together: the model's (`fused_outputs`) and the classical multi-lead
    reference's."""
    return {"model_fused": fused_outputs(outputs, rate)["fetal"], "multilead": realdata.multilead_fetal(abdomen, rate)}


def fused_outputs(outputs: list[dict[str, np.ndarray]], rate: float) -> dict[str, fusion.Fused]:
    """fusion.fuse_outputs of a model's per-lead outputs (`separate_channels`): the fetal output of all leads, its
    maternal remnants told apart by the fused maternal output's peaks."""
    return fusion.fuse_outputs({n: np.stack([out[n] for out in outputs]) for n in ("maternal", "fetal")}, rate)


def synthetic_leads(count: int = SYNTHETIC_RECORDINGS, seed: int | None = None) -> tuple[list[Any], int]:
    """(recordings, rate): `count` synthetic 4-lead 60-s recordings, the test split of SYNTHETIC_CONFIG with
    SYNTHETIC_OVERRIDES, from data seed `seed` (default: the config's)."""
    from cass_tf.config import load_config
    from cass_tf.data import ecg

    overrides = [*SYNTHETIC_OVERRIDES, f"data.ecg.test_recordings={count}"]
    if seed is not None:
        overrides.append(f"seed={seed}")
    config = load_config(os.path.join(REPO, SYNTHETIC_CONFIG), overrides=overrides)
    return ecg.load(config)["test"], config.data.sample_rate


def score_synthetic(separator: Any) -> list[dict[str, Any]]:
    """Fetal F1 of every method on SYNTHETIC_RECORDINGS synthetic 4-lead recordings (`synthetic_leads`)."""
    recordings, rate = synthetic_leads()
    results = []
    for recording in recordings:
        truth, tolerance = recording.events["fetal"], round(metrics.MATCH_SECONDS * rate)
        outputs = separate_channels(separator, recording.mixture.astype(np.float64), rate)
        own = {}
        for method in ("model", "classical"):
            peaks = [realdata.fetal_peaks(out["fetal"], rate) if method == "model"
                     else realdata.classical_fetal_peaks(lead, rate) for out, lead in zip(outputs, recording.mixture)]
            k = int(np.argmin([rr_irregularity(p) for p in peaks]))
            own[method] = metrics.match_events(peaks[k], truth, tolerance)["f1"]
        fused = all_leads(outputs, recording.mixture.astype(np.float64), rate)
        results.append({"recording": recording.name, "own_blind": own,
                        **{m: metrics.match_events(f.peaks, truth, tolerance)["f1"] for m, f in fused.items()}})
    return results


def channel_choices(channels: list[dict[str, Any]]) -> dict[str, Any]:
    """The share-blind channel, each method's own blind channel (most regular RR), and the F1s on them and at best."""
    blind = int(np.argmax([c["share"] for c in channels]))
    own = {m: int(np.argmin([c["irregularity"][m] for c in channels])) for m in METHODS}
    return {
        "blind_channel": blind, "blind": {m: channels[blind][m]["f1"] for m in METHODS},
        "own_blind_channel": own, "own_blind": {m: channels[own[m]][m]["f1"] for m in METHODS},
        "best": {m: max(c[m]["f1"] for c in channels) for m in METHODS},
    }


def ppg_models(specs: Sequence[str], default_dir: str = "saved_models/ppg") -> dict[str, str]:
    """{label: model} from "[LABEL=]MODEL" specs (label default: the last two path parts, e.g. "ppg/2"); with no
    specs every version in `default_dir`, oldest first."""
    return labelled_models(specs, default_dir, "--ppg_model", (bidmc.BANDPASS,))


def labelled_models(specs: Sequence[str], default_dir: str, option: str, reserved: Sequence[str] = ()
                    ) -> dict[str, str]:
    """`ppg_models` for any option: {label: model}, every version in `default_dir` without specs."""
    if not specs:
        specs = [os.path.join(default_dir, str(v)) for v in contract.versions(default_dir)]
    models = {}
    for spec in specs:
        label, _, path = spec.rpartition("=")
        label = label or "/".join(os.path.normpath(path).split(os.sep)[-2:])
        if label in models or label in reserved:
            raise ValueError(f"{option}: label {label!r} given twice or reserved; name it LABEL=MODEL")
        models[label] = path
    return models


def compare_ecg(separator: Any, records: Sequence[realdata.AbdominalRecord]) -> dict[str, Any]:
    """One ECG model beside the others: per ADFECGDB record its own-blind channel's and its fused fetal F1 (no
    reference in any choice), its time for all leads of the first record, and its synthetic multi-lead scores."""
    from cass_tf import separate
    from cass_tf.config import load_config
    from cass_tf.data import load_recordings
    from cass_tf.scoring import recording_scores

    adfecgdb = []
    for record in records:
        tolerance = round(metrics.MATCH_SECONDS * record.rate)
        outputs = separate_channels(separator, record.abdomen, record.rate)
        peaks = [realdata.fetal_peaks(out["fetal"], record.rate) for out in outputs]
        own = int(np.argmin([rr_irregularity(p) for p in peaks]))
        fused = all_leads(outputs, record.abdomen, record.rate)["model_fused"]
        adfecgdb.append({"record": record.name, "own_blind_channel": own,
                         "own_blind": metrics.match_events(peaks[own], record.fetal_peaks, tolerance)["f1"],
                         "fused": metrics.match_events(fused.peaks, record.fetal_peaks, tolerance)["f1"],
                         "candidate": fused.candidate})
    config = load_config(os.path.join(REPO, MULTILEAD_CONFIG), ["data.cache_dir=null"])
    recordings = load_recordings(config)["test"]
    synthetic = recording_scores(lambda x: separate(x, separator, config.data.sample_rate), recordings,
                                 ("maternal", "fetal"), config.data.sample_rate)
    return {"source": separator.source, "multilead": separator.multilead, "adfecgdb": adfecgdb,
            "separate_seconds": time_separation(separator, records[0]),
            "synthetic_leads": {"recordings": len(recordings), "seconds": len(recordings[0]) / config.data.sample_rate,
                                "noise_snr_db": list(config.data.ecg.noise_snr_db), "scores": synthetic}}


def ecg_figure(record: realdata.AbdominalRecord, separator: Any, channel: int, path: str) -> str:
    """A real abdominal channel, the model's fetal output and the template-subtraction residual, beats marked."""
    x = record.abdomen[channel]
    out = separate_channels(separator, record.abdomen, record.rate)[channel]  # (a multi-lead model sees every lead)
    residual, _ = cancellation.template_subtraction(x, record.rate)
    rows = [("raw abdominal channel (uV)", x, realdata.fetal_peaks(x, record.rate)),
            ("model fetal output", out["fetal"], realdata.fetal_peaks(out["fetal"], record.rate)),
            ("template-subtraction residual", residual, realdata.classical_fetal_peaks(x, record.rate))]
    return _beats_figure(record, rows, f"ADFECGDB {record.name}, {realdata.ABDOMINAL_CHANNELS[channel]} "
                         "(the model's own blind channel: most regular fetal RR)", path)


def leads_figure(record: realdata.AbdominalRecord, separator: Any, path: str) -> str:
    """All 4 leads together: the first raw lead, the model's fused fetal output and the multi-lead reference's."""
    outputs = separate_channels(separator, record.abdomen, record.rate)
    fused = all_leads(outputs, record.abdomen, record.rate)
    rows = [(f"raw {realdata.ABDOMINAL_CHANNELS[0]} (uV)", record.abdomen[0],
             realdata.fetal_peaks(record.abdomen[0], record.rate))]
    rows += [(f"{title} ({fused[m].candidate})", fused[m].signal, fused[m].peaks)
             for m, title in (("model_fused", "model fetal outputs fused"),
                              ("multilead", "multi-lead classical reference"))]
    return _beats_figure(record, rows, f"ADFECGDB {record.name}: all 4 leads together, blind choices", path)


def _beats_figure(record: realdata.AbdominalRecord, rows: list[tuple[str, np.ndarray, np.ndarray]], title: str,
                  path: str) -> str:
    """FIGURE_SECONDS from minute 1 of each (title, signal, detected fetal peaks) row, reference peaks marked."""
    from cass_tf.plots import plt, save

    rate, length = record.rate, round(FIGURE_SECONDS * record.rate)
    start = rate * 60
    t = np.arange(start, start + length) / rate
    reference = record.fetal_peaks[(record.fetal_peaks >= start) & (record.fetal_peaks < start + length)]
    fig, axes = plt.subplots(len(rows), 1, figsize=(11, 7), sharex=True)
    for ax, (name, signal, detected) in zip(axes, rows):
        part = signal[start:start + length]
        ax.plot(t, part, lw=0.7, color="k")
        for k, p in enumerate(reference):
            ax.axvline(p / rate, color="g", alpha=0.4, lw=1, label="reference fetal R peak" if k == 0 else None)
        inside = detected[(detected >= start) & (detected < start + length)]
        ax.plot(inside / rate, signal[inside], "rv", ms=5, label="detected fetal peak")
        ax.set_title(name, fontsize=10)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(title)
    return save(fig, path)


def ppg_figure(record: realdata.PPGRecord, separator: Any, path: str) -> str:
    """A real PPG, the model's heart and respiratory outputs, and the annotated breaths."""
    from cass_tf.plots import plt, save

    rate, length = record.rate, round(PPG_FIGURE_SECONDS * record.rate)
    out = bidmc.separated(separator, record)
    t = np.arange(length) / rate
    breaths = record.breaths[0][record.breaths[0] < length]
    rows = [("PLETH (raw)", record.pleth), ("model heart output", out["heart"]),
            ("model respiratory output", out["respiratory"])]
    fig, axes = plt.subplots(len(rows), 1, figsize=(11, 7), sharex=True)
    for ax, (title, signal) in zip(axes, rows):
        ax.plot(t, signal[:length], lw=0.7, color="k")
        for k, b in enumerate(breaths):
            ax.axvline(b / rate, color="b", alpha=0.35, lw=1, label="annotated breath (annotator 1)" if k == 0 else None)
        ax.set_title(title, fontsize=10)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(f"BIDMC {record.name}: first {PPG_FIGURE_SECONDS:.0f} s, {separator.source}")
    return save(fig, path)


def time_separation(separator: Any, record: realdata.AbdominalRecord, repeats: int = 3) -> float:
    """Best-of-`repeats` seconds to separate all abdominal channels of a record (after one warm-up call)."""
    separate_channels(separator, record.abdomen, record.rate)
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        separate_channels(separator, record.abdomen, record.rate)
        times.append(time.perf_counter() - begin)
    return min(times)


def _f(value: float) -> str:
    return f"{value:.3f}"


def markdown(ecg: list[dict[str, Any]], ppg: list[dict[str, Any]], meta: dict[str, Any],
             synthetic: list[dict[str, Any]], models: dict[str, Any] | None = None,
             ppg_mean_removed: list[dict[str, Any]] | None = None) -> str:
    """The results page (`models`: `compare_ecg` of each ECG model by label, the side-by-side section;
    `ppg_mean_removed`: the BIDMC scores with each PLETH's mean removed, `offset_markdown`)."""
    lines = [
        "# Real-data validation: shipped models on ADFECGDB and BIDMC",
        "",
        f"<!-- generated: {os.path.basename(meta['ecg_figure']).replace('_adfecgdb.png', '.json')} by "
        "pipelines/validate_real.py (tests/test_figures.py renders it again from that file) -->",
        "",
        f"Models: `{meta['ecg_model']}`, " + ", ".join(f"`{m}`" for m in meta["ppg_models"].values())
        + f". Data: `{meta['data']}` (validation only; never "
        "trained or tuned on). Machine: " + meta["machine"] + ".",
        "",
        "```bash",
        meta["command"],
        "```",
        "",
        "Rules (none tuned on these data; see `pipelines/validate_real.py`, `cass_tf/metrics.py`, "
        "`cass_tf/realdata.py`): fetal R peaks by `realdata.fetal_peaks` (8-40 Hz band-pass, |x|, 273 ms "
        "refractory, 0.35 of the median height of the tallest candidates at >= 90 BPM), matched one-to-one to "
        "the reference at 50 ms; the threshold 0.35 was picked on synthetic data (`QRS_THRESHOLD`). Each channel "
        "minus its median, at its own scale (the models normalise their input level, `model.input_rms`); a one-lead "
        "model separates each channel on its own, a multi-lead model the 4 channels together (each channel's "
        "outputs are then its lead's). The ADFECGDB tables are `" + meta["ecg_model"] + "`'s; every ECG model is compared in "
        "*ECG models side by side*.",
        "",
        "## ADFECGDB: fetal QRS F1 (50 ms)",
        "",
        "*Share blind* (the issue's rule) = the channel whose fetal output carries the largest share of the output "
        "energy; all three methods are scored on it. *Own blind* = each method's own channel by one rule for all: "
        "the one whose detected fetal RR series is most regular (channel in brackets). *Best* is an oracle (best "
        "channel per method, knowing the reference).",
        "",
        "| record | beats | share blind ch | model | raw | classical | own blind: model (ch) | raw (ch) | "
        "classical (ch) | best model | best raw | best classical |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in ecg:
        lines.append(f"| {r['record']} | {r['reference_beats']} | {r['blind_channel'] + 1} | "
                     + " | ".join(_f(r["blind"][m]) for m in METHODS) + " | "
                     + " | ".join(f"{_f(r['own_blind'][m])} ({r['own_blind_channel'][m] + 1})" for m in METHODS)
                     + " | " + " | ".join(_f(r["best"][m]) for m in METHODS) + " |")
    means = {(key, m): _f(float(np.mean([r[key][m] for r in ecg]))) for key in ("blind", "own_blind", "best")
             for m in METHODS}
    lines.append("| **mean** | | | " + " | ".join(
        f"**{means[key, m]}**" if m == "model" and key != "best" else means[key, m]
        for key in ("blind", "own_blind", "best") for m in METHODS) + " |")
    lines += ["", "Per channel (F1; Se / PPV in the JSON):", "",
              "| record | channel | fetal share | model | raw | classical |", "|---|---|---|---|---|---|"]
    for r in ecg:
        for k, c in enumerate(r["channels"]):
            lines.append(f"| {r['record']} | {realdata.ABDOMINAL_CHANNELS[k]} | {_f(c['share'])} | "
                         f"{_f(c['model']['f1'])} | {_f(c['raw']['f1'])} | {_f(c['classical']['f1'])} |")
    lines += ["", f"![ADFECGDB]({os.path.basename(meta['ecg_figure'])})", ""]
    lines += leads_markdown(ecg, synthetic, meta)
    lines += models_markdown(ecg, models or {})
    lines += ppg_markdown(ppg)
    lines += offset_markdown(ppg, ppg_mean_removed) if ppg_mean_removed else []
    lines += ["", f"![BIDMC]({os.path.basename(meta['ppg_figure'])})", "",
              "## Speed", "",
              f"`cass_tf.separate` on ADFECGDB {meta['timed_record']} (4 channels x 5 min at 1 kHz, one 2-D "
              f"call{', the 4 leads together' if meta.get('multilead') else ', channels separated on their own'}): "
              f"{meta['separate_seconds']:.2f} s (best of 3 after a "
              f"warm-up, {meta['machine']}; {meta['load']}).", ""]
    return "\n".join(lines)


def leads_markdown(ecg: list[dict[str, Any]], synthetic: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    """The all-leads section: ADFECGDB and synthetic 4-lead tables, the fused-output figure."""
    lines = ["## ADFECGDB: all 4 leads together, fetal QRS F1 (50 ms)", "",
             "No reference in any choice. *Own blind* = the single-lead rule above (the channel with the most regular "
             "fetal RR). *Fused* = `cass_tf.fusion.fuse` of the model's 4 fetal outputs: among the leads and their "
             "FastICA components, the one with the most regular fetal RR (maternal remnants excluded by the maternal "
             "peaks of the model's maternal outputs), its beats from the QRS evidence of the 3 most regular with "
             "Pan-Tompkins search-back (`fusion.combined_peaks`). *Multi-lead classical* = `realdata.multilead_fetal`: "
             "maternal peaks of all leads, template subtraction on each lead, the same rule over the residuals and "
             "their FastICA components (after Varanini et al. 2014). The most regular candidate in brackets "
             "(0-based).", "",
             "| record | model own blind | model fused | classical own blind | multi-lead classical |",
             "|---|---|---|---|---|"]
    for r in ecg:
        lines.append(f"| {r['record']} | {_f(r['own_blind']['model'])} | {_f(r['leads']['model_fused']['f1'])} "
                     f"({r['leads']['model_fused']['candidate']}) | {_f(r['own_blind']['classical'])} | "
                     f"{_f(r['leads']['multilead']['f1'])} ({r['leads']['multilead']['candidate']}) |")
    lines.append("| **mean** | " + " | ".join(_f(float(np.mean(v))) for v in (
        [r["own_blind"]["model"] for r in ecg], [r["leads"]["model_fused"]["f1"] for r in ecg],
        [r["own_blind"]["classical"] for r in ecg], [r["leads"]["multilead"]["f1"] for r in ecg])) + " |")
    lines += ["", f"![ADFECGDB, all leads]({os.path.basename(meta['leads_figure'])})", "",
              f"Synthetic 4-lead recordings (`cass_tf.data.leads`, `{SYNTHETIC_CONFIG}` with "
              f"`{' '.join(SYNTHETIC_OVERRIDES)}`: the test split, {len(synthetic)} recordings of 60 s at its "
              "sample rate), the same methods against the true fetal R peaks; the model is separated on each lead:", "",
              "| recording | model own blind | model fused | classical own blind | multi-lead classical |",
              "|---|---|---|---|---|"]
    for r in synthetic:
        lines.append(f"| {r['recording']} | {_f(r['own_blind']['model'])} | {_f(r['model_fused'])} | "
                     f"{_f(r['own_blind']['classical'])} | {_f(r['multilead'])} |")
    if synthetic:
        lines.append("| **mean** | " + " | ".join(_f(float(np.mean(v))) for v in (
            [r["own_blind"]["model"] for r in synthetic], [r["model_fused"] for r in synthetic],
            [r["own_blind"]["classical"] for r in synthetic], [r["multilead"] for r in synthetic])) + " |")
    return lines + [""]


def models_markdown(ecg: list[dict[str, Any]], models: dict[str, Any]) -> list[str]:
    """ECG models side by side: ADFECGDB own-blind and fused F1 per record beside the classical references, the
    time for a 4-lead record, and the synthetic multi-lead validation split."""
    if not models:
        return []
    lines = ["## ECG models side by side", "",
             "ADFECGDB fetal QRS F1 (50 ms), no reference in any choice: each model's *own blind* channel (most "
             "regular fetal RR; 1-based channel in brackets) and its *fused* output of all 4 leads (candidate in "
             "brackets), beside single-lead template subtraction (own blind) and the multi-lead classical reference. "
             "A multi-lead model (ml) separates the 4 leads together; a one-lead model each lead on its own.", "",
             "| record | " + " | ".join(f"{label}{' (ml)' if m['multilead'] else ''} own blind | {label} fused"
                                       for label, m in models.items())
             + " | classical own blind | multi-lead classical |",
             "|---|" + "---|---|" * len(models) + "---|---|"]
    for k, r in enumerate(ecg):
        cells = []
        for m in models.values():
            row = m["adfecgdb"][k]
            cells += [f"{_f(row['own_blind'])} ({row['own_blind_channel'] + 1})",
                      f"{_f(row['fused'])} ({row['candidate']})"]
        lines.append(f"| {r['record']} | " + " | ".join(cells) + f" | {_f(r['own_blind']['classical'])} | "
                     f"{_f(r['leads']['multilead']['f1'])} |")
    means = []
    for m in models.values():
        means += [_f(float(np.mean([row[key] for row in m["adfecgdb"]]))) for key in ("own_blind", "fused")]
    means += [_f(float(np.mean([r["own_blind"]["classical"] for r in ecg]))),
              _f(float(np.mean([r["leads"]["multilead"]["f1"] for r in ecg])))]
    lines += ["| **mean** | " + " | ".join(f"**{v}**" for v in means) + " |", ""]
    first = next(iter(models.values()))["synthetic_leads"]
    lines += [f"Synthetic multi-lead validation split (`{MULTILEAD_CONFIG}`: {first['recordings']} recordings of "
              f"{first['seconds']:.0f} s, 4 leads, noise {first['noise_snr_db'][0]:g}-{first['noise_snr_db'][1]:g} dB), "
              "whole signals: relative L2 error per lead (mean "
              "over leads and recordings) and QRS F1 of the fused outputs (`cass_tf.fusion.fuse_outputs`) against the "
              "true R peaks; and the time to separate ADFECGDB r01 (4 leads x 5 min at 1 kHz, best of 3):", "",
              "| model | maternal L2 | fetal L2 | maternal F1 (fused) | fetal F1 (fused) | separate 4 x 5 min (s) |",
              "|---|---|---|---|---|---|"]
    for label, m in models.items():
        s = m["synthetic_leads"]["scores"]
        lines.append(f"| {label} | {_f(s['maternal']['l2'])} | {_f(s['fetal']['l2'])} | "
                     f"{_f(s['maternal']['qrs_f1'])} | {_f(s['fetal']['qrs_f1'])} | {m['separate_seconds']:.2f} |")
    return lines + [""]


def ppg_markdown(ppg: list[dict[str, Any]]) -> list[str]:
    """The BIDMC section: every source under every estimator (summary), then per record, breathing and pulse."""
    summary = bidmc.summary(ppg)
    sources = list(summary["breathing"])
    estimators = list(metrics.RATE_ESTIMATORS)
    lines = ["## BIDMC: breathing and pulse rate, mean absolute error (per minute)", "",
             "Protocol of issue 21 (`cass_tf/bidmc.py`): 32-s windows every 16 s; breathing against **annotator 1**'s "
             "breaths (the rate of those inside the window), pulse against the median of the monitor's HR in the "
             "window; *band-pass*: the raw PLETH band-passed to 0.1-0.7 / 0.6-3.5 Hz; a model: its respiratory / heart "
             "output, fed the PLETH as recorded. Estimators (`metrics.RATE_ESTIMATORS`), each after band-passing its "
             "input to the band (so the band-pass source is filtered twice; since 2026-12-07, before which only peak "
             "counting filtered and the band-pass source was filtered once): *spectral*, the dominant "
             "periodogram peak in the band; *peaks*, peak counting (mean interval between peaks); *ar*, the peak of "
             f"a Yule-Walker AR({metrics.AR_ORDER}) spectrum. Per record the MAE over its windows; then the mean and "
             "median of the 26 record MAEs (*mean of records*, the issue's headline figure, and what the push rule "
             "compares) and the MAE and median over all windows pooled.", ""]
    for quantity in bidmc.QUANTITIES:
        lines += [f"| **{quantity}** | " + " | ".join(f"{e}: mean of records (median) | {e}: pooled (median)"
                                                   for e in estimators) + " |",
                  "|---|" + "---|---|" * len(estimators)]
        for source in sources:
            row = summary[quantity][source]
            lines.append(f"| {source} | " + " | ".join(
                f"{_f(row[e]['record_mean'])} ({_f(row[e]['record_median'])}) | "
                f"{_f(row[e]['pooled_mae'])} ({_f(row[e]['pooled_median'])})" for e in estimators) + " |")
        lines.append("")
    counts = {q: metrics.rate_errors(np.concatenate([r[f"{q}/reference"] for r in ppg]),
                                     np.concatenate([r[f"{q}/reference"] for r in ppg]))["count"]
              for q in bidmc.QUANTITIES}
    lines += [f"{counts['breathing']} breathing and {counts['pulse']} pulse windows with a reference rate "
              "(windows without one are left out).", ""]
    for quantity in bidmc.QUANTITIES:
        lines += [f"Per record, {quantity} MAE:", "",
                  "| record | " + " | ".join(f"{s} {e}" for e in estimators for s in sources) + " |",
                  "|---|" + "---|" * (len(estimators) * len(sources))]
        for r in ppg:
            lines.append(f"| {r['record']} | " + " | ".join(_f(r[quantity][s][e]["mae"]) for e in estimators
                                                            for s in sources) + " |")
        lines.append("")
    return lines


def offset_markdown(as_recorded: list[dict[str, Any]], mean_removed: list[dict[str, Any]]) -> list[str]:
    """The DC-offset section: each source's mean of record MAEs with the PLETH as recorded and with its mean
    removed (bidmc.OFFSETS), per quantity and estimator."""
    before, after = bidmc.summary(as_recorded), bidmc.summary(mean_removed)
    estimators = list(metrics.RATE_ESTIMATORS)
    lines = ["### The same with each PLETH's mean removed", "",
             "A PPG's DC offset is set by the device, not by the patient, so a separator's rates should not depend "
             "on it. Each model again, fed the PLETH minus its mean (`bidmc.separated(..., offset=\"mean removed\")`); "
             "mean of the 26 record MAEs, as recorded -> mean removed. The push rule compares the PLETH as recorded "
             "(issue 21's protocol); this table shows how much of each figure is the offset's doing.", "",
             "| source | " + " | ".join(f"{q} {e}" for q in bidmc.QUANTITIES for e in estimators) + " |",
             "|---|" + "---|" * (len(bidmc.QUANTITIES) * len(estimators))]
    for source in before["breathing"]:
        lines.append(f"| {source} | " + " | ".join(
            f"{_f(before[q][source][e]['record_mean'])} -> {_f(after[q][source][e]['record_mean'])}"
            for q in bidmc.QUANTITIES for e in estimators) + " |")
    return lines + [""]


def run(data: str, ecg_models: dict[str, str], ppg_models: dict[str, str], out: str, command: str) -> dict[str, Any]:
    """Scores everything, writes <out>, its JSON and figures; returns the JSON content."""
    from cass_tf import Separator

    ecg_seps = {label: Separator(path) for label, path in ecg_models.items()}
    ecg_sep = list(ecg_seps.values())[-1]  # the newest: the detailed tables and figures
    ppg_seps = {label: Separator(path) for label, path in ppg_models.items()}
    stem = os.path.splitext(out)[0]
    ecg_records = [realdata.read_adfecgdb(r, data) for r in realdata.ADFECGDB_RECORDS]
    compared = {label: compared_ecg(label, separator, ecg_records) for label, separator in ecg_seps.items()}
    ecg = [score_ecg(r, ecg_sep) for r in ecg_records]
    for r in ecg:
        print(f"{r['record']}: blind ch {r['blind_channel'] + 1} F1 {r['blind']}, all leads "
              f"{ {m: round(v['f1'], 3) for m, v in r['leads'].items()} }", flush=True)
    ppg = bidmc.score(data, ppg_seps, progress=lambda r: print(
        f"{r['record']}: breathing spectral " + ", ".join(f"{s} {v['spectral']['mae']:.2f}"
                                                          for s, v in r["breathing"].items()), flush=True))
    ppg_mean_removed = bidmc.score(data, ppg_seps, offset=bidmc.MEAN_REMOVED)
    meta = {
        "data": data, "ecg_model": ecg_sep.source, "command": command,
        "ppg_models": {label: sep.source for label, sep in ppg_seps.items()},
        "machine": f"{os.cpu_count()}-core CPU, no GPU",
        "ecg_figure": ecg_figure(ecg_records[0], ecg_sep, ecg[0]["own_blind_channel"]["model"], f"{stem}_adfecgdb.png"),
        "leads_figure": leads_figure(ecg_records[0], ecg_sep, f"{stem}_leads.png"),
        "ppg_figure": ppg_figure(realdata.read_bidmc(realdata.BIDMC_RECORDS[0], data), list(ppg_seps.values())[-1],
                                 f"{stem}_bidmc.png"),
        "timed_record": ecg_records[0].name, "multilead": ecg_sep.multilead,
        "separate_seconds": time_separation(ecg_sep, ecg_records[0]),
        "load": "1-min load average {:.1f} while timing".format(os.getloadavg()[0]),
    }
    synthetic = score_synthetic(ecg_sep)
    result = {"meta": meta, "adfecgdb": ecg, "bidmc": ppg, "synthetic": synthetic, "ecg_models": compared,
              "bidmc_mean_removed": ppg_mean_removed}
    write_text(f"{stem}.json", json.dumps(result, indent=1, default=float) + "\n")
    write_text(out, markdown(ecg, ppg, meta, synthetic, compared, ppg_mean_removed))
    return result


def compared_ecg(label: str, separator: Any, records: Sequence[realdata.AbdominalRecord]) -> dict[str, Any]:
    """`compare_ecg`, its figures printed as they come."""
    compared = compare_ecg(separator, records)
    print(f"{label}: ADFECGDB fused fetal F1 " + ", ".join(f"{r['fused']:.3f}" for r in compared["adfecgdb"])
          + f"; synthetic multi-lead {compared['synthetic_leads']['scores']}", flush=True)
    return compared


def run_ecg_only(data: str, ecg_models: dict[str, str], out: str, command: str) -> dict[str, Any]:
    """The ECG models side by side only: `compare_ecg` and `score_synthetic` of each, written as JSON to `out`."""
    from cass_tf import Separator

    records = [realdata.read_adfecgdb(r, data) for r in realdata.ADFECGDB_RECORDS]
    compared = {}
    for label, path in ecg_models.items():
        separator = Separator(path)
        compared[label] = {**compared_ecg(label, separator, records), "synthetic": score_synthetic(separator)}
    meta = {"data": data, "command": command, "machine": f"{os.cpu_count()}-core CPU, no GPU",
            "load": "1-min load average {:.1f} at the end".format(os.getloadavg()[0])}
    result = {"meta": meta, "ecg_models": compared}
    write_text(out, json.dumps(result, indent=1, default=float) + "\n")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data", help="folder holding ADFECGDB/ and BIDMC/")
    parser.add_argument("--ecg_model", action="append", default=[], metavar="[LABEL=]MODEL",
                        help="ECG model to score (repeatable; default: every version in saved_models/ecg; the last "
                             "one gets the detailed tables)")
    parser.add_argument("--ppg_model", action="append", default=[], metavar="[LABEL=]MODEL",
                        help="PPG model to score (repeatable; default: every version in saved_models/ppg)")
    parser.add_argument("--out", default="docs/results/real.md", help="results page; JSON and PNGs go beside it "
                        "(--ecg_only: the JSON file to write)")
    parser.add_argument("--ecg_only", action="store_true",
                        help="only the ECG models side by side (ADFECGDB per record, the synthetic multi-lead "
                             "validation split, the time, the synthetic 4-lead check), as JSON to --out")
    args = parser.parse_args(argv)
    if args.ecg_only and not args.out.endswith(".json"):
        parser.error(f"--out: with --ecg_only, the JSON file to write (a .json path), got {args.out!r}")
    for sub in ("ADFECGDB",) if args.ecg_only else ("ADFECGDB", "BIDMC"):
        if not os.path.isdir(os.path.join(args.data, sub)):
            parser.error(f"--data: no {sub}/ folder in {args.data!r}")
    command = "python pipelines/validate_real.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        ecg = labelled_models(args.ecg_model, "saved_models/ecg", "--ecg_model")
        models = ppg_models(args.ppg_model)
    except ValueError as e:
        parser.error(str(e))
    if not ecg:
        parser.error("--ecg_model: no ECG model given and none in saved_models/ecg")
    try:
        if args.ecg_only:
            run_ecg_only(args.data, ecg, args.out, command.strip())
        else:
            run(args.data, ecg, models, args.out, command.strip())
    except (FileNotFoundError, ImportError) as e:  # a missing record file or reader: one line (nothing was written)
        parser.error(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
