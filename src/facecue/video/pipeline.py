"""The face pipeline: detect/track faces, crop, run both models batched, smooth over time.

A :class:`Pipeline` holds what is loaded once (models, detector, settings) and no per-stream
state, so one pipeline serves any number of images and streams. ``Pipeline.analyze`` handles
one still image; ``Pipeline.stream`` opens a :class:`FaceStream` over a source, which owns
that stream's tracker and smoothing and counts what it did in its :class:`StreamStats`.

Each frame goes through two stages: the first decodes it, converts it to gray, tracks the
faces (running the detector when due) and cuts every face's crops; the second runs each
model once on all the frame's crops together and smooths the results. With ``workers=2``
(the default where the process may use two or more cores) the first stage runs in a reader
thread up to :data:`AHEAD` frames ahead of the second, which runs in the thread iterating
the stream: OpenCV and onnxruntime release the GIL, so decoding and detection overlap the
models. The results are the same as with ``workers=1`` (one thread), in frame order.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facecue.interrupts import uninterrupted
from facecue.labels import DEFAULT_LABELS
from facecue.results import Expression, Face, FrameResult
from facecue.video.smooth import TrackSmoother
from facecue.video.sources import Frame, FrameSource, SourceError, open_source, read_image
from facecue.video.track import FaceTracker
from facecue.vision.crop import EXPRESSION_CROP, KEYPOINTS_CROP, Crop, crop_face, to_gray, to_uint8
from facecue.vision.detect import (
    DEFAULT_DETECTOR,
    Detection,
    Detector,
    detect_still,
    make_detector,
)
from facecue.vision.runtime import ExpressionModel, KeypointModel

log = logging.getLogger(__name__)

Source = int | str | Path | FrameSource | Iterable[np.ndarray]

AHEAD = 4  # frames the reader thread may have ready before the models take them (files)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS says, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_workers() -> int:
    """2 (decode and detection overlapped with the models) on two or more cores, else 1."""
    return 2 if usable_cores() >= 2 else 1


def check_workers(workers: int | None) -> int:
    """``workers`` checked (1 or 2), or :func:`default_workers` for None."""
    if workers is None:
        return default_workers()
    if isinstance(workers, bool) or workers not in (1, 2):
        raise ValueError(f"workers must be 1 (one thread) or 2 (decoding and detection in a "
                         f"second thread, overlapped with the models), not {workers!r}")
    return int(workers)


@contextmanager
def _timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    seconds[stage] += time.perf_counter() - t0


@dataclass
class StreamStats:
    """What a stream has done so far; the stream updates it with every frame it gives."""

    frames: int = 0
    skipped: int = 0  # frames the source could not decode
    face_frames: int = 0  # frames with at least one face
    track_ids: set[int] = field(default_factory=set)
    detections: int = 0  # detector calls (full scans and near re-detections)
    ended_early: str | None = None  # why the source stopped before its end (cut short, lost)
    # per stage; with two workers also ``wait``: the models' thread waiting for frames
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the time the block takes to ``stage``."""
        with _timed(self.seconds, stage):
            yield

    def stage_ms(self) -> dict[str, float]:
        """Mean milliseconds per frame of each stage (decode included; ``detect`` is the
        detector's share of tracking, ``track`` the rest)."""
        seconds = dict(self.seconds)
        if "track" in seconds:  # tracking calls the detector now and then
            seconds["track"] -= seconds.get("detect", 0.0)
        return {k: 1000 * v / max(self.frames, 1) for k, v in seconds.items()}


@dataclass
class _Crops:
    """The crops of one frame's faces: (index of the box, keypoint crop) per face kept."""

    kept: list[tuple[int, Crop]] = field(default_factory=list)
    expression: list[np.ndarray] = field(default_factory=list)
    keypoints: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class _Seen:
    """A face as the first stage saw it (a track's state at that frame)."""

    id: int | None  # track ID; None for stills
    box: np.ndarray  # (4,) float32 x, y, w, h
    score: float
    tilt: float = 0.0  # degrees its crops are turned by (Detection.tilt)


@dataclass
class _Prepared:
    """One frame after the first stage, or the end of the source (``frame`` None), with
    what the stage counted."""

    frame: Frame | None
    seconds: dict[str, float]
    skipped: int
    seen: list[_Seen] = field(default_factory=list)
    crops: _Crops = field(default_factory=_Crops)
    alive: tuple[int, ...] = ()  # IDs of all the tracker's tracks after this frame
    detections: int | None = None  # the tracker's counts so far (None: stills)
    detect_time: float = 0.0
    ended_early: str | None = None


class _Serialized:
    """A detector one thread at a time: each stream of a pipeline may have its own reader
    thread, and OpenCV's cascade and MediaPipe keep state while they run."""

    def __init__(self, detector: Detector, lock: threading.Lock):
        self.detector, self._lock = detector, lock
        for name in ("detect_near", "detect_still"):  # only what the detector has
            fn = getattr(detector, name, None)
            if fn is not None:
                setattr(self, name, self._locked(fn))

    def _locked(self, fn):
        def call(*args, **kwargs):
            with self._lock:
                return fn(*args, **kwargs)
        return call

    def __call__(self, image: np.ndarray) -> list[Detection]:
        with self._lock:
            return self.detector(image)

    def __getattr__(self, name: str):
        """The detector's settings (e.g. ``new_face_score``), read through."""
        return getattr(self.__dict__["detector"], name)


class Pipeline:
    """Faces, keypoints and expressions for images and streams, with the shipped models.

    Models and detector default to the shipped ONNX files and BlazeFace; pass your own (or a
    detector's name, :func:`~facecue.vision.detect.make_detector`) to swap them.
    ``detect_every``, ``scan_every``, ``idle_scan_every`` and ``grace`` tune each stream's
    tracker (see :class:`~facecue.video.track.FaceTracker`);
    ``smooth=False`` reports raw per-frame values. ``workers``: threads per stream, 1 (all
    in the thread iterating it) or 2 (decoding, tracking, detection and crops in a reader
    thread, overlapped with the models); default 2 where the process may use two or more
    cores (:func:`default_workers`). Results are the same either way. ``precision`` picks the
    build of the shipped models loaded by default (``auto``, ``int8``, ``float32``:
    :func:`facecue.vision.runtime.resolve_precision`).
    """

    def __init__(self, expression: ExpressionModel | None = None,
                 keypoints: KeypointModel | None = None, detector: Detector | str | None = None,
                 labels: str = DEFAULT_LABELS, smooth: bool = True, detect_every: int = 5,
                 scan_every: int = 30, idle_scan_every: int = 5, grace: float = 1.0,
                 keypoint_filter: tuple[float, float] = (1.0, 0.05),
                 label_filter: tuple[float, float] = (0.25, 0.15),
                 workers: int | None = None, precision: str = "auto"):
        self.workers = check_workers(workers)
        self.expression = expression or ExpressionModel.load(labels, precision=precision)
        self.keypoints = keypoints or KeypointModel.load(precision=precision)
        self.detector = make_detector(detector or DEFAULT_DETECTOR) \
            if detector is None or isinstance(detector, str) else detector
        self.smooth = smooth
        self.tracker_args = dict(detect_every=detect_every, scan_every=scan_every,
                                 idle_scan_every=idle_scan_every, grace=grace)
        self.keypoint_filter, self.label_filter = keypoint_filter, label_filter
        self._detector_lock = threading.Lock()  # one detector run at a time, any stream

    def analyze(self, image: np.ndarray | str | Path) -> list[Face]:
        """All faces in one still image (path or array in any depth/channel layout)."""
        img = to_uint8(read_image(image) if isinstance(image, str | Path) else image)
        return self._still_faces(img, StreamStats())

    def stream(self, source: Source, workers: int | None = None) -> FaceStream:
        """A new stream over ``source`` (opened now): iterate it for (frame, result) pairs.
        ``workers`` overrides the pipeline's for this stream."""
        return FaceStream(self, source, workers)

    def _serialized_detector(self) -> _Serialized:
        lock = self.__dict__.setdefault("_detector_lock", threading.Lock())
        return _Serialized(self.detector, lock)

    def _detect_still(self, image: np.ndarray) -> list[Detection]:
        return detect_still(self._serialized_detector(), image)

    def _still_faces(self, image: np.ndarray, stats: StreamStats) -> list[Face]:
        """The faces of a uint8 image: detected in it as it is (colour for detectors that use
        it), cropped from its gray."""
        with stats.timed("detect"):
            dets = self._detect_still(image)
        seen = [_Seen(None, np.array(d.box, np.float32), d.score, d.tilt) for d in dets]
        found = self._run_models(self._crop(to_gray(image), seen, stats.seconds), stats.seconds)
        return [_still_face(dets[i].box, dets[i].score, points, probs, self.expression.labels)
                for i, points, probs in found]

    def _crop(self, gray: np.ndarray, faces: list[_Seen], seconds: dict[str, float]) -> _Crops:
        """Both crops of every face whose box is still (partly) inside the image."""
        crops = _Crops()
        with _timed(seconds, "crop"):
            for i, face in enumerate(faces):
                try:
                    kc = crop_face(gray, face.box, KEYPOINTS_CROP, face.tilt)
                    ec = crop_face(gray, face.box, EXPRESSION_CROP, face.tilt)
                except ValueError:  # box left the image entirely
                    continue
                crops.kept.append((i, kc))
                crops.expression.append(ec.image)
                crops.keypoints.append(kc.image)
        return crops

    def _run_models(self, crops: _Crops, seconds: dict[str, float]
                    ) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Each model once on all the crops together (one batch per model per frame)."""
        if not crops.kept:
            return []
        with _timed(seconds, "expression"):
            probs = self.expression.predict_proba(np.stack(crops.expression))
        with _timed(seconds, "keypoints"):
            points = self.keypoints.predict(np.stack(crops.keypoints))
        return [(i, kc.to_source(pts), p)
                for (i, kc), pts, p in zip(crops.kept, points, probs, strict=True)]


class FaceStream:
    """One pass of a :class:`Pipeline` over one source, with this stream's own tracker (stable
    face IDs) and smoothing. Iterate it once for (frame, result) pairs; :attr:`stats` counts
    what it has done so far. The source is closed when the frames end or at :meth:`close`.

    Stills (image files, folders) are analysed one by one: no IDs or smoothing across
    unrelated pictures. A source that fails mid-way (a camera unplugged: it raises
    :class:`~facecue.video.sources.SourceError` or ``OSError``) ends the stream there with a
    warning; :attr:`StreamStats.ended_early` says why.

    With two ``workers`` a reader thread decodes, tracks and crops up to :data:`AHEAD`
    frames ahead (so :attr:`tracker` may be ahead of the frame last given); it is started by
    the iteration and stopped and joined when the iteration ends, fails or is abandoned,
    and at :meth:`close`. An error in it is raised in the thread iterating the stream.
    """

    def __init__(self, pipeline: Pipeline, source: Source, workers: int | None = None):
        self.pipeline = pipeline
        self.workers = check_workers(getattr(pipeline, "workers", None)
                                     if workers is None else workers)
        self.source = open_source(source)
        self.tracker = FaceTracker(pipeline._serialized_detector(), **pipeline.tracker_args)
        self.smoother = TrackSmoother(pipeline.keypoint_filter, pipeline.label_filter)
        self.stats = StreamStats()
        self._reader: _Reader | None = None

    def __iter__(self) -> Iterator[tuple[Frame, FrameResult]]:
        prepared = self._prepared()
        reader = None
        try:
            if self.workers > 1:
                # A live source (camera, stream): one frame ahead, so frames waiting for
                # the models add no more than a frame of latency.
                ahead = 1 if getattr(self.source, "live", False) else AHEAD
                reader = self._reader = _Reader(prepared, ahead,
                                                f"facecue reader: {self.source.name}")
            items = iter(reader) if reader is not None else prepared
            while True:
                t0 = time.perf_counter()
                item = next(items, None)  # None: stopped by close() meanwhile
                if item is None:
                    return
                if reader is not None:
                    self.stats.seconds["wait"] += time.perf_counter() - t0
                self._count(item)
                if item.frame is None:
                    return
                yield item.frame, self._finish(item)
        finally:
            if reader is None:  # else the reader thread closes it
                prepared.close()
            self.close()

    def _prepared(self) -> Iterator[_Prepared]:
        """The first stage over the whole source: each frame prepared, then its end."""
        frames = iter(self.source)
        decoded = 0
        try:
            while True:
                seconds: dict[str, float] = defaultdict(float)
                with _timed(seconds, "decode"):
                    frame = self._next(frames, decoded)
                if frame is None:
                    yield _Prepared(None, seconds, self.source.skipped,
                                    ended_early=self.source.ended_early)
                    return
                decoded += 1
                yield self._prepare(frame, seconds)
        finally:
            if hasattr(frames, "close"):  # the source's own generator, in this thread
                frames.close()

    def _next(self, frames: Iterator[Frame], decoded: int = 0) -> Frame | None:
        """The source's next frame, or None at its end or when it fails."""
        try:
            return next(frames, None)
        except (SourceError, OSError) as e:
            at = decoded + self.source.skipped
            self.source.ended_early = f"failed at frame {at}: {e}"
            log.warning("%s: %s; the stream ends here", self.source.name,
                        self.source.ended_early)
            return None

    def _prepare(self, frame: Frame, seconds: dict[str, float]) -> _Prepared:
        """The first stage of one frame: gray, faces (tracked, or detected in a still), crops."""
        with _timed(seconds, "convert"):
            image = to_uint8(frame.image)
            gray = to_gray(image)
        if self.source.independent:
            with _timed(seconds, "detect"):
                dets = self.pipeline._detect_still(image)
            seen = [_Seen(None, np.array(d.box, np.float32), d.score, d.tilt) for d in dets]
            return _Prepared(frame, seconds, self.source.skipped, seen,
                             self.pipeline._crop(gray, seen, seconds))
        with _timed(seconds, "track"):
            tracks = self.tracker.update(gray, frame.time, image)
        seen = [_Seen(tr.id, tr.box.copy(), tr.score, tr.tilt) for tr in tracks]
        return _Prepared(frame, seconds, self.source.skipped, seen,
                         self.pipeline._crop(gray, seen, seconds),
                         alive=tuple(tr.id for tr in self.tracker.tracks),
                         detections=self.tracker.detections,
                         detect_time=self.tracker.detect_time)

    def _count(self, item: _Prepared) -> None:
        """Take what the first stage counted for ``item`` into :attr:`stats`."""
        stats = self.stats
        stats.skipped = item.skipped
        for stage, s in item.seconds.items():
            stats.seconds[stage] += s
        if item.detections is not None:
            stats.detections = item.detections
            stats.seconds["detect"] = item.detect_time
        if item.frame is None:
            stats.ended_early = item.ended_early

    def _finish(self, item: _Prepared) -> FrameResult:
        """The second stage of one frame: both models on all its faces, then smoothing."""
        found = self.pipeline._run_models(item.crops, self.stats.seconds)
        if self.source.independent:
            labels = self.pipeline.expression.labels
            faces = [_still_face(item.seen[i].box, item.seen[i].score, points, probs, labels)
                     for i, points, probs in found]
            return self._result(item.frame, faces)
        with self.stats.timed("smooth"):
            faces = [self._face(item.seen[i], points, probs, item.frame.time)
                     for i, points, probs in found]
            self.smoother.keep(item.alive)
        return self._result(item.frame, faces)

    def close(self) -> None:
        """Stop and join the reader thread if there is one, then release the source (a
        camera, a file); safe to call more than once. A stop (Ctrl-C, SIGTERM through
        :mod:`facecue.interrupts`) meanwhile takes effect when both are done."""
        with uninterrupted():
            reader, self._reader = self._reader, None
            if reader is not None:
                if reader.alive:
                    self.source.interrupt()  # a live source reconnecting gives up now
                reader.close()
            self.source.close()

    def process(self, frame: Frame) -> FrameResult:
        """Track faces into one more frame of this stream and describe each one (in the
        calling thread: for driving a stream frame by frame instead of iterating it)."""
        item = self._prepare(frame, defaultdict(float))
        self._count(item)
        return self._finish(item)

    def _face(self, track: _Seen, points: np.ndarray, probs: np.ndarray, t: float) -> Face:
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


class _Reader:
    """Runs an iterator in a thread, up to ``ahead`` items ahead of the thread taking them;
    the iterator's end or error reaches the taker in order, after the items before it."""

    def __init__(self, items: Iterator, ahead: int, name: str):
        self._items = items
        self._queue: queue.Queue = queue.Queue(max(1, ahead))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put(("item", item)):
                    return
            self._put(("end", None))
        except BaseException as e:  # raised in the taker's thread instead
            self._put(("error", e))
        finally:
            try:
                close = getattr(self._items, "close", None)
                if close is not None:
                    close()
            except BaseException as e:  # a failing cleanup is the taker's to hear about
                self._put(("error", e))

    def _put(self, message: tuple) -> bool:
        """Queue ``message`` unless stopped meanwhile (False then)."""
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator:
        while not self._stop.is_set():
            try:
                kind, value = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():  # closed meanwhile (from another thread)
                    return
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError(f"{self._thread.name} ended without its items' end"
                                       ) from None
                continue
            if kind == "end":
                return
            if kind == "error":
                try:
                    raise value
                finally:
                    value = None  # no reference cycle through the traceback
            yield value

    def close(self) -> None:
        """Stop the thread and wait for it (it finishes the item it is on first)."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def _still_face(box, score: float, points: np.ndarray, probs: np.ndarray,
                labels: tuple[str, ...]) -> Face:
    raw = Expression.most_likely(labels, probs)
    return Face(box=_int_box(box), keypoints=points, expression=raw, detection_score=score,
                raw_keypoints=points, raw_expression=raw)


def _int_box(box) -> tuple[int, int, int, int]:
    return tuple(int(round(v)) for v in box)
