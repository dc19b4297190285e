"""Serving the studio with uvicorn: in the foreground (``facecue studio``) or in a thread
(:func:`running`, for tests and the benchmark, which drive it from a browser).

The listening socket is bound before uvicorn starts, so a port in use fails with an
``OSError`` naming it, and the URL printed is the one that answers.
"""

from __future__ import annotations

import logging
import socket
import threading
import webbrowser
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from facecue.studio.app import Studio, StudioSettings, create_app

log = logging.getLogger(__name__)

WS_MAX_BYTES = 8 * 1024 * 1024  # a raw 1920x1080 RGBA frame fits


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: any free port); OSError if taken."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(64)
    return sock


def url(settings: StudioSettings, sock: socket.socket, path: str = "/") -> str:
    """The address to open (with ``?token=`` when one is needed), as Jupyter prints it;
    bound to every address, the machine's name."""
    port = sock.getsockname()[1]
    host = settings.host.strip("[]")
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") \
        else f"[{host}]" if ":" in host else host
    token = f"?token={settings.token}" if settings.token else ""
    return f"http://{shown}:{port}{path}{token}"


def _server(settings: StudioSettings) -> uvicorn.Server:
    config = uvicorn.Config(create_app(settings), log_level="warning", ws="websockets-sansio",
                            ws_max_size=WS_MAX_BYTES, lifespan="on", access_log=False)
    return uvicorn.Server(config)


def _studio(server: uvicorn.Server) -> Studio:
    return server.config.app.app.state.studio  # the app inside the guard


@dataclass(frozen=True)
class Running:
    """A studio serving in a thread: its address and its temporary folder (every upload,
    result and live record is written under it; it is removed when the server stops)."""

    url: str
    root: Path


def serve(settings: StudioSettings, port: int = 8000, open_browser: bool = False) -> None:
    """Run the studio until Ctrl-C, printing its URL (and opening it with ``open_browser``)."""
    sock = bind(settings.host, port)
    address = url(settings, sock)
    log.info("studio at %s (Ctrl-C stops it)", address)
    if settings.token:
        log.info("listening beyond this machine: the URL's token is required")
    server = _server(settings)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(address,)).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        _studio(server).remove()  # also when the shutdown did not reach the app's


@contextmanager
def running(settings: StudioSettings, port: int = 0) -> Iterator[Running]:
    """The studio serving in a background thread while the block runs."""
    sock = bind(settings.host, port)
    server = _server(settings)
    studio = _studio(server)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="facecue-studio", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the studio server did not start")
            threading.Event().wait(0.02)
        yield Running(url(settings, sock).split("?")[0].removesuffix("/"), studio.root)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        studio.remove()
