"""Which command made a run, a model or a data file: run records and model cards quote it, so
anyone can rerun it. The command line sets it; a call from Python records None."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_COMMAND: ContextVar[str | None] = ContextVar("facecue_command", default=None)


@contextmanager
def running_command(argv: list[str]) -> Iterator[None]:
    """While the block runs, ``facecue ARGV...`` is the command being run (the arguments
    :func:`facecue.cli.main` parses, which are not always ``sys.argv``)."""
    token = _COMMAND.set(shlex.join(["facecue", *argv]))
    try:
        yield
    finally:
        _COMMAND.reset(token)


def current_command() -> str | None:
    """The ``facecue`` command being run, or None when facecue was called from Python."""
    return _COMMAND.get()
