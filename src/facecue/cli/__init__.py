"""The ``facecue`` command line: a verb, then what it acts on (``facecue train keypoints``,
``facecue ship expression``). Each handler parses its options and calls one library function;
the libraries are imported when a command runs, so commands that need no extras (``run``,
``analyze``, ``eval``) work without torch or the speech packages.

Library modules log through :mod:`logging`; :func:`main` shows their messages on standard
error as ``facecue: message`` (``-v`` adds debug messages, ``-q`` keeps only warnings and
errors) and keeps standard output for results. SIGTERM and SIGHUP stop a command the way
Ctrl-C does, so outputs are finished before it exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from facecue import interrupts
from facecue.labels import DEFAULT_LABELS, LABEL_SETS
from facecue.provenance import running_command

log = logging.getLogger(__name__)

# Signals that stop a command like Ctrl-C (SIGHUP: not on Windows).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                     if hasattr(signal, name))

# Groups of commands: verb -> what it does. Each takes what it acts on as its next word.
VERBS = {
    "train": "train a model (needs facecue[train])",
    "eval": "evaluate a model on labelled data",
    "ship": "build a packaged model from training runs (needs facecue[train])",
    "label": "make keypoint labels with finished runs: a teacher for a student "
             "(needs facecue[train])",
    "data": "prepare training data",
    "submit": "write a Kaggle submission",
}
# Spellings before the verb-first tree, accepted until the next release.
OLD_SPELLINGS = {
    ("expression", "ship"): ("ship", "expression"),
    ("keypoints", "ship"): ("ship", "keypoints"),
    ("keypoints", "submit"): ("submit", "keypoints"),
    ("keypoints", "pseudo-label"): ("label", "pseudo"),
    ("keypoints", "blend-labels"): ("label", "blend"),
}


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a service manager, a container, a closed terminal), raised as Ctrl-C
    raises KeyboardInterrupt, so every output is finished on the way out."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code (docs/cli.md) says how it ended: 0 done, 1 some inputs
    failed, 2 an error stopped it, 130 Ctrl-C, 128 + N signal N (143 SIGTERM, 129 SIGHUP)."""
    argv, old = new_spelling(sys.argv[1:] if argv is None else list(argv))
    with _messages() as show, _stop_on_signals(), running_command(argv):
        try:
            args = parser().parse_args(argv)  # imports the commands: may meet Ctrl-C too
            show(args.verbose - args.quiet)
            if old:
                log.warning("`facecue %s` is now `facecue %s`; the old spelling goes in the "
                            "next release", " ".join(old), " ".join(OLD_SPELLINGS[old]))
            code = int(args.handler(args) or 0)
            interrupts.check()  # a stop Python dropped in a finaliser still ends so
            return code
        except Stopped as e:
            log.error("stopped by %s", e)
            return 128 + e.signum
        except KeyboardInterrupt:
            log.error("interrupted")
            return 130
        except BrokenPipeError:  # stdout closed early (piped into head): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except (OSError, ValueError, RuntimeError) as e:
            log.error("error: %s", e.strerror if isinstance(e, OSError) and e.strerror
                      and not e.filename else e)
            return 2


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise :class:`Stopped` (once: a second one
    while outputs are being finished is ignored) and Ctrl-C KeyboardInterrupt, each when the
    frame being written is done (:mod:`facecue.interrupts`)."""
    if threading.current_thread() is not threading.main_thread():  # only it takes signals
        yield
        return

    def stop(signum: int, frame) -> None:
        if signum == signal.SIGINT:
            interrupts.stop(KeyboardInterrupt())
            return
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        interrupts.stop(Stopped(signum))

    interrupts.reset()
    before = {s: signal.signal(s, stop) for s in (signal.SIGINT, *STOP_SIGNALS)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        interrupts.reset()


def new_spelling(argv: list[str]) -> tuple[list[str], tuple[str, str] | None]:
    """``argv`` with an old command spelling replaced by the new one, and the old words."""
    i = next((k for k, a in enumerate(argv) if not a.startswith("-")), len(argv))
    old = tuple(argv[i:i + 2])
    if old not in OLD_SPELLINGS:
        return argv, None
    return [*argv[:i], *OLD_SPELLINGS[old], *argv[i + 2:]], old


def parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    from facecue.cli import batch, data, doctor, expression, keypoints, pipeline, speech, studio

    top = argparse.ArgumentParser(
        prog="facecue", description="Offline, CPU-first facial keypoints, expressions and "
        "emotion-aware captions.\n`facecue COMMAND --help` shows a command's options and "
        "an example.", epilog="example:\n  facecue demo",
        formatter_class=argparse.RawDescriptionHelpFormatter, parents=[_global_options(0)])
    top.add_argument("--version", action=doctor.VersionAction,
                     help="print facecue's version and how it runs its int8 models on this "
                          "CPU, and exit")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    pipeline.add_commands(sub)
    speech.add_commands(sub)
    doctor.add_commands(sub)
    studio.add_commands(sub)
    batch.add_commands(sub)
    groups = {verb: sub.add_parser(
        verb, help=what, description=what,
        epilog=f"`facecue {verb} WHAT --help` shows its options and an example.").add_subparsers(
        dest="object", required=True, metavar="WHAT") for verb, what in VERBS.items()}
    expression.add_commands(groups)
    keypoints.add_commands(groups)
    data.add_commands(groups)
    return top


def _global_options(default: int | str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-v", "--verbose", action="count", default=default,
                   help="more messages (debug)")
    p.add_argument("-q", "--quiet", action="count", default=default,
                   help="fewer messages: warnings and errors only (-qq: errors only)")
    return p


# On each command too, so `facecue run -q ...` works; SUPPRESS keeps the top-level counts.
_COMMAND_OPTIONS = _global_options(argparse.SUPPRESS)


def command(sub: argparse._SubParsersAction, name: str, help: str, example: str,
            handler: Callable[[argparse.Namespace], int], **kwargs) -> argparse.ArgumentParser:
    """A command's parser: its help line, one real example (shown by ``--help``), the
    verbosity options and the function that runs it."""
    p = sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       parents=[_COMMAND_OPTIONS, *kwargs.pop("parents", [])], **kwargs)
    p.set_defaults(handler=handler)
    return p


def add_labels_option(p: argparse.ArgumentParser, required: bool = False,
                      default: str = DEFAULT_LABELS) -> None:
    """``--labels``: the pipeline's default is :data:`facecue.labels.DEFAULT_LABELS`; training
    and evaluation default to fer7, the labels the FER2013 file itself holds."""
    p.add_argument("--labels", choices=sorted(LABEL_SETS), required=required,
                   default=None if required else default,
                   help="emotion label set: fer7 = FER2013's seven (anger, disgust, fear, "
                        "happiness, sad, surprise, neutral); fer5 = anger, disgust, sad, "
                        "happiness, surprise; ferplus8 = FER+'s eight (neutral, happiness, "
                        "surprise, sadness, anger, disgust, fear, contempt)"
                        + ("" if required else f" (default {default})"))


def add_model_options(p: argparse.ArgumentParser, threads: int = 1,
                      threads_help: str = "onnxruntime threads per model") -> None:
    """The face models and detector of a pipeline command."""
    add_labels_option(p)
    p.add_argument("--expression-model", help="expression ONNX file (default: the shipped "
                   "model for --labels)")
    p.add_argument("--keypoints-model", help="keypoint ONNX file (default: the shipped model)")
    for model in ("expression", "keypoints"):
        p.add_argument(f"--{model}-model-sha256", metavar="HEX",
                       help=f"refuse the --{model}-model file unless its sha256 is HEX (shipped "
                            "models are always checked against their cards)")
    add_precision_option(p)
    p.add_argument("--detector", choices=["blazeface", "blazeface-short", "haar", "mediapipe"],
                   default="blazeface",
                   help="face detector (default blazeface: MediaPipe's full-range BlazeFace, "
                        "shipped, finds turned, partial and small faces; blazeface-short: its "
                        "near-range model only, for faces close to the camera; haar: OpenCV's "
                        "cascade, the framing the models were trained on; mediapipe needs "
                        "facecue[mediapipe])")
    p.add_argument("--threads", type=at_least(1), default=threads, help=f"{threads_help} "
                   f"(default {threads})")


def add_precision_option(p: argparse.ArgumentParser) -> None:
    """``--precision``: which build of the shipped models runs."""
    p.add_argument("--precision", choices=["auto", "int8", "float32"], default="auto",
                   help="build of the shipped models to run: auto (default: $FACECUE_PRECISION, "
                        "else int8 where this CPU has fast 8-bit kernels, float32 elsewhere; "
                        "`facecue doctor` says which), int8 (with 7-bit weights on x86 "
                        "without VNNI) or float32")


def add_workers_option(p: argparse.ArgumentParser) -> None:
    """``--workers``: threads per stream (facecue.video.pipeline.Pipeline)."""
    p.add_argument("--workers", choices=["auto", "1", "2"], default="auto",
                   help="threads per stream: 1, or 2 (decoding, tracking and detection "
                        "overlapped with the models); auto (default): 2 where two or more "
                        "cores are usable. --threads stays onnxruntime's threads per model")


def at_least(least: int) -> Callable[[str], int]:
    """An argparse type for a count: a whole number no smaller than ``least`` (a negative
    ``--limit`` would otherwise quietly mean "all but the last")."""
    def count(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < least:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least {least}")
        return value
    return count


def add_training_options(p: argparse.ArgumentParser, threads: int) -> None:
    """The options every training command shares: seed, threads, smoke-run limit, resume."""
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=at_least(1), default=threads,
                   help=f"torch threads (default {threads})")
    p.add_argument("--limit", type=at_least(0), default=0,
                   help="use only N rows per split (smoke runs)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")


def load_pipeline(args: argparse.Namespace, **kwargs):
    """The pipeline :func:`add_model_options` describes."""
    from facecue.video.pipeline import Pipeline
    from facecue.vision.detect import make_detector
    from facecue.vision.runtime import ExpressionModel, KeypointModel

    return Pipeline(ExpressionModel.load(args.labels, args.expression_model, args.threads,
                                         sha256=args.expression_model_sha256,
                                         precision=args.precision),
                    KeypointModel.load(args.keypoints_model, args.threads,
                                       sha256=args.keypoints_model_sha256,
                                       precision=args.precision),
                    make_detector(args.detector), **kwargs,
                    workers=None if getattr(args, "workers", "auto") == "auto"
                    else int(args.workers))


class _Stderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (callers and tests may swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # logging must never raise
            self.handleError(record)


@contextmanager
def _messages() -> Iterator[Callable[[int], None]]:
    """While a command runs, facecue's log messages go to standard error as ``facecue: ...``;
    the block gets a function setting the verbosity (0, the start: info and up; 1: debug;
    -1: warnings; -2: errors)."""
    logger, handler = logging.getLogger("facecue"), _Stderr()
    handler.setFormatter(logging.Formatter("facecue: %(message)s"))
    old_level = logger.level

    def show(verbosity: int) -> None:
        logger.setLevel({-1: logging.WARNING, 0: logging.INFO}.get(
            verbosity, logging.DEBUG if verbosity > 0 else logging.ERROR))

    show(0)
    logger.addHandler(handler)
    try:
        yield show
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
