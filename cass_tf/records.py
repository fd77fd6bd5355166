"""Owns biosignal files: `Record`, reading and writing EDF/EDF+/BDF (pyedflib), WFDB (wfdb), CSV and NPY, and choosing
channels.

    from cass_tf.records import read_record, write_record, select
    record = read_record("r01.edf")               # names, rates, units, start time, annotations, physical ranges
    names, x, rate = select(record, "ecg")        # the abdominal leads (DEFAULT_CHANNELS), (channels, samples)

A file is untrusted input: everything a reader needs is checked before the library reads it (an EDF header's
signal count and record count against the file's size, a WFDB header's signal files and their sizes, every CSV row
and cell), and anything wrong is a ValueError naming the file and what is wrong (FileNotFoundError for a missing
file). Writers publish through cass_tf.atomic (all files of one record appear together, the header last).
EDF/BDF and WFDB need the optional extra `pip install ".[biosignal]"` (pyedflib, wfdb); CSV and NPY need nothing.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import fnmatch
import glob
import math
import os
import re
import warnings
from typing import Any, Optional, Sequence, Union

import numpy as np

from cass_tf import atomic, checks

PathLike = Union[str, os.PathLike]
FORMATS = {".edf": "edf", ".bdf": "bdf", ".hea": "wfdb", ".csv": "csv", ".npy": "npy"}
MAX_CHANNELS = 4096  # EDFlib reads at most this many signals; more is refused before anything is allocated
EDF_LABEL_CHARS = 16  # an EDF signal label has 16 characters
EDF_ANNOTATION_SIGNALS = 64  # EDFlib writes at most this many annotation signals
# Channels a model of each data.source separates unless told otherwise (fnmatch patterns, case-insensitive).
DEFAULT_CHANNELS = {"ecg": ("abdomen*", "abd*", "aecg*"), "ppg": ("pleth*", "ppg*")}
TIME_COLUMNS = ("time", "t", "timestamp", "seconds")  # a CSV column of sample times (its unit in brackets)
TIME_UNITS = {"s": 1.0, "sec": 1.0, "ms": 1e-3, "us": 1e-6, "min": 60.0}
EDF_ANNOTATION = "edf"  # Annotation.source of EDF+ annotations; WFDB annotation files use their extension


@dataclasses.dataclass(frozen=True)
class Annotation:
    """One annotation: `onset` seconds from the record's start, `duration` seconds (0: an instant), `label` (EDF+
    text or a WFDB symbol), `source` ("edf", or the extension of the WFDB annotation file it came from, e.g. "qrs")
    and `note` (a WFDB aux note)."""

    onset: float
    duration: float
    label: str
    source: str
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Record:
    """A multichannel biosignal: one float64 array per channel in physical units, each with its own rate.

    `ranges`: each channel's declared physical (min, max) (EDF), or None; `header`: format-specific fields a writer
    keeps (EDF: record_seconds, digital ranges, transducers, prefilters, patient fields; WFDB: fmt; CSV: time_offset).
    """

    path: str
    format: str  # "edf", "bdf", "wfdb", "csv" or "npy"
    names: tuple[str, ...]
    signals: tuple[np.ndarray, ...]
    rates: tuple[float, ...]
    units: tuple[str, ...]
    start: Optional[datetime.datetime] = None
    annotations: tuple[Annotation, ...] = ()
    ranges: tuple[Optional[tuple[float, float]], ...] = ()
    header: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def stem(self) -> str:
        """The record's name: the file name without its extension."""
        return os.path.splitext(os.path.basename(self.path))[0]


def is_record(path: PathLike) -> bool:
    """Whether `path` names a biosignal file by its extension (.edf, .bdf, .hea, .csv, .npy) or is a WFDB record
    name with a .hea beside it."""
    name = os.fspath(path)
    return os.path.splitext(name)[1].lower() in FORMATS or (not os.path.splitext(name)[1]
                                                             and os.path.isfile(name + ".hea"))


def read_record(path: PathLike, sample_rate: Optional[int] = None) -> Record:
    """The checked Record in a biosignal file; `sample_rate` (Hz) is needed for NPY and for a CSV without a time
    column (a file that states its rate must agree with it). See the module doc for what is checked."""
    name = os.fspath(path)
    kind = FORMATS.get(os.path.splitext(name)[1].lower(), "wfdb")
    target = name if kind != "wfdb" or name.lower().endswith(".hea") else name + ".hea"
    if not os.path.exists(target):
        raise FileNotFoundError(f"biosignal file not found: {target!r}")
    if os.path.isdir(target):
        raise ValueError(f"{target!r} is a directory, not a biosignal file")
    reader = {"edf": _read_edf, "bdf": _read_edf, "wfdb": _read_wfdb, "csv": _read_csv, "npy": _read_npy}[kind]
    record = reader(name, sample_rate)
    _check_record(record, sample_rate)
    return record


def _check_record(record: Record, sample_rate: Optional[int]) -> None:
    duplicates = sorted({n for n in record.names if record.names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{record.path}: duplicate channel names {duplicates}; channels must be told apart by name")
    for n, x, rate in zip(record.names, record.signals, record.rates):
        if not (math.isfinite(rate) and 0 < rate <= checks.MAX_SAMPLE_RATE):
            raise ValueError(f"{record.path}: channel {n!r} has sample rate {rate:g} Hz (expected 0 < rate <= "
                             f"{checks.MAX_SAMPLE_RATE})")
        if x.size == 0:
            raise ValueError(f"{record.path}: channel {n!r} has no samples")
        bad = np.flatnonzero(~np.isfinite(x))
        if bad.size:
            raise ValueError(f"{record.path}: channel {n!r} has {bad.size} NaN or infinite sample(s), the first at "
                             f"sample {int(bad[0])}")
    stated = {round(r) for r in record.rates} if record.format in ("edf", "bdf", "wfdb") else set()
    if sample_rate is not None and stated and stated != {sample_rate}:
        raise ValueError(f"{record.path}: sample_rate={sample_rate} was given but the file states "
                         f"{sorted(stated)} Hz (a file's own rate is used; leave sample_rate out)")


# ---- choosing channels ----

def select(record: Record, source: Optional[str] = None, channels: Optional[Sequence[Union[str, int]]] = None
           ) -> tuple[tuple[str, ...], np.ndarray, int]:
    """(names, float32 (channels, samples), rate) of the chosen channels: `channels` (names or 0-based indices), else
    those matching DEFAULT_CHANNELS[source], else (no default for the source, or one channel in the file) all.

    Raises ValueError naming the file and listing its channels when nothing matches, and when the chosen channels
    differ in rate or length (choose channels of one rate).
    """
    listing = ", ".join(record.names)
    if channels is not None:
        chosen = [_channel_index(record, c, listing) for c in channels]
        if not chosen:
            raise ValueError(f"{record.path}: the channel list is empty (the file has: {listing})")
    elif source in DEFAULT_CHANNELS and len(record.names) > 1:
        patterns = DEFAULT_CHANNELS[source]
        chosen = [i for i, n in enumerate(record.names) if any(fnmatch.fnmatch(n.lower(), p) for p in patterns)]
        if not chosen:
            raise ValueError(f"{record.path}: no channel matches the {source} model's default ({', '.join(patterns)});"
                             f" the file has: {listing}; choose with --channels (names or 0-based indices)")
    else:
        chosen = list(range(len(record.names)))
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"{record.path}: a channel is chosen twice ({[record.names[i] for i in chosen]})")
    shapes = {(record.rates[i], record.signals[i].size) for i in chosen}
    if len(shapes) > 1:
        raise ValueError(f"{record.path}: the chosen channels differ in rate or length ("
                         + ", ".join(f"{record.names[i]}: {record.rates[i]:g} Hz x {record.signals[i].size}"
                                     for i in chosen) + "); choose channels of one rate")
    rate = record.rates[chosen[0]]
    checks.check_rate(rate, f"{record.path}: the sample rate of {record.names[chosen[0]]!r}")
    return (tuple(record.names[i] for i in chosen), np.stack([record.signals[i] for i in chosen]).astype(np.float32),
            int(rate))


def _channel_index(record: Record, channel: Union[str, int], listing: str) -> int:
    if isinstance(channel, (int, np.integer)) or (isinstance(channel, str) and channel.strip().isdigit()
                                                   and channel.strip() not in record.names):
        index = int(channel)
        if not 0 <= index < len(record.names):
            raise ValueError(f"{record.path}: channel index {index} is out of range (the file has {len(record.names)}"
                             f" channels: {listing})")
        return index
    if channel in record.names:
        return record.names.index(channel)
    raise ValueError(f"{record.path}: no channel named {channel!r} (the file has: {listing})")


def parse_channels(text: Optional[str]) -> Optional[list[str]]:
    """`--channels "Abdomen_1,Abdomen_3"` or `"1,2"` -> a list (indices stay strings; `select` tells them apart)."""
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


# ---- EDF / EDF+ / BDF ----

def _edf_layout(path: str) -> dict[str, Any]:
    """The fixed and per-signal header fields of an EDF/BDF file, checked against the file's size before pyedflib
    opens it (a header declaring 10^6 signals, a truncated file, a record count that disagrees with the data)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(256)
        if len(head) < 256:
            raise ValueError(f"{path}: not an EDF/BDF file: {size} bytes, shorter than the 256-byte header")
        bdf = head[:1] == b"\xff"
        fields = {"header_bytes": head[184:192], "records": head[236:244], "record_seconds": head[244:252],
                  "signals": head[252:256]}
        values = {}
        for key, raw in fields.items():
            try:
                values[key] = float(raw.decode("ascii").strip())
            except (UnicodeDecodeError, ValueError):
                raise ValueError(f"{path}: not an EDF/BDF file: header field {key} is {raw!r}") from None
        signals = int(values["signals"])
        if not 1 <= signals <= MAX_CHANNELS or signals != values["signals"]:
            raise ValueError(f"{path}: the header declares {values['signals']:g} signals (1..{MAX_CHANNELS} are read)")
        if values["header_bytes"] != 256 * (signals + 1):
            raise ValueError(f"{path}: the header size field says {values['header_bytes']:g} bytes, but "
                             f"{signals} signals need {256 * (signals + 1)}")
        if size < 256 * (signals + 1):
            raise ValueError(f"{path}: truncated: the header of {signals} signals needs {256 * (signals + 1)} bytes, "
                             f"the file has {size}")
        rest = f.read(256 * signals)
    samples = [rest[216 * signals + 8 * i:216 * signals + 8 * (i + 1)] for i in range(signals)]
    try:
        per_record = [int(s.decode("ascii").strip()) for s in samples]
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"{path}: a samples-per-record field is not a whole number ({samples})") from None
    if min(per_record) < 1:
        raise ValueError(f"{path}: a signal has {min(per_record)} samples per data record (0 Hz)")
    records, seconds = values["records"], values["record_seconds"]
    if records < 1 or records != int(records):
        raise ValueError(f"{path}: the header declares {records:g} data records (a recording still in progress, or "
                         "a damaged header)")
    if not seconds > 0:
        raise ValueError(f"{path}: the data record duration is {seconds:g} s (must be > 0)")
    fastest = max(per_record) / seconds
    if fastest > checks.MAX_SAMPLE_RATE:
        raise ValueError(f"{path}: a signal's sample rate is {fastest:g} Hz ({max(per_record)} samples per "
                         f"{seconds:g}-s data record; at most {checks.MAX_SAMPLE_RATE} Hz is read)")
    record_bytes = sum(per_record) * (3 if bdf else 2)
    data = size - 256 * (signals + 1)
    if data != int(records) * record_bytes:
        held = data / record_bytes
        what = "truncated" if data < int(records) * record_bytes else "longer than its header says"
        raise ValueError(f"{path}: {what}: the header declares {int(records)} data records, the file holds "
                         f"{held:.6g} ({data} bytes of samples, {int(records) * record_bytes} expected)")
    return {"bdf": bdf, "signals": signals, "records": int(records), "record_seconds": seconds,
            "per_record": per_record}


def _read_edf(path: str, sample_rate: Optional[int]) -> Record:
    layout = _edf_layout(path)
    pyedflib = _import("pyedflib", path)
    try:
        reader = pyedflib.EdfReader(path)
    except OSError as e:
        raise ValueError(f"{path}: not a readable EDF/BDF file ({str(e).strip().replace(path + ': ', '')})") from None
    with contextlib.closing(reader):
        count = reader.signals_in_file
        headers = [reader.getSignalHeader(i) for i in range(count)]
        signals = tuple(reader.readSignal(i) for i in range(count))
        onsets, durations, texts = reader.readAnnotations()
        start = reader.getStartdatetime()
        file_header = reader.getHeader()
        plus = reader.filetype in (pyedflib.FILETYPE_EDFPLUS, pyedflib.FILETYPE_BDFPLUS)
    rates = tuple(len(x) / (layout["records"] * layout["record_seconds"]) for x in signals)
    annotations = tuple(Annotation(float(o), max(0.0, float(d)), str(t), EDF_ANNOTATION)
                        for o, d, t in zip(onsets, durations, texts))
    header = {"record_seconds": layout["record_seconds"], "plus": plus,
              "digital": [(h["digital_min"], h["digital_max"]) for h in headers],
              "transducers": [h["transducer"] for h in headers], "prefilters": [h["prefilter"] for h in headers],
              "file": {k: v for k, v in file_header.items() if k in ("patientname", "patientcode", "equipment",
                                                                    "technician", "recording_additional",
                                                                    "patient_additional", "admincode")}}
    record = Record(path, "bdf" if layout["bdf"] else "edf", tuple(h["label"] for h in headers), signals, rates,
                    tuple(h["dimension"] for h in headers), start,
                    annotations + _wfdb_annotations(path, rates[0] if rates else 1.0),
                    tuple((h["physical_min"], h["physical_max"]) for h in headers), header)
    return record


def _write_edf(record: Record, path: str) -> list[str]:
    pyedflib = _import("pyedflib", path)
    bdf = record.format == "bdf"
    digital = record.header.get("digital") or [(-8388608, 8388607) if bdf else (-32768, 32767)] * len(record.names)
    headers = []
    for i, (name, x, rate, unit) in enumerate(zip(record.names, record.signals, record.rates, record.units)):
        low, high = _physical_range(x, record.ranges[i] if record.ranges else None)
        headers.append({"label": name, "dimension": unit, "sample_frequency": rate, "physical_min": low,
                        "physical_max": high, "digital_min": int(digital[i][0]), "digital_max": int(digital[i][1]),
                        "transducer": _at(record.header.get("transducers"), i),
                        "prefilter": _at(record.header.get("prefilters"), i)})
    annotations = [a for a in record.annotations if a.source == EDF_ANNOTATION]  # WFDB-file ones go beside it
    folder, name = os.path.split(os.path.abspath(path))
    with atomic.files(folder, [name]) as temp:
        writer = pyedflib.EdfWriter(os.path.join(temp, name), len(headers),
                                    pyedflib.FILETYPE_BDFPLUS if bdf else pyedflib.FILETYPE_EDFPLUS)
        try:
            writer.set_number_of_annotation_signals(_annotation_signals(record, len(annotations)))
            writer.setSignalHeaders(headers)
            if record.start is not None:
                writer.setStartdatetime(record.start)
            for key, value in record.header.get("file", {}).items():
                _set_file_field(writer, key, value)
            if "record_seconds" in record.header:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    writer.setDatarecordDuration(record.header["record_seconds"])
            writer.writeSamples([np.asarray(x, np.float64) for x in record.signals])
            for a in annotations:
                writer.writeAnnotation(a.onset, a.duration if a.duration > 0 else -1, _edf_text(a))
        finally:
            writer.close()
    return [path]


def _annotation_signals(record: Record, count: int) -> int:
    """EDF+ annotation signals needed: EDFlib stores one annotation per annotation signal and data record."""
    seconds = record.header.get("record_seconds", 1.0)
    records = math.ceil(record.signals[0].size / record.rates[0] / seconds)
    needed = math.ceil(count / max(1, records)) + 1
    if needed > EDF_ANNOTATION_SIGNALS:
        raise ValueError(f"{record.path}: {count} annotations do not fit in {records} EDF data records")
    return needed


def _physical_range(x: np.ndarray, declared: Optional[tuple[float, float]]) -> tuple[float, float]:
    """The declared physical range if it holds `x`, else one that does (EDF writes it in 8 characters)."""
    low, high = float(np.min(x)), float(np.max(x))
    if declared is not None and declared[0] <= low and high <= declared[1] and declared[0] < declared[1]:
        return float(declared[0]), float(declared[1])
    span = max(abs(low), abs(high), 1e-3)
    digits = max(0, 6 - len(str(int(span))))
    bound = math.ceil(span * 10 ** digits) / 10 ** digits
    return -bound, bound


def _edf_text(annotation: Annotation) -> str:
    if annotation.source == EDF_ANNOTATION:
        return annotation.label
    return f"{annotation.source}:{annotation.label}" + (f" {annotation.note}" if annotation.note else "")


def _set_file_field(writer: Any, key: str, value: Any) -> None:
    setters = {"patientname": "setPatientName", "patientcode": "setPatientCode", "equipment": "setEquipment",
               "technician": "setTechnician", "recording_additional": "setRecordingAdditional",
               "patient_additional": "setPatientAdditional", "admincode": "setAdmincode"}
    if value:
        getattr(writer, setters[key])(value)


def edf_labels(components: Sequence[str], channels: Sequence[str]) -> list[str]:
    """`component/channel` for each pair, the component shortened as needed to fit EDF's 16-character labels
    (maternal/Abdomen_1 -> matern/Abdomen_1); ValueError if the shortened labels would not be unique."""
    labels = []
    for component in components:
        for channel in channels:
            room = max(1, EDF_LABEL_CHARS - len(channel) - 1)
            labels.append(f"{component[:room]}/{channel}"[:EDF_LABEL_CHARS])
    if len(set(labels)) != len(labels):
        raise ValueError(f"channel names too long for unique 16-character EDF labels: {labels}")
    return labels


# ---- WFDB ----

WFDB_BITS = {"8": 8, "16": 16, "24": 24, "32": 32, "61": 16, "80": 8, "160": 16, "212": 12, "310": 32 / 3,
             "311": 32 / 3}


def _read_wfdb(name: str, sample_rate: Optional[int]) -> Record:
    wfdb = _import("wfdb", name)
    base = name[:-4] if name.lower().endswith(".hea") else name
    try:
        header = wfdb.rdheader(base)
    except Exception as e:  # noqa: BLE001 (wfdb raises many types for a bad header)
        raise ValueError(f"{base}.hea: not a readable WFDB header ({_first_line(e)})") from None
    if getattr(header, "seg_name", None):
        raise ValueError(f"{base}.hea: multi-segment WFDB records are not read; give one segment's record")
    count = int(header.n_sig or 0)
    if not 1 <= count <= MAX_CHANNELS:
        raise ValueError(f"{base}.hea: the header declares {count} signals (1..{MAX_CHANNELS} are read)")
    if not header.sig_len:
        raise ValueError(f"{base}.hea: the header declares no samples (signal length {header.sig_len})")
    _check_wfdb_files(base, header)
    try:
        record = wfdb.rdrecord(base, physical=True)
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"{base}.hea: its signals could not be read ({_first_line(e)})") from None
    rates = tuple(float(record.fs) * (spf or 1) for spf in (record.samps_per_frame or [1] * count))
    start = (datetime.datetime.combine(record.base_date or datetime.date(1, 1, 1), record.base_time)
             if record.base_time is not None else None)
    signals = tuple(np.asarray(record.p_signal[:, i], np.float64) for i in range(count))
    return Record(base + ".hea", "wfdb", tuple(record.sig_name), signals, rates, tuple(record.units), start,
                  _wfdb_annotations(base, float(record.fs)), tuple(None for _ in range(count)),
                  {"fmt": list(record.fmt), "date": record.base_date is not None})


def _check_wfdb_files(base: str, header: Any) -> None:
    """Each signal file exists and holds the samples the header declares."""
    folder = os.path.dirname(base)
    needed: dict[str, float] = {}
    for file, fmt, spf, offset in zip(header.file_name, header.fmt, header.samps_per_frame or [1] * header.n_sig,
                                      header.byte_offset or [None] * header.n_sig):
        needed[file] = needed.get(file, offset or 0) + header.sig_len * (spf or 1) * WFDB_BITS.get(str(fmt), 16) / 8
    for file, nbytes in needed.items():
        path = os.path.join(folder, file)
        if not os.path.isfile(path):
            raise ValueError(f"{base}.hea: its signal file {path!r} is missing")
        size = os.path.getsize(path)
        if size < math.floor(nbytes):
            raise ValueError(f"{base}.hea: its signal file {path!r} is shorter than declared ({size} bytes, "
                             f"{math.ceil(nbytes)} needed for {header.sig_len} samples)")


def _wfdb_annotations(base: str, rate: float) -> tuple[Annotation, ...]:
    """The WFDB annotation files `<base>.<ext>` beside a record (e.g. r01.edf.qrs beside r01.edf), as Annotations."""
    found = []
    for path in sorted(glob.glob(glob.escape(base) + ".*")):
        extension = path[len(base) + 1:]
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,15}", extension) or extension.lower() in (
                "hea", "dat", "edf", "bdf", "csv", "npy", "txt", "md", "json", "png", "mat", "wav"):
            continue
        found.extend(_read_annotation_file(base, extension, rate))
    return tuple(found)


def _read_annotation_file(base: str, extension: str, rate: float) -> list[Annotation]:
    wfdb = _import("wfdb", base)
    try:
        annotation = wfdb.rdann(base, extension)
    except Exception as e:  # noqa: BLE001
        warnings.warn(f"{base}.{extension}: not read as a WFDB annotation file ({_first_line(e)}); not carried")
        return []
    fs = float(annotation.fs or rate)
    notes = annotation.aux_note or [""] * len(annotation.sample)
    return [Annotation(int(s) / fs, 0.0, str(sym), extension, str(note or "").rstrip("\x00"))
            for s, sym, note in zip(annotation.sample, annotation.symbol, notes)]


def _write_wfdb(record: Record, path: str) -> list[str]:
    wfdb = _import("wfdb", path)
    folder, name = os.path.split(os.path.abspath(path))
    name = name[:-4] if name.lower().endswith(".hea") else name
    rate = record.rates[0]
    fmt = record.header.get("fmt") or ["16"]
    fmts = [str(fmt[0]) if str(fmt[0]) in ("16", "24", "32") else "16"] * len(record.names)
    start = record.start
    signal = np.stack(record.signals, axis=1)
    with atomic.files(folder, [f"{name}.dat", f"{name}.hea"]) as temp:
        kwargs = {}
        if start is not None:
            kwargs["base_time"] = start.time()
            if record.header.get("date", True):
                kwargs["base_date"] = start.date()
        wfdb.wrsamp(name, fs=rate, units=list(record.units), sig_name=list(record.names), p_signal=signal,
                    fmt=fmts, write_dir=temp, **kwargs)
    return [os.path.join(folder, f"{name}.hea"), os.path.join(folder, f"{name}.dat")]


def write_annotations(base: str, extension: str, samples: np.ndarray, rate: float, symbol: str = "N",
                      channel: int = 0) -> str:
    """A WFDB annotation file `<base>.<extension>` (e.g. out/r01.edf.fqrs) of `samples` at `rate`, atomically;
    wfdb.rdann(base, extension) reads it."""
    samples = np.asarray(samples, np.int64)
    return _wrann(base, extension, sample=samples, symbol=[symbol] * samples.size, chan=np.full(samples.size, channel),
                  fs=rate)


def _wrann(base: str, extension: str, **fields: Any) -> str:
    """wfdb.wrann of `<base>.<extension>`, atomically; a record name with a dot (r01.edf, which wfdb.rdann reads
    but wrann refuses) is written under a plain name and renamed."""
    wfdb = _import("wfdb", base)
    folder, record = os.path.split(os.path.abspath(base))
    with atomic.files(folder, [f"{record}.{extension}"]) as temp:
        wfdb.wrann("annotation", extension, write_dir=temp, **fields)
        os.replace(os.path.join(temp, f"annotation.{extension}"), os.path.join(temp, f"{record}.{extension}"))
    return f"{base}.{extension}"


def _write_annotation_files(record: Record, base: str) -> list[str]:
    """The record's WFDB-file annotations written back beside it, one file per source extension."""
    written = []
    rate = record.rates[0]
    for source in sorted({a.source for a in record.annotations} - {EDF_ANNOTATION}):
        chosen = [a for a in record.annotations if a.source == source]
        written.append(_wrann(base, source, sample=np.array([round(a.onset * rate) for a in chosen], np.int64),
                              symbol=[a.label for a in chosen], aux_note=[a.note for a in chosen], fs=rate))
    return written


# ---- CSV ----

def _read_csv(path: str, sample_rate: Optional[int]) -> Record:
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if not header or not any(h.strip() for h in header):
            raise ValueError(f"{path}: empty, or no header row naming the columns")
        if all(_is_number(h) for h in header):
            raise ValueError(f"{path}: the first row is numbers, not a header naming the columns")
        columns: list[list[float]] = [[] for _ in header]
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"{path}: line {line} has {len(row)} fields, the header has {len(header)} (a ragged "
                                 "row)")
            for k, cell in enumerate(row):
                try:
                    value = float(cell)
                except ValueError:
                    raise ValueError(f"{path}: line {line}, column {header[k].strip()!r}: {cell.strip()[:30]!r} is "
                                     "not a number") from None
                if not math.isfinite(value):
                    raise ValueError(f"{path}: line {line}, column {header[k].strip()!r}: {cell.strip()!r} (NaN or "
                                     "infinite values are refused)")
                columns[k].append(value)
    if not columns[0]:
        raise ValueError(f"{path}: no data rows under the header")
    names, units = zip(*(_name_unit(h) for h in header))
    time = [k for k, n in enumerate(names) if n.lower() in TIME_COLUMNS]
    offset = 0.0
    if time:
        k = time[0]
        rate, offset = _rate_from_times(path, names[k], np.array(columns[k]) * TIME_UNITS.get(units[k] or "s", 1.0))
        if sample_rate is not None and abs(rate - sample_rate) > 1e-3 * sample_rate:
            raise ValueError(f"{path}: sample_rate={sample_rate} was given but the {names[k]!r} column says "
                             f"{rate:g} Hz")
    elif sample_rate is None:
        raise ValueError(f"{path}: no time column ({', '.join(TIME_COLUMNS)}) to tell the sample rate; give it "
                         "(--sample_rate / sample_rate=)")
    else:
        rate = float(sample_rate)
    keep = [k for k in range(len(names)) if k not in time]
    if not keep:
        raise ValueError(f"{path}: no signal columns besides the time column")
    return Record(path, "csv", tuple(names[k] for k in keep), tuple(np.array(columns[k]) for k in keep),
                  (rate,) * len(keep), tuple(units[k] for k in keep),
                  header={"time_offset": offset, "time": bool(time)})


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _name_unit(header: str) -> tuple[str, str]:
    """"PLETH [mV]" -> ("PLETH", "mV"); "II" -> ("II", "")."""
    match = re.fullmatch(r"\s*(.*?)\s*(?:\[([^\]]*)\])?\s*", header)
    return (match.group(1), (match.group(2) or "").strip()) if match else (header.strip(), "")


def _rate_from_times(path: str, column: str, seconds: np.ndarray) -> tuple[float, float]:
    """(whole-Hz rate, first time) of a uniformly sampled time column, else a ValueError."""
    if seconds.size < 2:
        raise ValueError(f"{path}: one row: the {column!r} column cannot tell the sample rate")
    step = (seconds[-1] - seconds[0]) / (seconds.size - 1)
    off = np.abs(seconds - (seconds[0] + step * np.arange(seconds.size))) if step > 0 else np.array([np.inf])
    if not off.max() <= step:  # times printed rounded (BIDMC: 100.01 for 100.008) are within a step of the grid
        raise ValueError(f"{path}: the {column!r} column is not uniformly sampled (a time {float(off.max()):.6g} s "
                         f"off the grid of {step:.6g} s steps)")
    rate = 1.0 / step
    if abs(rate - round(rate)) > 1e-3 * rate:
        raise ValueError(f"{path}: the {column!r} column gives {rate:.6g} Hz, not a whole number of Hz")
    return float(round(rate)), float(seconds[0])


def _write_csv(record: Record, path: str) -> list[str]:
    rate = record.rates[0]
    samples = record.signals[0].size
    heading = [f"{n} [{u}]" if u else n for n, u in zip(record.names, record.units)]
    columns = [np.asarray(x, np.float64) for x in record.signals]
    if record.header.get("time", True):
        heading.insert(0, "Time [s]")
        columns.insert(0, record.header.get("time_offset", 0.0) + np.arange(samples) / rate)
    with atomic.writing(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(heading)
        out.writerows(zip(*(map(repr, map(float, c)) for c in columns)))
    return [path]


# ---- NPY ----

def _read_npy(path: str, sample_rate: Optional[int]) -> Record:
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npy array ({_first_line(e)})") from None
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{path}: expected a floating-point array, got dtype {x.dtype}")
    if x.ndim not in (1, 2):
        raise ValueError(f"{path}: expected (samples,) or (channels, samples), got shape {x.shape}")
    x = x[np.newaxis] if x.ndim == 1 else x
    if x.shape[0] > MAX_CHANNELS:
        raise ValueError(f"{path}: shape {x.shape} looks like (samples, channels) or has more than {MAX_CHANNELS} "
                         "channels; expected (channels, samples)")
    if sample_rate is None:
        raise ValueError(f"{path}: a .npy file does not store its sample rate; give it (--sample_rate / "
                         "sample_rate=)")
    names = tuple(str(i) for i in range(x.shape[0]))
    return Record(path, "npy", names, tuple(np.asarray(row, np.float64) for row in x),
                  (float(sample_rate),) * len(names),
                  ("",) * len(names), header={"dtype": str(x.dtype)})


def _write_npy(record: Record, path: str) -> list[str]:
    with atomic.writing(path, "wb") as f:
        np.save(f, np.stack(record.signals).astype(record.header.get("dtype", "float32")))
    return [path]


# ---- writing ----

EXTENSIONS = {"edf": ".edf", "bdf": ".bdf", "wfdb": ".hea", "csv": ".csv", "npy": ".npy"}


def write_record(record: Record, path: PathLike) -> list[str]:
    """Writes `record` in its format (record.format) at `path` (for WFDB, the .hea path or record name; its .dat
    is written beside it), with its annotations (EDF+ inside the file; WFDB-file ones as `<base>.<source>` beside
    it); returns the paths written. Every file appears atomically."""
    path = os.fspath(path)
    writer = {"edf": _write_edf, "bdf": _write_edf, "wfdb": _write_wfdb, "csv": _write_csv, "npy": _write_npy}
    written = writer[record.format](record, path)
    base = path[:-4] if record.format == "wfdb" and path.lower().endswith(".hea") else path
    return written + _write_annotation_files(record, base)


def _import(module: str, path: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"{path}: reading/writing this format needs {module}: pip install 'cass_tf[biosignal]'") \
            from None


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _at(values: Optional[Sequence[str]], index: int) -> str:
    return values[index] if values and index < len(values) else ""
