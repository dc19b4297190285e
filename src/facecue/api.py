"""The Python API: ``analyze`` one image, ``stream`` results from any source, ``run`` a source
into files and a window.

Loaded models are shared: every call without a ``pipeline`` uses one pipeline per label set,
loaded on first use (each stream still has its own tracking and smoothing).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from facecue import interrupts
from facecue.interrupts import uninterrupted
from facecue.labels import DEFAULT_LABELS
from facecue.results import Face, FrameResult
from facecue.video.annotate import FrameRate, annotate
from facecue.video.pipeline import Pipeline, Source
from facecue.video.sinks import (
    JsonlSink,
    Sink,
    SnapshotSink,
    SummarySink,
    VideoSink,
    WindowSink,
    close_all,
    has_display,
)
from facecue.video.sources import demo_source, image_files, open_source
from facecue.vision.detect import DEFAULT_DETECTOR

Speech = Callable[[FrameResult], str | None]


def shared_pipeline(labels: str, precision: str = "auto", detector: str = DEFAULT_DETECTOR
                    ) -> Pipeline:
    """The shipped models for ``labels`` in the build ``precision`` resolves to now (the
    environment may change between calls) with ``detector``, loaded once per combination and
    shared by every caller that passes no pipeline of its own (the API, the studio)."""
    from facecue.vision.runtime import resolve_precision

    return _pipeline(labels, resolve_precision(precision), detector)


@lru_cache(maxsize=4)
def _pipeline(labels: str, build: str, detector: str) -> Pipeline:
    return Pipeline(labels=labels, precision=build, detector=detector)


def analyze(image: np.ndarray | str | Path, labels: str = DEFAULT_LABELS,
            pipeline: Pipeline | None = None, *, precision: str = "auto",
            detector: str = DEFAULT_DETECTOR) -> list[Face]:
    """Faces in one image (path or array), each with box, 15 keypoints and emotion.
    ``precision``: the build of the shipped models (``auto``, ``int8``, ``float32``);
    ``detector``: the face detector by name (``blazeface``, ``blazeface-short``, ``haar``:
    :func:`facecue.vision.detect.make_detector`)."""
    return (pipeline or shared_pipeline(labels, precision, detector)).analyze(image)


@dataclass(frozen=True, kw_only=True)
class ImageFaces:
    """The faces of one image file, or why it could not be read."""

    path: Path
    faces: list[Face]
    error: str | None = None  # set when the file is missing or not an image


def analyze_files(paths: Iterable[str | Path], labels: str = DEFAULT_LABELS,
                  pipeline: Pipeline | None = None, *, precision: str = "auto",
                  detector: str = DEFAULT_DETECTOR) -> Iterator[ImageFaces]:
    """Faces of each image file in ``paths`` (a folder stands for its images, sorted), one
    by one; a file that cannot be read gives its error and the rest go on."""
    pipe = pipeline or shared_pipeline(labels, precision, detector)
    for path in image_files(paths):
        try:
            yield ImageFaces(path=path, faces=pipe.analyze(path))
        except (OSError, ValueError) as e:
            yield ImageFaces(path=path, faces=[], error=str(e))


def stream(source: Source = 0, labels: str = DEFAULT_LABELS,
           pipeline: Pipeline | None = None, *, precision: str = "auto",
           detector: str = DEFAULT_DETECTOR) -> Iterator[FrameResult]:
    """Results frame by frame from a webcam index, video, URL, image(s) or array frames."""
    for _, result in (pipeline or shared_pipeline(labels, precision, detector)
                      ).stream(source):
        yield result


@dataclass(frozen=True, kw_only=True)
class RunReport:
    """What :func:`run` did: frames processed and skipped, faces seen, speed, files written,
    and the precision each model ran in."""

    frames: int
    skipped: int  # frames (or image files) the source could not decode
    ended_early: str | None = None  # why the source stopped before its end (cut short, lost)
    face_frames: int  # frames with at least one face
    track_ids: tuple[int, ...]  # every face ID seen, in order
    seconds: float  # wall time of the run
    stage_ms: dict[str, float]  # mean milliseconds per frame of each pipeline stage
    files: tuple[Path, ...]  # files written (a folder for the snapshots)
    # each model's name -> its precision as run (e.g. "keypoints15": "int8",
    # "keypoints15.float32": "float32"; see facecue.vision.runtime.session_precision)
    models: dict[str, str] = field(default_factory=dict)
    workers: int = 1  # threads of the stream (facecue.video.pipeline.Pipeline's workers)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        """JSON-ready: the fields, ``fps``, paths as text."""
        return {"frames": self.frames, "skipped": self.skipped,
                "ended_early": self.ended_early, "face_frames": self.face_frames,
                "track_ids": list(self.track_ids), "seconds": round(self.seconds, 3),
                "fps": round(self.fps, 2),
                "stage_ms": {k: round(v, 3) for k, v in self.stage_ms.items()},
                "files": [str(f) for f in self.files], "models": dict(self.models),
                "workers": self.workers}


def run(source: Source, out: str | Path | None = None, *, jsonl: str | Path | None = None,
        window: bool = False, pipeline: Pipeline | None = None, labels: str = DEFAULT_LABELS,
        max_frames: int = 0, snapshot_every: float = 0.0, speech: Speech | None = None,
        sinks: Iterable[Sink] = (), precision: str = "auto",
        detector: str = DEFAULT_DETECTOR) -> RunReport:
    """Run the pipeline over ``source`` until it ends, the window is closed (``q``/Esc) or
    ``max_frames`` are done, and write what was asked:

    - ``out``: a folder with ``annotated.mp4``, ``faces.jsonl`` (one record per frame and
      face, :class:`facecue.video.sinks.JsonlSink`), ``summary.csv`` (one row per face ID)
      and ``snapshots/`` (a PNG when a new face appears, and every ``snapshot_every``
      seconds if set);
    - ``jsonl``: the JSON Lines somewhere else (``-`` is standard output);
    - ``window``: a live window (when the display fails the run goes on without it);
    - ``sinks``: any other :class:`~facecue.video.sinks.Sink`.

    ``speech`` (e.g. :class:`facecue.captions.live.SpeechFeed`) gives the caption drawn on
    each frame. Every output path is checked before the first frame is read. Files are
    complete and every sink is closed even on errors or Ctrl-C; a write that fails (a full
    disk) stops the run with an ``OSError`` naming the file, which is then not written. A
    source that stops early (a file cut short, a camera lost) ends the run there: the
    report's ``ended_early`` says why. ``precision`` picks the build of the shipped models
    and ``detector`` the face detector when no ``pipeline`` is given (as in :func:`analyze`).
    """
    pipe = pipeline or shared_pipeline(labels, precision, detector)
    src = open_source(source)  # fails before any output file is started
    try:
        targets = _sinks(out, jsonl, window, snapshot_every, src.fps, pipe.expression.labels)
    except BaseException:
        src.close()
        raise
    targets += sinks
    faces = pipe.stream(src)
    draw = any(s.wants_image for s in targets)
    rate = FrameRate()
    start = time.perf_counter()
    try:
        for frame, result in faces:
            caption = speech(result) if speech is not None else None
            image = annotate(frame.image, result, rate.fps, caption) if draw else None
            with uninterrupted():  # a stop waits until every output has this frame
                for sink in targets:
                    sink.write(image, result)
            interrupts.check()
            rate.tick()
            if any(s.stop_requested for s in targets) or faces.stats.frames == max_frames:
                break
    finally:
        faces.close()
        if speech is not None and hasattr(speech, "close"):
            speech.close()
        close_all(targets)
    stats = faces.stats
    return RunReport(frames=stats.frames, skipped=stats.skipped,
                     ended_early=stats.ended_early, face_frames=stats.face_frames,
                     track_ids=tuple(sorted(stats.track_ids)),
                     seconds=time.perf_counter() - start, stage_ms=stats.stage_ms(),
                     files=tuple(f for s in targets for f in s.files),
                     models=_precisions(pipe), workers=faces.workers)


def _precisions(pipe: Pipeline) -> dict[str, str]:
    """Name -> precision as run of the pipeline's models (``unknown`` for models of other
    kinds that do not say)."""
    models = (pipe.expression, pipe.keypoints)
    return {getattr(m, "name", type(m).__name__): getattr(m, "precision", "unknown")
            for m in models}


def _sinks(out: str | Path | None, jsonl: str | Path | None, window: bool,
           snapshot_every: float, fps: float, labels: tuple[str, ...]) -> list[Sink]:
    sinks: list[Sink] = [WindowSink()] if window else []
    if out is not None:
        out = Path(out)
        sinks += [VideoSink(out / "annotated.mp4", fps), SummarySink(out / "summary.csv", labels),
                  SnapshotSink(out / "snapshots", snapshot_every)]
        jsonl = jsonl or out / "faces.jsonl"
    if jsonl is not None:
        sinks.append(JsonlSink(jsonl))
    return sinks


def demo(out: str | Path = "facecue-demo", *, builtin: bool = False, max_frames: int = 300,
         pipeline: Pipeline | None = None, labels: str = DEFAULT_LABELS, precision: str = "auto",
         detector: str = DEFAULT_DETECTOR) -> RunReport:
    """The whole pipeline into ``out``: ``max_frames`` of the webcam, with a window where
    there is a display; with no webcam (or ``builtin``), all of the built-in clip."""
    source = demo_source(builtin)
    return run(source, out, window=source.live and has_display()[0], pipeline=pipeline,
               labels=labels, max_frames=max_frames if source.live else 0, precision=precision,
               detector=detector)
