"""The face pipeline: detect/track faces, crop, run both models batched, smooth over time.

A :class:`Pipeline` holds what is loaded once (models, detector, settings) and no per-stream
state, so one pipeline serves any number of images and streams. ``Pipeline.analyze`` handles
one still image; ``Pipeline.stream`` opens a :class:`FaceStream` over a source, which owns
that stream's tracker and smoothing and counts what it did in its :class:`StreamStats`.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facecue.results import Expression, Face, FrameResult
from facecue.video.smooth import TrackSmoother
from facecue.video.sources import Frame, FrameSource, SourceError, open_source, read_image
from facecue.video.track import FaceTracker, Track
from facecue.vision.crop import EXPRESSION_CROP, KEYPOINTS_CROP, crop_face, to_gray
from facecue.vision.detect import Detector, HaarDetector, drop_nested
from facecue.vision.runtime import ExpressionModel, KeypointModel

log = logging.getLogger(__name__)

Source = int | str | Path | FrameSource | Iterable[np.ndarray]


@dataclass
class StreamStats:
    """What a stream has done so far; the stream updates it with every frame it gives."""

    frames: int = 0
    skipped: int = 0  # frames the source could not decode
    face_frames: int = 0  # frames with at least one face
    track_ids: set[int] = field(default_factory=set)
    detections: int = 0  # detector calls (full scans and near re-detections)
    ended_early: str | None = None  # why the source stopped before its end (cut short, lost)
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # per stage

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the time the block takes to ``stage``."""
        t0 = time.perf_counter()
        yield
        self.seconds[stage] += time.perf_counter() - t0

    def stage_ms(self) -> dict[str, float]:
        """Mean milliseconds per frame of each stage (decode included; ``detect`` is the
        detector's share of tracking, ``track`` the rest)."""
        seconds = dict(self.seconds)
        if "track" in seconds:  # tracking calls the detector now and then
            seconds["track"] -= seconds.get("detect", 0.0)
        return {k: 1000 * v / max(self.frames, 1) for k, v in seconds.items()}


class Pipeline:
    """Faces, keypoints and expressions for images and streams, with the shipped models.

    Models and detector default to the shipped ONNX files and the Haar detector; pass your
    own to swap them. ``detect_every``, ``scan_every``, ``idle_scan_every`` and ``grace``
    tune each stream's tracker (see :class:`~facecue.video.track.FaceTracker`);
    ``smooth=False`` reports raw per-frame values.
    """

    def __init__(self, expression: ExpressionModel | None = None,
                 keypoints: KeypointModel | None = None, detector: Detector | None = None,
                 labels: str = "fer7", smooth: bool = True, detect_every: int = 5,
                 scan_every: int = 30, idle_scan_every: int = 5, grace: float = 1.0,
                 keypoint_filter: tuple[float, float] = (1.0, 0.05),
                 label_filter: tuple[float, float] = (0.25, 0.15)):
        self.expression = expression or ExpressionModel.load(labels)
        self.keypoints = keypoints or KeypointModel.load()
        self.detector = detector or HaarDetector()
        self.smooth = smooth
        self.tracker_args = dict(detect_every=detect_every, scan_every=scan_every,
                                 idle_scan_every=idle_scan_every, grace=grace)
        self.keypoint_filter, self.label_filter = keypoint_filter, label_filter

    def analyze(self, image: np.ndarray | str | Path) -> list[Face]:
        """All faces in one still image (path or array in any depth/channel layout)."""
        img = read_image(image) if isinstance(image, str | Path) else image
        return self._still_faces(to_gray(img), StreamStats())

    def stream(self, source: Source) -> FaceStream:
        """A new stream over ``source`` (opened now): iterate it for (frame, result) pairs."""
        return FaceStream(self, source)

    def _still_faces(self, gray: np.ndarray, stats: StreamStats) -> list[Face]:
        with stats.timed("detect"):
            dets = drop_nested(getattr(self.detector, "detect_still", self.detector)(gray))
        found = self._describe(gray, [np.array(d.box, np.float32) for d in dets], stats)
        labels = self.expression.labels
        faces = []
        for i, points, probs in found:
            raw = Expression.most_likely(labels, probs)
            faces.append(Face(box=_int_box(dets[i].box), keypoints=points, expression=raw,
                              detection_score=dets[i].score, raw_keypoints=points,
                              raw_expression=raw))
        return faces

    def _describe(self, gray: np.ndarray, boxes: list[np.ndarray], stats: StreamStats
                  ) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Crop every face, run both models once on the whole batch: (index of the box,
        keypoints in image pixels, probabilities) per box still inside the image."""
        with stats.timed("crop"):
            kept, ecrops, kcrops = [], [], []
            for i, box in enumerate(boxes):
                try:
                    kc = crop_face(gray, box, KEYPOINTS_CROP)
                    ec = crop_face(gray, box, EXPRESSION_CROP)
                except ValueError:  # box left the image entirely
                    continue
                kept.append((i, kc))
                ecrops.append(ec.image)
                kcrops.append(kc.image)
        if not kept:
            return []
        with stats.timed("expression"):
            probs = self.expression.predict_proba(np.stack(ecrops))
        with stats.timed("keypoints"):
            points = self.keypoints.predict(np.stack(kcrops))
        return [(i, kc.to_source(pts), p)
                for (i, kc), pts, p in zip(kept, points, probs, strict=True)]


class FaceStream:
    """One pass of a :class:`Pipeline` over one source, with this stream's own tracker (stable
    face IDs) and smoothing. Iterate it once for (frame, result) pairs; :attr:`stats` counts
    what it has done so far. The source is closed when the frames end or at :meth:`close`.

    Stills (image files, folders) are analysed one by one: no IDs or smoothing across
    unrelated pictures. A source that fails mid-way (a camera unplugged: it raises
    :class:`~facecue.video.sources.SourceError` or ``OSError``) ends the stream there with a
    warning; :attr:`StreamStats.ended_early` says why.
    """

    def __init__(self, pipeline: Pipeline, source: Source):
        self.pipeline = pipeline
        self.source = open_source(source)
        self.tracker = FaceTracker(pipeline.detector, **pipeline.tracker_args)
        self.smoother = TrackSmoother(pipeline.keypoint_filter, pipeline.label_filter)
        self.stats = StreamStats()

    def __iter__(self) -> Iterator[tuple[Frame, FrameResult]]:
        try:
            frames = iter(self.source)
            while True:
                with self.stats.timed("decode"):
                    frame = self._next(frames)
                self.stats.skipped = self.source.skipped
                if frame is None:
                    self.stats.ended_early = self.source.ended_early
                    return
                if self.source.independent:
                    faces = self.pipeline._still_faces(to_gray(frame.image), self.stats)
                    yield frame, self._result(frame, faces)
                else:
                    yield frame, self.process(frame)
        finally:
            self.close()

    def _next(self, frames: Iterator[Frame]) -> Frame | None:
        """The source's next frame, or None at its end or when it fails."""
        try:
            return next(frames, None)
        except (SourceError, OSError) as e:
            at = self.stats.frames + self.source.skipped
            self.source.ended_early = f"failed at frame {at}: {e}"
            log.warning("%s: %s; the stream ends here", self.source.name,
                        self.source.ended_early)
            return None

    def close(self) -> None:
        """Release the source (a camera, a file); safe to call more than once."""
        self.source.close()

    def process(self, frame: Frame) -> FrameResult:
        """Track faces into one more frame of this stream and describe each one."""
        stats = self.stats
        with stats.timed("convert"):
            gray = to_gray(frame.image)
        with stats.timed("track"):
            tracks = self.tracker.update(gray, frame.time)
        stats.detections = self.tracker.detections
        stats.seconds["detect"] = self.tracker.detect_time
        found = self.pipeline._describe(gray, [tr.box for tr in tracks], stats)
        with stats.timed("smooth"):
            faces = [self._face(tracks[i], points, probs, frame.time)
                     for i, points, probs in found]
            self.smoother.keep(tr.id for tr in self.tracker.tracks)
        return self._result(frame, faces)

    def _face(self, track: Track, points: np.ndarray, probs: np.ndarray, t: float) -> Face:
        labels = self.pipeline.expression.labels
        raw = Expression.most_likely(labels, probs)
        smoothed_points, shown = points, raw
        if self.pipeline.smooth:
            smoothed_points, smooth_probs, index = self.smoother(track.id, points, probs, t)
            shown = Expression(labels=labels, probs=smooth_probs, label=labels[index])
        return Face(box=_int_box(track.box), keypoints=smoothed_points, expression=shown,
                    track_id=track.id, detection_score=track.score, raw_keypoints=points,
                    raw_expression=raw)

    def _result(self, frame: Frame, faces: list[Face]) -> FrameResult:
        self.stats.frames += 1
        self.stats.face_frames += bool(faces)
        self.stats.track_ids |= {f.track_id for f in faces if f.track_id is not None}
        h, w = frame.image.shape[:2]
        return FrameResult(index=frame.index, time=frame.time, width=w, height=h, faces=faces,
                           source=frame.source)


def _int_box(box) -> tuple[int, int, int, int]:
    return tuple(int(round(v)) for v in box)
