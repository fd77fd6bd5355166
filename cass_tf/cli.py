"""Owns the command line: `cass-tf <command>`, `python -m cass_tf[.<module>]`, quiet logs and the error contract.

    cass-tf train --config configs/ppg.json [--set dotted.path=value ...] [--model_dir DIR]
    cass-tf evaluate --model_dir DIR [--model_dir DIR2 ...] [--config CFG] [--out DIR]
    cass-tf export --model_dir DIR --export_dir saved_models/NAME [--version N]
    cass-tf separate a.wav b.flac --model saved_models/NAME --out_dir out/ [--plot]
    cass-tf separate r01.edf rec.hea x.csv --model saved_models/ecg --out_dir out/ [--channels A,B] [--events] [--plot]

`python -m cass_tf <command> ...` is the same; `python -m cass_tf.train ...` (and .evaluate, .export, .separation)
runs one command. Every command parses its arguments here and calls library functions that a Python user can call
too. One argument library (argparse) serves them all, the pipelines' scripts included.

Output: TensorFlow's C++ and Python logs are silenced unless `--verbose` (they are written while TensorFlow loads,
before any log level applies, so the import itself runs with stderr pointed at a sink); commands that run a model
print one line saying what it runs on. Failure: one last `error: ...` line on stderr; exit status 2 for a usage
error (bad or missing arguments), 1 for anything else; `--verbose` prints the traceback before it. A training stopped
by SIGTERM/SIGINT (cass_tf.training.Interrupted) prints one line saying how to resume and exits 128 + the signal number.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
import traceback
import warnings
from typing import Callable, Sequence

from absl import logging as absl_logging  # TensorFlow's logger (one of its dependencies); loads without it

from cass_tf import __version__, records
from cass_tf.config import load_config

DEVICE_PREFIX = "device:"


@dataclasses.dataclass(frozen=True)
class Command:
    """One command: its name, a one-line help, what adds its arguments, and what runs it (returns an exit status)."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error ends with one `error: ...` line (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


# ---- running a command ----

def main(argv: Sequence[str] | None = None, prog: str = "cass-tf") -> int:
    """`cass-tf <command> [arguments]`; returns the exit status."""
    parser = _Parser(prog=prog, description="CASS source separation: train, evaluate, export and separate.")
    parser.add_argument("--version", action="version", version=f"cass_tf {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", required=True, metavar="<command>")
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        _add_arguments(sub, command)
    args = parser.parse_args(argv)
    return execute(args.command_spec, args)


def run_command(command: Command, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """One command with its own parser (`python -m cass_tf.train`, the pipelines' scripts); returns the exit status."""
    parser = _Parser(prog=prog or command.name, description=command.help)
    _add_arguments(parser, command)
    return execute(command, parser.parse_args(argv))


def run_module(name: str) -> int:
    """`python -m cass_tf.<module> ...`: the command of that name, with sys.argv's arguments."""
    command = next(c for c in COMMANDS if c.name == name)
    module = "separation" if name == "separate" else name
    return run_command(command, sys.argv[1:], prog=f"python -m cass_tf.{module}")


def execute(command: Command, args: argparse.Namespace) -> int:
    """Runs a parsed command under the output and error contract (module docstring); returns the exit status."""
    if not args.verbose:
        quiet_logs()
    try:
        status = command.run(args)
    except Exception as e:  # noqa: BLE001 (the contract: whatever fails, one error line)
        from cass_tf.training import Interrupted  # loads TensorFlow: only after quiet_logs()

        if isinstance(e, Interrupted):  # stopped on a signal after checkpointing: one line saying how to resume
            print(str(e), file=sys.stderr, flush=True)
            return e.status
        return _fail(e, args.verbose)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


def error_line(error: BaseException) -> str:
    """`error: <what went wrong>` on one line: the message's first line, after the exception's type unless it is one
    of the kinds the library raises with a full message (ValueError, OSError, RuntimeError and their subclasses)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    message = lines[0] if lines else ""
    if len(lines) > 1:
        message += " [...] (--verbose shows the whole message)"
    if not isinstance(error, (ValueError, OSError, RuntimeError)):
        message = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return f"error: {message}"


def _fail(error: BaseException, verbose: bool) -> int:
    if verbose:
        traceback.print_exception(error)
    print(error_line(error), file=sys.stderr, flush=True)
    return 1


def _add_arguments(parser: argparse.ArgumentParser, command: Command) -> None:
    command.arguments(parser)
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's logs and, on failure, the traceback")
    parser.set_defaults(command_spec=command)


# ---- output ----

def quiet_logs() -> None:
    """Silences TensorFlow's C++ logs, its Python logger, absl and Python warnings from TensorFlow and Keras; the
    package's own warnings print as one `warning: ...` line. Call before TensorFlow is imported."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    absl_logging.set_verbosity(absl_logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(tensorflow|keras|absl|google)(\.|$)")
    warnings.showwarning = _show_warning
    if "tensorflow" not in sys.modules:
        _import_silently("tensorflow")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001 (warnings' API)
    print(f"warning: {message}", file=file or sys.stderr)


def _import_silently(module: str) -> None:
    """Imports `module` with file descriptor 2 pointed at a temporary file (TensorFlow's shared libraries log while
    loading, whatever the log level); replays what was written if the import fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            __import__(module)
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def device_line(precision: str | None = None) -> str:
    """`device: CPU` or `device: 2 GPUs (GPU:0 NVIDIA H100 ..., GPU:1 ...)`: what TensorFlow will run on; for
    training, with the `train.precision` setting resolved on it and why (`; precision mixed_bfloat16 (auto: ...)`)."""
    import tensorflow as tf  # loads TensorFlow: only after quiet_logs()

    from cass_tf.precision import resolve  # loads TensorFlow: only after quiet_logs()

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        line = f"{DEVICE_PREFIX} CPU (no GPU visible to TensorFlow)"
    else:
        names = []
        for gpu in gpus:
            details = tf.config.experimental.get_device_details(gpu)
            names.append(f"{gpu.name.split(':', 1)[-1]} {details.get('device_name', '')}".strip())
        line = f"{DEVICE_PREFIX} {len(gpus)} GPU{'s' if len(gpus) > 1 else ''} ({', '.join(names)})"
    return line if precision is None else f"{line}; {resolve(precision).describe()}"


def show_device(precision: str | None = None) -> None:
    """Prints `device_line(precision)` to stderr."""
    print(device_line(precision), file=sys.stderr, flush=True)


def _config_arguments(parser: argparse.ArgumentParser, required: bool, config_help: str) -> None:
    parser.add_argument("--config", required=required, help=config_help)
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                        help="override a config field, e.g. --set train.epochs=5 (JSON value; repeatable)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


# ---- the commands ----

def _train_arguments(parser: argparse.ArgumentParser) -> None:
    _config_arguments(parser, True, "JSON config, e.g. configs/ppg.json")
    parser.add_argument("--model_dir", help="where checkpoints, logs and figures go (default: output.model_dir)")


def _train(args: argparse.Namespace) -> None:
    from cass_tf import training  # loads TensorFlow: only after quiet_logs()

    overrides = args.set + ([f"output.model_dir={args.model_dir}"] if args.model_dir else [])
    config = load_config(args.config, overrides)
    show_device(config.train.precision)
    result = training.train(config)
    print("\n" + training.summary(result))


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model_dir", action="append", required=True,
                        help="a training run (repeatable; each is one row of the tables)")
    _config_arguments(parser, False, "config whose test data to use (default: the first run's config.json)")
    parser.add_argument("--out", help="where evaluation.json/.md go (default: the model_dir, or the runs' parent)")
    parser.add_argument("--no_signals", action="store_true", help="score the test crops only")
    parser.add_argument("--protocol", action="append", choices=("waveform", "paper"),
                        help="waveform (default: against the true waveforms) and/or paper (the paper's: estimate and "
                             "true magnitude both with the mixture's phase); repeat for both")


def _evaluate(args: argparse.Namespace) -> None:
    from cass_tf import evaluation  # loads TensorFlow: only after quiet_logs()

    show_device()
    done = evaluation.evaluate_runs(args.model_dir, args.config, args.set, args.out, not args.no_signals,
                                  log=lambda line: print(line, flush=True), protocols=args.protocol or ("waveform",))
    print("\n" + done["report"])
    for path in done["paths"]:
        print(f"wrote {path}")


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model_dir", required=True, help="training run to export (config.json + checkpoints/)")
    parser.add_argument("--export_dir", required=True, help="TF Serving base directory, e.g. saved_models/ppg")
    parser.add_argument("--version", type=_positive_int, help="version number (default: the next free integer)")
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16"),
                        help="what the export computes in (default: the run's output.precision); mixed_bfloat16 is "
                             "faster on CPUs with bfloat16 units")


def _export(args: argparse.Namespace) -> None:
    show_device()
    from cass_tf import exporting  # loads TensorFlow: only after quiet_logs()

    print(exporting.summary(exporting.export(args.model_dir, args.export_dir, args.version,
                                             precision=args.precision)))


def _separate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="FILE",
                        help="audio files, or biosignal files: EDF/EDF+/BDF, WFDB (.hea), CSV with a header, NPY")
    parser.add_argument("--model", required=True,
                        help="SavedModel version or base directory, or a training model_dir")
    parser.add_argument("--out_dir", required=True, help="outputs go to <out_dir>/<file stem>/<component>.wav")
    parser.add_argument("--block_seconds", type=_seconds,
                        help="block length for long files, in seconds (default: separation.DEFAULT_BLOCK_SECONDS; "
                             "0: each file in one piece)")
    parser.add_argument("--plot", action="store_true",
                        help="also write <out_dir>/<file stem>/separation.png (waveforms and spectrograms)")
    parser.add_argument("--mono", action="store_true",
                        help="average each file's channels first (default: every channel separated, WAVs keep the "
                             "input's channel count)")
    parser.add_argument("--quiet", action="store_true", help="no device line, progress bar or summary")
    parser.add_argument("--channels", help="biosignal files: channels to separate, names or 0-based indices, comma-"
                        "separated (default: the model's leads, e.g. Abdomen_* for ECG, PLETH for PPG)")
    parser.add_argument("--events", action="store_true",
                        help="biosignal files: also write R peaks (.fqrs/.mqrs, beats.csv) and heart-rate traces "
                             "(heart_rate.csv) for ECG models, pulse and breathing rates (rates.csv) for PPG models")
    parser.add_argument("--sample_rate", type=_positive_int,
                        help="biosignal files that do not state their rate (NPY, CSV without a time column), in Hz")


def _separate(args: argparse.Namespace) -> None:
    from cass_tf.files import DEFAULT_BLOCK_SECONDS, run_files  # loads TensorFlow: only after quiet_logs()

    biosignals = [p for p in args.inputs if records.is_record(p)]
    sounds = [p for p in args.inputs if not records.is_record(p)]
    if sounds and (args.channels or args.events or args.sample_rate):
        raise ValueError(f"--channels, --events and --sample_rate apply to biosignal files, not to {sounds[0]!r}")
    if not args.quiet:
        show_device()
    block_seconds = DEFAULT_BLOCK_SECONDS if args.block_seconds is None else args.block_seconds or None
    written = []
    if biosignals:
        from cass_tf import biosignal  # loads TensorFlow: only after quiet_logs()

        stems = [os.path.splitext(p)[0] for p in sounds]
        args.model, prepared = biosignal.prepare(biosignals, args.model, records.parse_channels(args.channels),
                                                 args.sample_rate, args.events, stems)
    if sounds:
        written += run_files(sounds, args.model, args.out_dir, block_seconds, show_progress=not args.quiet,
                             plot=args.plot, mono=args.mono)
    if biosignals:
        written += biosignal.run(prepared, args.model, args.out_dir, block_seconds, args.events, args.plot)
    if not args.quiet:
        print(f"wrote {len(written)} files under {args.out_dir}/")


COMMANDS = (
    Command("train", "train (or resume) a model from a config", _train_arguments, _train),
    Command("evaluate", "score trained runs on the test set (the paper's eq. 6 errors, SI-SDR, SDR)",
            _evaluate_arguments, _evaluate),
    Command("export", "export a trained model as a TF Serving SavedModel", _export_arguments, _export),
    Command("separate", "separate audio or biosignal files into their components with a trained or exported model",
            _separate_arguments, _separate),
)
