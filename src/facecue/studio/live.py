"""One live page's session: camera frames through a pipeline stream, microphone audio through
the live captioner, and the record of both for download.

The page sends binary messages (:func:`parse_message`): a frame (a JPEG, or raw RGBA pixels)
with its sequence number and capture time, or 16 kHz mono float32 audio with the time of its
first sample. Times are the page's clock in seconds from its start, so frames and speech
share one clock whatever the network adds, as :class:`~facecue.captions.live.LiveCaptioner`
needs. Frames go through :meth:`FaceStream.process <facecue.video.pipeline.FaceStream.process>`
(the same tracking, models and smoothing as ``facecue run``), one at a time in a worker
thread; each result goes back as JSON (:func:`faces_message`) and into ``faces.jsonl`` in the
session's folder, in ``facecue run``'s format.
"""

from __future__ import annotations

import re
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facecue.api import shared_pipeline
from facecue.captions.cues import make_cues, render_captions, to_vtt
from facecue.captions.live import CaptionLine, LiveCaptioner
from facecue.labels import DEFAULT_LABELS, LABEL_SETS
from facecue.results import FrameResult
from facecue.speech.audio import SAMPLE_RATE
from facecue.speech.transcribe import Transcriber
from facecue.video.sinks import jsonl_lines
from facecue.video.sources import Frame
from facecue.vision.runtime import ModelNotFoundError, check_shipped_expression

JPEG, RGBA, AUDIO = 1, 2, 3  # first byte of a binary message
FRAME_HEADER = struct.Struct("<BxHHxxId")  # kind, width, height, sequence, capture time (s)
AUDIO_HEADER = struct.Struct("<Bxxxd")  # kind, time of the first sample (s)
MAX_SIDE = 1920  # larger frames are refused: a camera frame, not a poster


class MessageError(ValueError):
    """A binary message the page should not have sent (its text says what was wrong)."""


@dataclass(frozen=True)
class FrameMessage:
    seq: int
    time: float
    image: np.ndarray  # BGR


@dataclass(frozen=True)
class AudioMessage:
    time: float
    samples: np.ndarray  # 16 kHz mono float32


def parse_message(data: bytes) -> FrameMessage | AudioMessage:
    """Decode one binary message from the page; :class:`MessageError` when it is malformed."""
    if not data:
        raise MessageError("empty message")
    kind = data[0]
    if kind == AUDIO:
        if len(data) < AUDIO_HEADER.size or (len(data) - AUDIO_HEADER.size) % 4:
            raise MessageError("audio message of a wrong length")
        _, t = AUDIO_HEADER.unpack_from(data)
        return AudioMessage(t, np.frombuffer(data, np.float32, offset=AUDIO_HEADER.size))
    if kind not in (JPEG, RGBA) or len(data) <= FRAME_HEADER.size:
        raise MessageError(f"unknown message kind {kind}")
    _, w, h, seq, t = FRAME_HEADER.unpack_from(data)
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise MessageError(f"frame of {w}x{h} pixels")
    payload = np.frombuffer(data, np.uint8, offset=FRAME_HEADER.size)
    if kind == JPEG:
        image = cv2.imdecode(payload, cv2.IMREAD_COLOR)
        if image is None or image.shape[:2] != (h, w):
            raise MessageError("a frame that is not a JPEG of its stated size")
    else:
        if payload.size != w * h * 4:
            raise MessageError(f"a raw frame of {payload.size} bytes, not {w}x{h}x4")
        image = cv2.cvtColor(payload.reshape(h, w, 4), cv2.COLOR_RGBA2BGR)
    return FrameMessage(seq, t, image)


def label_sets() -> list[dict]:
    """Every label set, and whether facecue ships a model for it (the page offers those)."""
    out = []
    for name in LABEL_SETS:
        try:
            check_shipped_expression(name)
            out.append({"name": name, "available": True})
        except ModelNotFoundError:
            out.append({"name": name, "available": False})
    return out


def faces_message(result: FrameResult, seq: int, smooth: bool) -> dict:
    """A frame's faces for the page's overlay: smoothed values, or the raw per-frame ones
    (the pipeline gives both) when the page turned smoothing off."""
    faces = []
    for face in result.faces:
        expr = face.expression if smooth else (face.raw_expression or face.expression)
        points = face.keypoints if smooth or face.raw_keypoints is None else face.raw_keypoints
        faces.append({"id": face.track_id, "box": list(face.box),
                      "score": round(face.detection_score, 3), "label": expr.label,
                      "prob": round(expr.score, 4),
                      "probs": [round(float(p), 4) for p in expr.probs],
                      "keypoints": np.round(points.astype(np.float64), 1).tolist()})
    labels = result.faces[0].expression.labels if result.faces else ()
    return {"type": "faces", "seq": seq, "time": round(result.time, 4), "labels": list(labels),
            "width": result.width, "height": result.height, "faces": faces}


def caption_message(line: CaptionLine, origin: float) -> dict:
    """A finished utterance for the page: its marked sentence, the classes its first cue
    gets in WebVTT (read from :func:`~facecue.captions.cues.to_vtt` itself: emotion,
    ``strong``, ...) and its time span on the page's clock (the session's, which
    starts at the page's ``origin``)."""
    item = line.item
    vtt = to_vtt(make_cues([item])[:1])  # recognised utterances always have words
    classes = re.search(r"<c\.([^>]+)>", vtt).group(1).split(".")
    return {"type": "caption", "text": line.sentence, "classes": classes,
            "emotion": item.emotion, "start": round(item.utterance.start + origin, 3),
            "end": round(item.utterance.end + origin, 3)}


class LiveSession:
    """What one live page has going: its face stream (restarted when it changes label set),
    its captioner, and ``faces.jsonl`` in its own folder."""

    def __init__(self, folder: Path, transcriber: Transcriber | None,
                 labels: str = DEFAULT_LABELS):
        self.folder = folder
        self.smooth = True
        self._lock = threading.Lock()  # frames and label changes, one at a time
        self._clock_lock = threading.Lock()  # audio must not wait for a frame's models
        self.labels = labels
        self.stream = shared_pipeline(labels).stream([])
        self.jsonl_path = folder / "faces.jsonl"
        self._jsonl = open(self.jsonl_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._index = 0
        self._origin: float | None = None  # the page's time of the first frame or audio
        self._last_time = -1.0
        self.captioner = LiveCaptioner(transcriber) if transcriber is not None else None
        self._audio_at = 0  # samples fed to the captioner (its clock: the session's)
        self._sent = 0  # caption lines already sent to the page

    def set_labels(self, labels: str) -> None:
        """Switch label set: a new stream (tracking starts over) with that set's models;
        ModelNotFoundError (nothing changes) when facecue ships no model for it."""
        if labels not in LABEL_SETS:
            raise ValueError(f"unknown label set {labels!r}")
        pipeline = shared_pipeline(labels)
        with self._lock:
            self.stream = pipeline.stream([])
            self.labels = labels

    def _clock(self, page_time: float) -> float:
        """The session's time (0 at the page's first frame or audio) of a page time."""
        with self._clock_lock:
            if self._origin is None:
                self._origin = page_time
            return page_time - self._origin

    def process(self, message: FrameMessage) -> dict:
        """One camera frame through the pipeline: the page's overlay message."""
        with self._lock:
            t = max(self._clock(message.time), self._last_time + 1e-3)  # time must advance
            self._last_time = t
            result = self.stream.process(Frame(self._index, t, message.image))
            self._index += 1
            self._jsonl.write(jsonl_lines(result))
        if self.captioner is not None:
            self.captioner.feed_frame(result)
        return faces_message(result, message.seq, self.smooth)

    def feed_audio(self, message: AudioMessage) -> None:
        """Microphone audio for the captioner, placed on the session's clock: a gap before
        it (the microphone started late, the page was paused) is fed as silence; audio that
        overlaps what was fed (a page clock running behind) is fed as it comes."""
        if self.captioner is None:
            return
        gap = int(round(self._clock(message.time) * SAMPLE_RATE)) - self._audio_at
        if gap > 0:
            self.captioner.feed_audio(np.zeros(gap, np.float32))
            self._audio_at += gap
        self.captioner.feed_audio(message.samples)
        self._audio_at += len(message.samples)

    def new_captions(self) -> list[dict]:
        """Caption lines finished since the last call (raises if recognition failed)."""
        if self.captioner is None:
            return []
        self.captioner.latest()  # raises what stopped the captioner's thread, if anything
        lines = self.captioner.lines[self._sent:]
        self._sent += len(lines)
        return [caption_message(line, self._origin or 0.0) for line in lines]

    def jsonl(self) -> Path:
        """``faces.jsonl`` so far, flushed for download."""
        with self._lock:
            self._jsonl.flush()
        return self.jsonl_path

    def vtt(self) -> str:
        """WebVTT of what was said so far (times from the session's start)."""
        lines = self.captioner.lines if self.captioner is not None else []
        return render_captions([line.item for line in lines], "vtt")

    def close(self) -> None:
        """Finish the captioner (it recognises what is still buffered: call it from a worker
        thread) and close the record; the folder is the caller's to remove."""
        try:
            if self.captioner is not None:
                self.captioner.close()
        finally:
            with self._lock:
                self._jsonl.close()
