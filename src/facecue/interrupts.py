"""Stops that wait for a whole frame: a signal that ends facecue (Ctrl-C, SIGTERM, SIGHUP)
and arrives while a frame is being written to the outputs takes effect when that frame is
done, so no output holds part of a frame (a video writer's frame written but not counted,
half a JSON line).

The command line installs handlers that call :func:`stop`; in Python, Ctrl-C raises at once
as usual unless such a handler is installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0  # nesting of uninterrupted() blocks (signals are handled in the main thread)
_pending: BaseException | None = None
_requested: BaseException | None = None  # the first stop asked for, raised or not


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Run the block whole: a stop requested meanwhile is raised when it ends."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending is not None:
            stopping, _pending = _pending, None
            raise stopping


def stop(exception: BaseException) -> None:
    """Raise ``exception`` now, or at the end of the current :func:`uninterrupted` block."""
    global _pending, _requested
    _requested = _requested or exception
    if _depth == 0:
        raise exception
    _pending = _pending or exception


def check() -> None:
    """Raise the stop asked for, if any, again. A signal handler's exception that lands in a
    finaliser (a ``__del__`` run by the garbage collector) is printed and dropped by Python;
    loops call this between items so such a stop still ends the work."""
    if _requested is not None:
        raise _requested


def reset() -> None:
    """Forget stops asked for (a command starts, or has ended)."""
    global _pending, _requested
    _pending = _requested = None
