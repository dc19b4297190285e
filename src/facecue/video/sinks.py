"""Where results go: window, annotated video, JSON Lines, per-face CSV summary, snapshots.

Files are written under a temporary name and renamed when complete, so a crash or Ctrl-C
never leaves a half-written file under the final name.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np

from facecue.fileio import atomic_write_bytes, atomic_write_text, new_file_beside
from facecue.results import FrameResult

log = logging.getLogger(__name__)


def _tmp_beside(path: Path) -> Path:
    """A new temporary file in ``path``'s folder with the same suffix (codecs need it)."""
    fd, tmp = new_file_beside(path, path.suffix)
    os.close(fd)
    return tmp


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


class JsonlSink(Sink):
    """One JSON record per frame and face: ``time`` (seconds), ``frame`` (index), then the
    face's fields (:meth:`facecue.results.Face.as_dict`). ``path`` ``-`` writes to standard
    output."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if str(path) == "-":
            self.tmp, self.file = None, sys.stdout
        else:
            self.tmp = _tmp_beside(self.path)
            self.file = self.tmp.open("w")

    def write(self, image: np.ndarray | None, result: FrameResult) -> None:
        for face in result.faces:
            rec = {"time": round(result.time, 4), "frame": result.index, **face.as_dict()}
            self.file.write(json.dumps(rec) + "\n")

    def close(self) -> None:
        if self.tmp is None:
            self.file.flush()
            return
        self.file.close()
        os.replace(self.tmp, self.path)
        self.files = (self.path,)


class SummarySink(Sink):
    """Per face ID: first/last time, frames seen, dominant emotion and each label's share.

    Shares are of the face's frames (its time on screen at a steady frame rate), from the
    shown (smoothed) label of each frame; ``track_id`` -1 gathers untracked faces (stills).
    """

    def __init__(self, path: str | Path, labels: tuple[str, ...]):
        self.path, self.labels = Path(path), labels
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
    """Annotated video (``.mp4`` as MPEG-4 Part 2, ``.avi`` as MJPG), renamed when done."""

    wants_image = True

    def __init__(self, path: str | Path, fps: float):
        self.path, self.fps = Path(path), fps or 30.0
        self.tmp = _tmp_beside(self.path)
        self.writer: cv2.VideoWriter | None = None

    def write(self, image: np.ndarray | None, result: FrameResult) -> None:
        if self.writer is None:
            fourcc = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
            self.size = (image.shape[1], image.shape[0])
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*fourcc),
                                          self.fps, self.size)
            if not self.writer.isOpened():
                raise RuntimeError(f"cannot write video {self.path} with codec {fourcc}")
        if (image.shape[1], image.shape[0]) != self.size:  # sources may change size
            image = cv2.resize(image, self.size)
        self.writer.write(image)

    def close(self) -> None:
        if self.writer is None:
            self.tmp.unlink(missing_ok=True)
            return
        self.writer.release()
        os.replace(self.tmp, self.path)
        self.files = (self.path,)


class SnapshotSink(Sink):
    """Annotated PNG snapshots: when a new face ID appears, and every ``every`` seconds."""

    wants_image = True

    def __init__(self, folder: str | Path, every: float = 0.0):
        self.folder, self.every = Path(folder), every
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
