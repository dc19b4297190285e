"""Frame sources: webcams, video files, stream URLs, images, folders and in-memory frames.

Every source yields :class:`Frame` objects and counts frames it had to skip, so a bad frame
or a dropped camera ends in a clear message and a count instead of a crash.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".m4v", ".webm", ".wmv"}
MAX_ASPECT = 100  # a side this many times the other: a strip, not a picture of faces


class SourceError(RuntimeError):
    """A source that cannot be opened or read; the message says which and why."""


@dataclass(frozen=True)
class Frame:
    index: int  # position in the source (skipped frames keep their index)
    time: float  # seconds from the start of the source
    image: np.ndarray  # as decoded: BGR, gray or BGRA; 8 or 16 bit
    source: Path | None = None  # the image file, for image and folder sources


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """Keep OpenCV's and FFmpeg's own warnings off the terminal while the block runs: the
    caller explains failures itself. FFmpeg stays quiet unless ``OPENCV_FFMPEG_LOGLEVEL``
    is set (OpenCV reads it at each open)."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file unchanged (keeps 16-bit and alpha); raise on unreadable files,
    on files declaring more pixels than OpenCV reads, and on strips too thin for a face."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    data = np.fromfile(path, dtype=np.uint8)  # works for non-ASCII paths, unlike cv2.imread
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as e:  # OpenCV's size limit, before decoding
        raise ValueError(f"cannot decode image {path}: it declares more pixels than OpenCV "
                         f"reads ({e.err})") from None
    if img is None or img.size == 0:
        raise ValueError(f"cannot decode image {path} (corrupt, truncated or not an image)")
    h, w = img.shape[:2]
    if max(h, w) > MAX_ASPECT * min(h, w):
        raise ValueError(f"image {path} is {w}x{h}: a strip, not a picture to find faces in")
    return img


class FrameSource:
    """Base of all sources: iterate for frames; ``skipped`` counts undecodable frames.

    A source whose device or stream is lost mid-way raises :class:`SourceError` (or
    ``OSError``): the stream reading it ends there with a warning, as at the end of a file.
    """

    name = "frames"
    fps = 0.0  # nominal frame rate, 0 when unknown
    independent = False  # frames are unrelated stills: no tracking or smoothing across them

    def __init__(self) -> None:
        self.skipped = 0
        self.ended_early: str | None = None  # why it stopped before its known end, if it did

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release devices and files (called by the pipeline when it stops)."""

    def interrupt(self) -> None:
        """Ask a read waiting in another thread to give up soon (the pipeline calls this
        before stopping its reader thread, then :meth:`close`)."""

    def _warn(self, msg: str) -> None:
        log.warning("%s: %s", self.name, msg)


class ImageSource(FrameSource):
    """Image files in order, one frame each (``time`` is the position, 1 s per image)."""

    independent = True

    def __init__(self, paths: Iterable[str | Path], name: str = "images"):
        super().__init__()
        self.paths = [Path(p) for p in paths]
        self.name = name

    def __iter__(self) -> Iterator[Frame]:
        for i, path in enumerate(self.paths):
            try:
                img = read_image(path)
            except (OSError, ValueError) as e:
                self.skipped += 1
                self._warn(f"skipped: {e}")
                continue
            yield Frame(i, float(i), img, path)


class ArraySource(FrameSource):
    """Frames already in memory (or generated), at ``fps`` frames per second."""

    def __init__(self, frames: Iterable[np.ndarray], fps: float = 30.0):
        super().__init__()
        self.frames, self.fps = frames, fps

    def __iter__(self) -> Iterator[Frame]:
        for i, img in enumerate(self.frames):
            yield Frame(i, i / self.fps, img)


class VideoSource(FrameSource):
    """Video files, webcams and stream URLs through OpenCV's ``VideoCapture``.

    A frame that fails to decode is skipped and counted. Files end after ``max_failures``
    failed reads in a row (a file cut short ends with a warning and ``ended_early``: "ended
    early at frame N of M"); live sources (webcam, stream URL with no known length) try to
    reopen ``reconnect`` times before ending, so an unplugged camera or dropped stream ends
    cleanly with a message. FFmpeg's own messages are kept off the terminal
    (:func:`quiet_opencv`).
    """

    def __init__(self, source: int | str, max_failures: int = 25, reconnect: int = 3):
        super().__init__()
        self.source = source
        self.live = isinstance(source, int) or "://" in str(source)
        self.name = f"camera {source}" if isinstance(source, int) else str(source)
        self.max_failures, self.reconnect = max_failures, reconnect
        self._interrupted = threading.Event()
        self.cap = self._open()
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not 0 < self.fps < 1000:
            self.fps = 0.0
        self.length = max(int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)  # 0 when unknown
        if self.live and self.length:
            self.live = False  # a URL to a finite file: it ends, it is not reconnected

    def _open(self) -> cv2.VideoCapture:
        with quiet_opencv():
            cap = cv2.VideoCapture(self.source)
        if not cap.isOpened():
            cap.release()
            what = ("no camera at index" if isinstance(self.source, int)
                    else "cannot open stream" if self.live else "cannot open video")
            raise SourceError(f"{what} {self.source}")
        return cap

    def __iter__(self) -> Iterator[Frame]:
        index, failures, reopened = 0, 0, 0
        start = time.monotonic()
        while True:
            if not self.cap.grab():
                failures += 1
                if failures < self.max_failures and not self.live:
                    continue
                if self.live and reopened < self.reconnect:
                    reopened += 1
                    self._warn(f"no frames; reconnecting ({reopened}/{self.reconnect})")
                    self.cap.release()
                    if self._interrupted.wait(0.5):
                        return
                    try:
                        self.cap = self._open()
                    except SourceError:
                        continue
                    failures = 0
                    continue
                if self.live:
                    self._warn("source stopped sending frames (disconnected?); stopping")
                # The container's count can be a few frames off (an edit list drops some):
                # only more than a second missing is a file cut short.
                elif self.length - index > max(self.fps, 1.0):
                    self.ended_early = f"ended early at frame {index} of {self.length}"
                    self._warn(f"{self.ended_early} (the file is cut short or damaged)")
                return
            ok, img = self.cap.retrieve()
            if not ok or img is None:
                self.skipped += 1
                index += 1
                continue
            if failures and not self.live:  # reads failed mid-file: those frames are lost
                self.skipped += failures
                index += failures
            failures = 0
            if self.live:
                t = time.monotonic() - start
            else:
                ms = self.cap.get(cv2.CAP_PROP_POS_MSEC)
                t = ms / 1000.0 if ms > 0 or index == 0 else index / (self.fps or 30.0)
            yield Frame(index, t, img)
            index += 1

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        self.cap.release()


def pan(image: np.ndarray, n: int, size: tuple[int, int] = (900, 600)) -> list[np.ndarray]:
    """``n`` frames of a camera moving in a figure of eight over a still ``image`` (a window of
    ``size``, width and height): a still with several faces as a video, to stream."""
    w, h = size
    dx, dy = image.shape[1] - w, image.shape[0] - h
    out = []
    for k in range(n):
        a = 2 * np.pi * k / n
        x, y = round(dx / 2 * (1 + np.sin(a))), round(dy / 2 * (1 + np.sin(2 * a)))
        out.append(np.ascontiguousarray(image[y:y + h, x:x + w]))
    return out


def open_source(source: int | str | Path | FrameSource | Iterable[np.ndarray]) -> FrameSource:
    """Pick the source for ``source``: camera index, URL, video, image, folder or frames."""
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return VideoSource(int(source))
    if isinstance(source, str | Path):
        text = str(source)
        if "://" in text:
            return VideoSource(text)
        path = Path(text)
        if path.is_dir():
            return ImageSource(folder_images(path), name=str(path))
        if not path.exists():
            raise FileNotFoundError(f"source not found: {path}")
        if path.suffix.lower() in IMAGE_EXTS:
            return ImageSource([path], name=str(path))
        return VideoSource(text)
    return ArraySource(source)


def folder_images(folder: str | Path) -> list[Path]:
    """The image files in ``folder`` (by suffix, not its subfolders), sorted by name."""
    folder = Path(folder)
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if not images:
        raise SourceError(f"no images ({', '.join(sorted(IMAGE_EXTS))}) in {folder}")
    return images


def image_files(paths: Iterable[str | Path]) -> list[Path]:
    """``paths`` with each folder replaced by its images (:func:`folder_images`); files are
    kept as given, so a missing or unreadable one is reported when it is read."""
    out: list[Path] = []
    for path in map(Path, paths):
        out += folder_images(path) if path.is_dir() else [path]
    return out


DEMO_CLIP = resources.files("facecue") / "assets" / "demo_astronaut.mp4"


def demo_source(builtin: bool = False) -> VideoSource:
    """The demo's input: the webcam (index 0) when there is one and ``builtin`` is false,
    else the built-in clip (a camera moving over a public-domain portrait)."""
    if not builtin:
        try:
            return VideoSource(0, reconnect=0)
        except SourceError:
            log.warning("no webcam found; running on the built-in clip")
    return VideoSource(str(DEMO_CLIP))
