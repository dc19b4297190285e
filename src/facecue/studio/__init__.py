"""facecue studio: the live demo and the file captioner as a local web page.

A Starlette app served by uvicorn (``facecue studio``): the browser sends camera frames and
microphone audio over a WebSocket and draws what the same pipeline, smoothing and live
captioner as the command line send back (:mod:`.live`); uploaded videos are run through
:func:`facecue.run` and captioned (:mod:`.files`). :mod:`.guard` keeps it local (loopback by
default, ``Origin`` and ``Host`` checks, a token when bound elsewhere) and every upload in a
per-connection temporary folder.

Needs the studio extra (``pip install "facecue[studio]"``); nothing else in facecue imports
this package.
"""

from __future__ import annotations

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
    import websockets  # noqa: F401
except ImportError as e:
    raise ImportError(f"facecue studio needs {e.name}: pip install 'facecue[studio]'",
                      name=e.name) from e
