"""The face pipeline: detect/track faces, crop, run both models batched, smooth over time.

``Pipeline.analyze`` handles one still image; ``Pipeline.stream`` a source of frames, with
stable face IDs and smoothed keypoints and emotions. Per-stage times are kept in
``Pipeline.timings`` so benchmarks and the overlay can report them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from facecue.results import Expression, Face, FrameResult
from facecue.video.smooth import LabelSmoother, OneEuroFilter
from facecue.video.sources import Frame, FrameSource, open_source, read_image
from facecue.video.track import FaceTracker, Track
from facecue.vision.crop import EXPRESSION_CROP, KEYPOINTS_CROP, crop_face, to_gray
from facecue.vision.detect import Detector, HaarDetector, drop_nested
from facecue.vision.runtime import ExpressionModel, KeypointModel


class Pipeline:
    """Faces, keypoints and expressions for images and streams, with the shipped models.

    Models and detector default to the shipped ONNX files and the Haar detector; pass your
    own to swap them. ``detect_every``, ``scan_every``, ``idle_scan_every`` and ``grace``
    tune the tracker (see :class:`~facecue.video.track.FaceTracker`); ``smooth=False`` reports raw
    per-frame values.
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
        self.source: FrameSource | None = None  # the source of the current stream
        self.reset()

    def reset(self) -> None:
        """Forget tracks, filters and timings: the next frame starts a new stream."""
        self.tracker = FaceTracker(self.detector, **self.tracker_args)
        self._filters: dict[int, tuple[OneEuroFilter, LabelSmoother]] = {}
        self.timings: dict[str, float] = defaultdict(float)  # stage -> seconds, summed

    def stage_ms(self, frames: int) -> dict[str, float]:
        """Mean milliseconds per frame of each stage since :meth:`reset` (decode included
        when streaming; ``detect`` is the detector's share of tracking)."""
        det = self.tracker.detect_time
        stages = dict(self.timings, detect=det, track=self.timings["track"] - det)
        return {k: 1000 * v / max(frames, 1) for k, v in stages.items()}

    @contextmanager
    def _timed(self, stage: str):
        t0 = time.perf_counter()
        yield
        self.timings[stage] += time.perf_counter() - t0

    def analyze(self, image: np.ndarray | str | Path) -> list[Face]:
        """All faces in one still image (path or array in any depth/channel layout)."""
        img = read_image(image) if isinstance(image, str | Path) else image
        gray = to_gray(img)
        dets = drop_nested(self.detector(gray))
        boxes = [np.array(d.box, np.float32) for d in dets]
        return self._faces(gray, boxes, [d.score for d in dets], [None] * len(dets))

    def process(self, frame: Frame) -> FrameResult:
        """Track faces into one more frame of a stream and describe each one."""
        with self._timed("convert"):
            gray = to_gray(frame.image)
        with self._timed("track"):
            tracks = self.tracker.update(gray, frame.time)
        faces = self._faces(gray, [tr.box for tr in tracks], [tr.score for tr in tracks],
                            tracks, frame.time)
        alive = {tr.id for tr in self.tracker.tracks}
        self._filters = {k: v for k, v in self._filters.items() if k in alive}
        h, w = gray.shape[:2]
        return FrameResult(frame.index, frame.time, w, h, faces)

    def stream(self, source: int | str | Path | FrameSource | Iterable[np.ndarray]
               ) -> Iterator[tuple[Frame, FrameResult]]:
        """Frames of ``source`` with their results; the source is closed at the end.

        Stills (image files, folders) are analysed one by one: no IDs or smoothing across
        unrelated pictures.
        """
        src = open_source(source)
        self.source = src
        self.reset()
        try:
            it = iter(src)
            while True:
                with self._timed("decode"):
                    frame = next(it, None)
                if frame is None:
                    return
                if src.independent:
                    h, w = frame.image.shape[:2]
                    yield frame, FrameResult(frame.index, frame.time, w, h,
                                             self.analyze(frame.image))
                else:
                    yield frame, self.process(frame)
        finally:
            src.close()

    def _faces(self, gray: np.ndarray, boxes: list[np.ndarray], scores: list[float],
               tracks: list[Track | None], t: float = 0.0) -> list[Face]:
        """Crop every face, run both models once on the whole batch, build the results."""
        with self._timed("crop"):
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
        with self._timed("expression"):
            probs = self.expression.predict_proba(np.stack(ecrops))
        with self._timed("keypoints"):
            points = self.keypoints.predict(np.stack(kcrops))
        with self._timed("smooth"):
            faces = [self._face(boxes[i], scores[i], tracks[i], kc.to_source(pts), p, t)
                     for (i, kc), pts, p in zip(kept, points, probs, strict=True)]
        return faces

    def _face(self, box: np.ndarray, score: float, track: Track | None, points: np.ndarray,
              probs: np.ndarray, t: float) -> Face:
        labels = self.expression.labels
        raw = Expression(labels, probs.astype(np.float32), labels[int(np.argmax(probs))])
        box_t = tuple(int(round(v)) for v in box)
        if track is None or not self.smooth:
            tid = None if track is None else track.id
            return Face(box_t, points, raw, tid, score, points, raw)
        if track.id not in self._filters:
            self._filters[track.id] = (OneEuroFilter(*self.keypoint_filter),
                                       LabelSmoother(*self.label_filter))
        kf, lf = self._filters[track.id]
        sp, idx = lf(probs, t)
        smooth = Expression(labels, sp, labels[idx])
        return Face(box_t, kf(points, t), smooth, track.id, score, points, raw)
