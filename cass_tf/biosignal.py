"""Owns separating biosignal records (cass_tf.records): the components as a record in the input's format, and
`cass-tf separate` on EDF/BDF, WFDB, CSV and NPY files (with --events and --plot).

    cass-tf separate r01.edf --model saved_models/ecg --out_dir out --events --plot
        -> out/r01/r01.edf          EDF+: one signal per component and lead (fetal/Abdomen_1, matern/Abdomen_1, ...),
                                    the input's start time, units, physical ranges and annotations (plus, with
                                    --events, the chosen channels' R peaks); r01.edf.qrs etc.: the input's WFDB
                                    annotation files, carried along
           out/r01/r01.edf.fqrs     --events: WFDB annotations of the fetal (.mqrs: maternal) R peaks of the fused
                                    output of all leads (cass_tf.fusion; channel "fused" in the CSVs, its signal in
                                    fused.csv, its weights in fused.json), or with one lead of that lead;
                                    beats.csv (every channel's peaks), heart_rate.csv
           out/r01/separation.png   --plot: waveforms, spectrograms and the heart-rate traces under them
    A WFDB record gives out/<name>/<name>.hea + .dat (+ .fqrs/.mqrs); a CSV gives out/<stem>/<stem>.csv; an NPY
    out/<stem>/<stem>.npy; a PPG model's --events gives rates.csv (pulse and breathing rate per window, per
    estimator).

Model input: cass_tf.frontend.record_mixture (the chosen channels at the record's rate; ECG minus each median).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional, Sequence

import numpy as np

from cass_tf import events as events_module
from cass_tf import fusion, records
from cass_tf.files import plot_separation
from cass_tf.frontend import record_mixture
from cass_tf.records import Annotation, Record
from cass_tf.separator import Separator, separate

OUTPUT_EXTENSIONS = {"edf": ".edf", "bdf": ".bdf", "wfdb": "", "csv": ".csv", "npy": ".npy"}


def components_record(record: Record, names: Sequence[str], parts: dict[str, np.ndarray], rate: int,
                      extra: Sequence[tuple[float, str]] = ()) -> Record:
    """The components as a Record in the input's format: one signal per component and channel, labelled
    `component/channel` (shortened for EDF's 16 characters, records.edf_labels), with each channel's unit,
    physical range and header fields, the input's start time and annotations, plus `extra` (onset s, text)."""
    index = [record.names.index(n) for n in names]
    components = list(parts)
    if record.format in ("edf", "bdf"):
        labels = records.edf_labels(components, names)
    else:
        labels = [f"{c}/{n}" for c in components for n in names]
    per = [i for _ in components for i in index]
    header = dict(record.header)
    for key in ("digital", "transducers", "prefilters"):
        if header.get(key):
            header[key] = [header[key][i] for i in per]
    return Record(
        path=record.path, format=record.format, names=tuple(labels),
        signals=tuple(np.asarray(parts[c][k], np.float64) for c in components for k in range(len(names))),
        rates=(float(rate),) * len(labels), units=tuple(record.units[i] for i in per), start=record.start,
        annotations=record.annotations + tuple(Annotation(onset, 0.0, text, records.EDF_ANNOTATION)
                                               for onset, text in extra),
        ranges=tuple(record.ranges[i] for i in per) if record.ranges else (), header=header)


def output_path(record: Record, out_dir: str) -> str:
    """Where the components of `record` go: <out_dir>/<stem>/<stem><extension> (a WFDB record name, no extension)."""
    return os.path.join(out_dir, record.stem, record.stem + OUTPUT_EXTENSIONS[record.format])


def annotation_base(record: Record, written: str) -> str:
    """The record name WFDB annotation files take: r01.edf (ADFECGDB's r01.edf.qrs convention) for EDF/BDF, else
    the path without its extension."""
    return written if record.format in ("edf", "bdf") else os.path.splitext(written)[0]


@dataclasses.dataclass(frozen=True)
class Prepared:
    """One checked input: its record, the chosen channel names, the model's input and its rate."""

    record: Record
    names: tuple[str, ...]
    x: np.ndarray
    rate: int


def prepare(paths: Sequence[str], model: Any, channels: Optional[Sequence[str]], sample_rate: Optional[int],
            events: bool, taken: Sequence[str] = ()) -> tuple[Any, list[Prepared]]:
    """(Separator, prepared inputs): reads and checks every record (before the model loads), then chooses its
    channels (and with `events` checks the model has events), all before anything is written; `taken`: output
    folder names other inputs already use. `model`: a Separator or anything it accepts."""
    stems = {os.path.basename(t): t for t in taken}
    read = []
    for path in paths:
        record = records.read_record(path, sample_rate)
        if record.stem in stems:
            raise ValueError(f"{path!r} and {stems[record.stem]!r} would both write to <out_dir>/{record.stem}/; "
                             "rename one")
        stems[record.stem] = path
        read.append(record)
    separator = model if isinstance(model, Separator) else Separator(model)
    if events:
        events_module.require(separator.components)
    return separator, [Prepared(record, *record_mixture(record, separator, channels)) for record in read]


def fused_outputs(parts: dict[str, np.ndarray], rate: int) -> dict[str, Any]:
    """An ECG model's outputs of two or more leads of one record fused (fusion.fuse_outputs; a one-lead model's
    channels separated on their own, a multi-lead model's together), else {} (one lead, or not an ECG model)."""
    leads = next(iter(parts.values()))
    if leads.ndim != 2 or leads.shape[0] < 2 or not {"maternal", "fetal"} <= set(parts):
        return {}
    return fusion.fuse_outputs(parts, rate)


def shown_channel(found: Any) -> int:
    """The channel the figure draws: the fetal (else first) chosen channel; for a fused output, the channel with the
    largest weight in it."""
    if not found:
        return 0
    component = "fetal" if "fetal" in found.chosen else next(iter(found.chosen), None)
    if component in found.fused:
        return int(np.argmax(np.abs(found.fused[component].weights)))
    return found.chosen[component] if component else 0


def run(prepared: Sequence[Prepared], separator: Any, out_dir: str, block_seconds: Optional[float],
        events: bool = False, plot: bool = False, progress: Any = None) -> list[str]:
    """Separates each prepared record and writes its components, events and figure (module doc); returns the paths.
    `progress(index, fraction, name)` is called as each record advances."""
    written = []
    for index, item in enumerate(prepared):
        name = os.path.basename(item.record.path)
        report = (lambda f, i=index, n=name: progress(i, f, n)) if progress else None
        parts = separate(item.x, separator, sample_rate=item.rate, block_seconds=block_seconds, progress=report)
        found = events_module.detect(parts, item.names, item.rate, fused=fused_outputs(parts, item.rate)) \
            if events else None
        target = output_path(item.record, out_dir)
        extra = events_module.annotations(found) if found and item.record.format in ("edf", "bdf") else ()
        written += records.write_record(components_record(item.record, item.names, parts, item.rate, extra), target)
        if found:
            written += events_module.write(found, os.path.dirname(target), annotation_base(item.record, target))
        if plot:
            shown = shown_channel(found)
            written.append(plot_separation(
                separator, os.path.join(os.path.dirname(target), "separation.png"), item.x[shown],
                {n: v[shown] for n, v in parts.items()}, item.rate, title=f"{name}: {item.names[shown]}",
                traces=events_module.traces(found) if found else None))
    return written
