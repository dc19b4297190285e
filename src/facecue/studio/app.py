"""The studio's web app: two pages, their WebSockets, the upload and the downloads.

Each WebSocket is a connection with its own temporary folder under the server's (removed
when the connection closes, and the server's when it stops); uploads, results and live
records are written only there, and only files listed by name (:data:`.files.OUTPUTS`, a
live session's two records) are served from there, so no path a request names is ever
opened. Models run in worker threads, one frame at a time per connection, so the event loop
keeps serving other pages; every error in a connection is sent to its page as a message
(``{"type": "error"}``) and never stops the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from facecue.api import shared_pipeline
from facecue.captions.cues import stylesheet
from facecue.captions.sentences import ALIASES
from facecue.labels import DEFAULT_LABELS
from facecue.speech.transcribe import Transcriber
from facecue.studio.files import OUTPUTS, FileJob, check_video, upload_name
from facecue.studio.guard import Guard, GuardMiddleware
from facecue.studio.live import (
    AudioMessage,
    LiveSession,
    MessageError,
    label_sets,
    parse_message,
)
from facecue.video.sources import VIDEO_EXTS
from facecue.vision.runtime import ModelNotFoundError

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
FRAMES_WAITING = 2  # frames queued per live connection; older ones are dropped
CAPTION_POLL = 0.05  # seconds between looks for finished caption lines
STATUS_EVERY = 0.2  # seconds between a file job's progress messages


@dataclass
class StudioSettings:
    """How a studio server runs: where it listens, its token, what it accepts."""

    host: str = "127.0.0.1"
    token: str | None = None  # required of every request when set (binding beyond loopback)
    max_upload_mb: float = 200.0
    labels: str = DEFAULT_LABELS  # the live page's first label set, and the uploads'

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def caption_css() -> str:
    """The WebVTT stylesheet (for the player's ``<track>``) and the same rules for the live
    captions' HTML: ``::cue(.sad)`` also as ``.cue.sad``, so both look alike."""
    css = stylesheet()
    return css + re.sub(r"::cue\(\.([\w-]+)\)", r".cue.\1", css)


@dataclass
class FileConnection:
    """A file page's connection: its folder and its job (one at a time)."""

    folder: Path
    job: FileJob | None = None
    thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


@dataclass
class Studio:
    """The server's state: its temporary folder, the connections, the speech recogniser
    (loaded once, shared: it runs one pass at a time)."""

    settings: StudioSettings
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="facecue-studio-")))
    live: dict[str, LiveSession] = field(default_factory=dict)
    files: dict[str, FileConnection] = field(default_factory=dict)
    _transcriber: Transcriber | None = None
    _speech_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def new_folder(self) -> tuple[str, Path]:
        """A new connection's id and its own folder."""
        cid = uuid.uuid4().hex
        folder = self.root / cid
        folder.mkdir(mode=0o700)
        return cid, folder

    def transcriber(self) -> Transcriber:
        """The speech recogniser, loaded on first use; RuntimeError saying why if it cannot
        be (its message is then given to every page that asks)."""
        with self._lock:
            if self._transcriber is None and self._speech_error is None:
                try:
                    self._transcriber = Transcriber(cpu_threads=1)
                except (OSError, RuntimeError, ValueError) as e:
                    self._speech_error = f"speech recognition is unavailable: {e}"
            if self._transcriber is None:
                raise RuntimeError(self._speech_error)
            return self._transcriber

    def warm_up(self) -> None:
        """Load the default models and the recogniser now, so the first page is quick."""
        with suppress(OSError, RuntimeError, ValueError):
            shared_pipeline(self.settings.labels)
        with suppress(RuntimeError):
            self.transcriber()

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def create_app(settings: StudioSettings) -> GuardMiddleware:
    """The studio as an ASGI app: the Starlette app inside :class:`~.guard.GuardMiddleware`
    (``.app.state.studio`` holds its :class:`Studio`)."""
    studio = Studio(settings)
    guard = Guard(settings.host, settings.token)

    @asynccontextmanager
    async def lifespan(app):
        warm_up = threading.Thread(target=studio.warm_up, name="facecue-studio-warm-up")
        warm_up.start()
        try:
            yield
        finally:  # a load cut off at the process's exit would abort it: let it finish
            await run_in_threadpool(warm_up.join)
            studio.remove()

    def page(name: str):
        async def endpoint(request: Request) -> Response:
            return FileResponse(STATIC / name, media_type="text/html; charset=utf-8",
                                headers={"cache-control": "no-store"})
        return endpoint

    async def css(request: Request) -> Response:
        return Response(caption_css(), media_type="text/css")

    def same_origin_socket(session):
        """A WebSocket endpoint that runs ``session`` only for the studio's own page."""
        async def endpoint(ws: WebSocket) -> None:
            if not guard.origin_ok(dict(ws.headers)):
                await ws.close(code=1008, reason="cross-origin WebSocket refused")
                return
            await ws.accept()
            await session(ws, studio)
        return endpoint

    async def upload(request: Request) -> Response:
        if not guard.origin_ok(dict(request.headers)):
            return _error(403, "uploads are accepted from the studio's own page only")
        return await _upload(request, studio)

    async def live_record(request: Request) -> Response:
        session = studio.live.get(request.path_params["cid"])
        name = request.path_params["name"]
        if session is None or name not in ("faces.jsonl", "captions.vtt"):
            return _error(404, "no such live record (the live page was closed?)")
        if name == "captions.vtt":
            vtt = await run_in_threadpool(session.vtt)
            return Response(vtt, media_type="text/vtt; charset=utf-8")
        path = await run_in_threadpool(session.jsonl)
        return FileResponse(path, media_type=OUTPUTS["faces.jsonl"])

    async def job_file(request: Request) -> Response:
        conn = studio.files.get(request.path_params["cid"])
        name = request.path_params["name"]
        job = conn.job if conn is not None else None
        if job is None or job.state != "done" or name not in OUTPUTS \
                or not (job.folder / name).is_file():
            return _error(404, "no such result (the file page was closed?)")
        return FileResponse(job.folder / name, media_type=OUTPUTS[name],
                            content_disposition_type="inline")

    routes = [
        Route("/", page("live.html")),
        Route("/file", page("file.html")),
        Route("/captions.css", css),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        WebSocketRoute("/ws/live", same_origin_socket(_live)),
        WebSocketRoute("/ws/files", same_origin_socket(_files)),
        Route("/upload/{cid}", upload, methods=["POST"]),
        Route("/live/{cid}/{name}", live_record),
        Route("/files/{cid}/{name}", job_file),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.studio = studio
    return GuardMiddleware(app, guard)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _Sender:
    """One WebSocket's sends, one at a time (the frame and caption tasks both send); once
    the page is gone, sends do nothing (the receiving loop sees the close and cleans up)."""

    def __init__(self, ws: WebSocket):
        self.ws, self._lock, self.gone = ws, asyncio.Lock(), False

    async def __call__(self, message: dict) -> None:
        async with self._lock:
            if self.gone:
                return
            try:
                await self.ws.send_text(json.dumps(message))
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.gone = True


async def _live(ws: WebSocket, studio: Studio) -> None:
    """A live page's connection: frames in, overlays out; audio in, captions out."""
    send = _Sender(ws)
    cid, folder = studio.new_folder()
    session = None
    tasks: list[asyncio.Task] = []
    try:
        speech_note = None
        try:
            transcriber = await run_in_threadpool(studio.transcriber)
        except RuntimeError as e:
            transcriber, speech_note = None, str(e)
        try:
            session = await run_in_threadpool(LiveSession, folder, transcriber,
                                              studio.settings.labels)
        except (OSError, ValueError, RuntimeError) as e:
            await send({"type": "error", "message": f"the face models did not load: {e}"})
            await ws.close(code=1011)
            return
        studio.live[cid] = session
        await send({"type": "hello", "session": cid, "labels": label_sets(),
                    "current": session.labels, "speech": transcriber is not None})
        if speech_note:
            await send({"type": "error", "message": speech_note})
        frames: asyncio.Queue = asyncio.Queue()
        tasks = [asyncio.create_task(_overlays(frames, session, send)),
                 asyncio.create_task(_captions(session, send))]
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("bytes") is not None:
                try:
                    parsed = parse_message(message["bytes"])
                except MessageError as e:
                    await send({"type": "error", "message": f"bad message from the page: {e}"})
                    continue
                if isinstance(parsed, AudioMessage):
                    session.feed_audio(parsed)
                    continue
                while frames.qsize() >= FRAMES_WAITING:  # keep the newest: it is live
                    frames.get_nowait()
                frames.put_nowait(parsed)
            elif message.get("text") is not None:
                await _control(message["text"], session, send)
    except WebSocketDisconnect:
        pass
    finally:
        for task in tasks:
            task.cancel()
        studio.live.pop(cid, None)
        if session is not None:
            with suppress(RuntimeError):
                await run_in_threadpool(session.close)
        shutil.rmtree(folder, ignore_errors=True)


async def _overlays(frames: asyncio.Queue, session: LiveSession, send: _Sender) -> None:
    """Process queued frames one at a time in a worker thread; send each overlay."""
    while True:
        message = await frames.get()
        t0 = time.perf_counter()
        try:
            reply = await run_in_threadpool(session.process, message)
        except Exception as e:  # a bug included: the page hears of it, the session goes on
            log.exception("a live frame failed")
            await send({"type": "error", "message": f"a frame failed: {e}"})
            continue
        reply["server_ms"] = round(1000 * (time.perf_counter() - t0), 2)
        await send(reply)


async def _captions(session: LiveSession, send: _Sender) -> None:
    """Send caption lines as the captioner finishes them."""
    while True:
        await asyncio.sleep(CAPTION_POLL)
        try:
            lines = session.new_captions()
        except Exception as e:  # recognition stopped: the faces go on without captions
            await send({"type": "error", "message": str(e)})
            return
        for line in lines:
            await send(line)


async def _control(text: str, session: LiveSession, send: _Sender) -> None:
    """A setting changed on the page: label set or smoothing."""
    try:
        control = json.loads(text)
        kind = control["type"]
    except (ValueError, KeyError, TypeError):
        await send({"type": "error", "message": "bad control message from the page"})
        return
    if kind == "smooth":
        session.smooth = bool(control.get("on", True))
    elif kind == "labels":
        try:
            await run_in_threadpool(session.set_labels, str(control.get("labels")))
        except (ModelNotFoundError, ValueError) as e:
            await send({"type": "error", "message": str(e)})
        await send({"type": "labels", "current": session.labels})


async def _files(ws: WebSocket, studio: Studio) -> None:
    """A file page's connection: it owns the uploads' folder and hears their progress."""
    send = _Sender(ws)
    cid, folder = studio.new_folder()
    conn = studio.files[cid] = FileConnection(folder)
    closed = asyncio.Event()

    async def receive() -> None:
        try:
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            closed.set()

    listener = asyncio.create_task(receive())
    try:
        await send({"type": "hello", "connection": cid,
                    "max_bytes": studio.settings.max_upload_bytes,
                    "extensions": sorted(VIDEO_EXTS), "aliases": ALIASES})
        last = None
        while not closed.is_set() and not send.gone:
            with suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), STATUS_EVERY)
            status = conn.job.status() if conn.job is not None else None
            if status is not None and status != last and not closed.is_set():
                await send(status)
                last = status
    finally:
        listener.cancel()
        studio.files.pop(cid, None)
        if conn.job is not None:
            conn.job.cancelled.set()
        if conn.thread is not None:
            await run_in_threadpool(conn.thread.join)
        shutil.rmtree(folder, ignore_errors=True)


async def _upload(request: Request, studio: Studio) -> Response:
    """Store an uploaded video in its connection's folder, check it, start its job."""
    conn = studio.files.get(request.path_params["cid"])
    if conn is None:
        return _error(404, "this page lost its connection to the studio: reload the page")
    if conn.busy:
        return _error(409, "a video is still being processed: wait for it to finish")
    limit = studio.settings.max_upload_bytes
    too_big = (f"the video is larger than this studio's limit of "
               f"{studio.settings.max_upload_mb:g} MB (facecue studio --max-upload-mb)")
    shown = unquote(request.headers.get("x-filename", "")) or "the file"
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _error(413, too_big)
    try:
        stored = conn.folder / upload_name(shown)
    except ValueError as e:
        return _error(415, str(e))
    for old in conn.folder.iterdir():  # a new upload replaces the last one and its results
        old.unlink()
    size = 0
    with open(stored, "wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                break
            out.write(chunk)
    if size > limit or size == 0:
        stored.unlink()
        return _error(413, too_big) if size else _error(400, f"{shown} is empty")
    try:
        frames, fps = await run_in_threadpool(check_video, stored, shown)
        transcriber = await run_in_threadpool(studio.transcriber)
    except (ValueError, RuntimeError) as e:
        stored.unlink()
        return _error(415 if isinstance(e, ValueError) else 503, str(e))
    conn.job = FileJob(conn.folder, stored, shown, frames, fps, labels=studio.settings.labels)
    conn.thread = threading.Thread(target=conn.job.run, args=(transcriber,),
                                   name="facecue-studio-job", daemon=True)
    conn.thread.start()
    return JSONResponse({"state": "queued", "frames": frames}, status_code=202)
