"""Drawing results on frames: one overlay for the window, videos and snapshots.

Kept apart from the models and the pipeline so every sink draws the same thing and drawing
can be swapped or skipped without touching inference.
"""

from __future__ import annotations

import time
from collections import deque

import cv2
import numpy as np

from facecue.results import FrameResult
from facecue.vision.crop import to_uint8

_PALETTE = [(66, 135, 245), (80, 200, 120), (60, 76, 231), (0, 200, 255), (200, 90, 200),
            (255, 160, 60), (140, 140, 255), (40, 220, 220)]


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Any decoded frame (gray, BGRA, 16-bit, float) as an 8-bit BGR image to draw on."""
    img = to_uint8(image)
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img.copy()


def color(track_id: int | None) -> tuple[int, int, int]:
    """A stable colour per face ID."""
    return _PALETTE[(track_id or 0) % len(_PALETTE)]


class FrameRate:
    """Frames per second over the last ``window`` seconds, for the overlay's counter.

    One over each frame's time jumps around (a frame with a detection costs several tracked
    ones, a frame with no face in view next to nothing: tens to thousands of FPS on the
    built-in clip), and an average of those rates is pulled up by the fast frames; frames
    counted over a second of wall time read steadily.
    """

    def __init__(self, window: float = 1.0):
        self.window = window
        self._ends: deque[float] = deque()  # perf_counter() at the end of recent frames

    def tick(self, now: float | None = None) -> None:
        """One more frame done (now, or at ``now`` seconds of ``time.perf_counter``)."""
        self._ends.append(time.perf_counter() if now is None else now)
        while len(self._ends) > 2 and self._ends[-1] - self._ends[1] >= self.window:
            self._ends.popleft()

    @property
    def fps(self) -> float | None:
        """The rate, or None before two frames are done."""
        span = self._ends[-1] - self._ends[0] if len(self._ends) > 1 else 0.0
        return (len(self._ends) - 1) / span if span > 0 else None


def annotate(image: np.ndarray, result: FrameResult, fps: float | None = None,
             caption: str | None = None) -> np.ndarray:
    """A copy of ``image`` with boxes, IDs, keypoints, emotion label and bar, FPS, and the
    latest spoken sentence as a caption at the bottom."""
    out = to_bgr8(image)
    thick = max(1, round(max(out.shape[:2]) / 480))
    font = 0.4 * thick + 0.1
    for face in result.faces:
        c = color(face.track_id)
        x, y, w, h = face.box
        cv2.rectangle(out, (x, y), (x + w, y + h), c, thick)
        for px, py in face.keypoints:
            cv2.circle(out, (int(round(px)), int(round(py))), thick + 1, (0, 255, 255), -1)
        expr = face.expression
        tag = f"#{face.track_id} " if face.track_id is not None else ""
        text = f"{tag}{expr.label} {expr.score:.0%}"
        ty = y - 6 * thick if y > 20 * thick else y + h + 20 * thick  # below the bar
        cv2.putText(out, text, (x, ty), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick + 2,
                    cv2.LINE_AA)
        cv2.putText(out, text, (x, ty), cv2.FONT_HERSHEY_SIMPLEX, font, c, thick, cv2.LINE_AA)
        # Probability bar under the box: one segment per emotion, widest = most likely.
        bar_y, bar_h = min(out.shape[0] - 4 * thick, y + h + 4 * thick), 4 * thick
        left = x
        for i, p in enumerate(expr.probs):
            right = left + int(round(p * w))
            cv2.rectangle(out, (left, bar_y), (right, bar_y + bar_h), _PALETTE[i % 8], -1)
            left = right
    if fps is not None:
        cv2.putText(out, f"{fps:.0f} FPS", (8, 20 * thick), cv2.FONT_HERSHEY_SIMPLEX, font,
                    (255, 255, 255), thick, cv2.LINE_AA)
    if caption:
        _draw_caption(out, caption, font, thick)
    return out


def _draw_caption(out: np.ndarray, text: str, font: float, thick: int) -> None:
    """White text on a dark band at the bottom, wrapped to the frame width (ASCII only:
    OpenCV's Hershey fonts have no emoji)."""
    text = text.encode("ascii", "ignore").decode().strip()
    face, (h, w) = cv2.FONT_HERSHEY_SIMPLEX, out.shape[:2]
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and cv2.getTextSize(trial, face, font, thick)[0][0] > w - 16:
            lines.append(line)
            trial = word
        line = trial
    lines = (lines + [line])[-2:] if line else lines[-2:]
    step = int(cv2.getTextSize("Ag", face, font, thick)[0][1] * 1.8)
    top = h - step * len(lines) - 8
    band = out[max(0, top - 4):h]
    band[:] = (band * 0.35).astype(np.uint8)
    for i, row in enumerate(lines):
        cv2.putText(out, row, (8, top + step * (i + 1) - step // 4), face, font,
                    (255, 255, 255), thick, cv2.LINE_AA)
