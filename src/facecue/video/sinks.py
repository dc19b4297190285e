"""Where results go: window, annotated video, JSON Lines, per-face CSV summary, snapshots.

Files are written under a temporary name and renamed when complete, so a crash or Ctrl-C
never leaves a half-written file under the final name. Each file sink checks its path when it
is made, before the first frame; the first write that fails (a full disk) raises an error
naming the file, whose temporary file is then removed, never renamed into place.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from facecue.fileio import (
    atomic_write_bytes,
    atomic_write_text,
    new_file_beside,
    prepare_output,
    write_error,
)
from facecue.results import FrameResult
from facecue.video.sources import quiet_opencv

log = logging.getLogger(__name__)


class _Staged:
    """A file written under a hidden temporary name beside ``path``: the path is checked when
    this is made; :meth:`finish` moves the file into place, unless a write to it failed."""

    def __init__(self, path: Path):
        self.path, self.tmp, self.failed = path, None, False
        prepare_output(path)

    def start(self) -> int:
        """Create the temporary file (with ``path``'s suffix: codecs need it); its descriptor."""
        try:
            fd, self.tmp = new_file_beside(self.path, self.path.suffix)
        except OSError as e:
            raise self.failure(e) from None
        return fd

    def failure(self, error: OSError) -> OSError:
        """A write failed: remove the file; the error to raise, naming ``path``."""
        self.discard()
        return write_error(self.path, error)

    def discard(self) -> None:
        """Remove the file: nothing is moved into place."""
        self.failed = True
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)

    def finish(self) -> tuple[Path, ...]:
        """Move the file into place unless a write failed; the files now written."""
        if self.failed:
            return ()
        os.replace(self.tmp, self.path)
        return (self.path,)


class Sink:
    """Receives every frame (annotated when ``wants_image``) and its result."""

    wants_image = False
    files: tuple[Path, ...] = ()  # what it has written (files complete once closed)

    def write(self, image: np.ndarray | None, result: FrameResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish: move the finished file into place."""

    @property
    def stop_requested(self) -> bool:
        return False


def close_all(sinks: Iterable[Sink]) -> None:
    """Close every sink, even when one fails; then raise the first failure."""
    failure = None
    for sink in sinks:
        try:
            sink.close()
        except Exception as e:
            failure = failure or e
    if failure is not None:
        raise failure


def jsonl_lines(result: FrameResult) -> str:
    """The JSON Lines records of one frame, one per face, as :class:`JsonlSink` writes them
    (for writers that cannot use the sink's staged file, e.g. a live page's download)."""
    source = {} if result.source is None else {"source": str(result.source)}
    return "".join(json.dumps({"time": round(result.time, 4), "frame": result.index,
                               **source, **face.as_dict()}) + "\n" for face in result.faces)


class JsonlSink(Sink):
    """One JSON record per frame and face: ``time`` (seconds), ``frame`` (index), for images
    and folders ``source`` (the image file), then the face's fields
    (:meth:`facecue.results.Face.as_dict`). ``path`` ``-`` writes to standard output."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.staged = None if str(path) == "-" else _Staged(self.path)
        self.file = sys.stdout if self.staged is None else os.fdopen(self.staged.start(), "w")

    def write(self, image: np.ndarray | None, result: FrameResult) -> None:
        lines = jsonl_lines(result)
        if self.staged is None:
            self.file.write(lines)
            return
        try:
            self.file.write(lines)
        except OSError as e:
            raise self.staged.failure(e) from None

    def close(self) -> None:
        if self.staged is None:
            self.file.flush()
            return
        try:
            self.file.close()  # writes the last buffered lines
        except OSError as e:
            if not self.staged.failed:
                raise self.staged.failure(e) from None
        self.files = self.staged.finish()


class SummarySink(Sink):
    """Per face ID: first/last time, frames seen, dominant emotion and each label's share.

    Shares are of the face's frames (its time on screen at a steady frame rate), from the
    shown (smoothed) label of each frame; ``track_id`` -1 gathers untracked faces (stills).
    """

    def __init__(self, path: str | Path, labels: tuple[str, ...]):
        self.path, self.labels = Path(path), labels
        prepare_output(self.path)
        self.counts: dict[int, Counter] = defaultdict(Counter)
        self.span: dict[int, list[float]] = {}

    def write(self, image: np.ndarray | None, result: FrameResult) -> None:
        for face in result.faces:
            tid = -1 if face.track_id is None else face.track_id
            self.counts[tid][face.expression.label] += 1
            first, _ = self.span.get(tid, (result.time, result.time))
            self.span[tid] = [first, result.time]

    def rows(self) -> list[dict]:
        rows = []
        for tid, counts in sorted(self.counts.items()):
            n = sum(counts.values())
            row = {"track_id": tid, "first_time": round(self.span[tid][0], 3),
                   "last_time": round(self.span[tid][1], 3), "frames": n,
                   "dominant": counts.most_common(1)[0][0]}
            row.update({f"share_{k}": round(counts[k] / n, 4) for k in self.labels})
            rows.append(row)
        return rows

    def close(self) -> None:
        fields = ["track_id", "first_time", "last_time", "frames", "dominant",
                  *(f"share_{k}" for k in self.labels)]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields)
        w.writeheader()
        w.writerows(self.rows())
        atomic_write_text(self.path, buf.getvalue())
        self.files = (self.path,)


class VideoSink(Sink):
    """Annotated video (``.mp4`` as MPEG-4 Part 2, ``.avi`` as MJPG), renamed when done and
    read back.

    OpenCV's writer reports no failed write (a full disk, a file-size limit): it writes in
    large blocks, so whenever a frame leaves the file's size unchanged a byte is written past
    its end and cut off again, which fails where the writer's next block would have.
    """

    wants_image = True

    def __init__(self, path: str | Path, fps: float):
        self.path, self.fps = Path(path), fps or 30.0
        self.staged = _Staged(self.path)
        self.writer: cv2.VideoWriter | None = None
        self.frames = self.bytes = 0  # frames written, and the file's size after them

    def write(self, image: np.ndarray | None, result: FrameResult) -> None:
        if self.writer is None:
            self._open(image.shape[1], image.shape[0])
        if (image.shape[1], image.shape[0]) != self.size:  # sources may change size
            image = cv2.resize(image, self.size)
        with quiet_opencv():  # its "Failed to write frame" on every frame: we stop instead
            self.writer.write(image)
        self.frames += 1
        size = os.fstat(self.fd).st_size
        if size > self.bytes:
            self.bytes = size
            return
        try:
            os.pwrite(self.fd, b"\0", size)
            os.ftruncate(self.fd, size)
        except OSError as e:
            raise self.staged.failure(e) from None

    def _open(self, width: int, height: int) -> None:
        fourcc = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
        self.size = (width, height)
        fd = self.staged.start()
        writer = cv2.VideoWriter(str(self.staged.tmp), cv2.VideoWriter_fourcc(*fourcc),
                                 self.fps, self.size)
        if not writer.isOpened():
            os.close(fd)
            self.staged.discard()
            raise RuntimeError(f"cannot write video {self.path} with codec {fourcc}")
        self.fd, self.writer = fd, writer

    def close(self) -> None:
        if self.writer is None:
            return
        with quiet_opencv():
            self.writer.release()
            frames = 0 if self.staged.failed else int(
                cv2.VideoCapture(str(self.staged.tmp)).get(cv2.CAP_PROP_FRAME_COUNT))
        os.close(self.fd)
        if frames != self.frames and not self.staged.failed:  # e.g. its index did not fit
            raise self.staged.failure(OSError(f"the finished file reads back with {frames} of "
                                              f"{self.frames} frames (a full disk?)"))
        self.files = self.staged.finish()


class SnapshotSink(Sink):
    """Annotated PNG snapshots: when a new face ID appears, and every ``every`` seconds."""

    wants_image = True

    def __init__(self, folder: str | Path, every: float = 0.0):
        self.folder, self.every = Path(folder), every
        prepare_output(self.folder / "frame000000.png")  # makes the folder
        self.seen: set[int] = set()
        self.last = -float("inf")

    def write(self, image: np.ndarray | None, result: FrameResult) -> None:
        ids = {f.track_id for f in result.faces if f.track_id is not None}
        due = self.every > 0 and result.time - self.last >= self.every
        if ids - self.seen or due:
            self.seen |= ids
            self.last = result.time
            path = self.folder / f"frame{result.index:06d}.png"
            atomic_write_bytes(path, cv2.imencode(".png", image)[1].tobytes())
            self.files = (self.folder,)


def has_display() -> tuple[bool, str]:
    """Whether OpenCV can open a window here, and why not when it cannot."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return False, "no display (DISPLAY is not set)"
    try:
        cv2.namedWindow("facecue")
        cv2.destroyWindow("facecue")
    except cv2.error:
        return False, ("this OpenCV has no GUI support (opencv-python-headless); "
                       "install opencv-python for a window")
    return True, ""


class WindowSink(Sink):
    """Live window; ``q`` or Esc stops the run. Create only when :func:`has_display` is true;
    if the window fails anyway (display gone mid-run), the run goes on without it."""

    wants_image = True

    def __init__(self, title: str = "facecue"):
        self.title = title
        self._stop = self._broken = False

    def write(self, image: np.ndarray | None, result: FrameResult) -> None:
        if self._broken:
            return
        try:
            cv2.imshow(self.title, image)
            self._stop = (cv2.waitKey(1) & 0xFF) in (ord("q"), 27)
        except cv2.error as e:
            self._broken = True
            log.warning("window failed (%s); continuing without it", e.err)

    def close(self) -> None:
        if not self._broken:
            cv2.destroyWindow(self.title)

    @property
    def stop_requested(self) -> bool:
        return self._stop
