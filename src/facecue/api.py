"""The Python API: ``analyze`` one image, ``stream`` results from any source, ``run`` to sinks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from facecue.results import Face, FrameResult
from facecue.video.annotate import annotate
from facecue.video.pipeline import Pipeline
from facecue.video.sinks import JsonlSink, Sink, SnapshotSink, SummarySink, VideoSink, WindowSink
from facecue.video.sources import FrameSource, open_source

Source = int | str | Path | FrameSource | Iterable[np.ndarray]


@lru_cache(maxsize=2)
def _default_pipeline(labels: str) -> Pipeline:
    return Pipeline(labels=labels)


def analyze(image: np.ndarray | str | Path, labels: str = "fer7",
            pipeline: Pipeline | None = None) -> list[Face]:
    """Faces in one image (path or array), each with box, 15 keypoints and emotion."""
    return (pipeline or _default_pipeline(labels)).analyze(image)


def stream(source: Source = 0, labels: str = "fer7",
           pipeline: Pipeline | None = None) -> Iterator[FrameResult]:
    """Results frame by frame from a webcam index, video, URL, image(s) or array frames."""
    pipe = pipeline or Pipeline(labels=labels)
    for _, result in pipe.stream(source):
        yield result


def run_to_folder(source: Source, out: str | Path | None = None, jsonl: str | Path | None = None,
                  window: bool = False, pipeline: Pipeline | None = None,
                  max_frames: int = 0, snapshot_every: float = 0.0,
                  speech: Callable[[FrameResult], str | None] | None = None
                  ) -> tuple[RunStats, list[Path]]:
    """Run with the usual outputs: ``out``/annotated.mp4, faces.jsonl (unless ``jsonl`` says
    elsewhere; ``-`` is stdout), summary.csv and snapshots/ (each new face, and every
    ``snapshot_every`` seconds if set), plus an optional window."""
    pipe = pipeline or Pipeline()
    src = open_source(source)  # fails before any output file is started
    sinks: list[Sink] = []
    if window:
        sinks.append(WindowSink())
    if out is not None:
        out = Path(out)
        sinks += [VideoSink(out / "annotated.mp4", src.fps),
                  SummarySink(out / "summary.csv", pipe.expression.labels),
                  SnapshotSink(out / "snapshots", snapshot_every)]
        jsonl = jsonl or out / "faces.jsonl"
    if jsonl is not None:
        sinks.append(JsonlSink(jsonl))
    stats = run(src, sinks, pipe, max_frames, speech)
    files = [s.path for s in sinks if isinstance(getattr(s, "path", None), Path)
             and s.path.exists()]
    return stats, files


@dataclass
class RunStats:
    """What a run did: frames processed and skipped, faces seen, speed per stage."""

    frames: int = 0
    skipped: int = 0
    face_frames: int = 0  # frames with at least one face
    ids: set[int] = field(default_factory=set)
    seconds: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)  # mean ms per frame

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def run(source: Source, sinks: list[Sink], pipeline: Pipeline | None = None,
        max_frames: int = 0, speech: Callable[[FrameResult], str | None] | None = None
        ) -> RunStats:
    """Run the pipeline over ``source`` into ``sinks`` until the end, a sink's stop or
    ``max_frames``; sinks are closed (files moved into place) even on errors or Ctrl-C.
    ``speech`` (e.g. :class:`facecue.captions.live.SpeechFeed`) gives the caption drawn on
    each frame."""
    pipe = pipeline or Pipeline()
    stats = RunStats()
    draw = any(s.wants_image for s in sinks)
    fps = None
    start = last = time.perf_counter()
    try:
        for frame, result in pipe.stream(source):
            caption = speech(result) if speech is not None else None
            image = annotate(frame.image, result, fps, caption) if draw else None
            for sink in sinks:
                sink.write(image, result)
            stats.frames += 1
            stats.face_frames += bool(result.faces)
            stats.ids |= {f.track_id for f in result.faces if f.track_id is not None}
            now = time.perf_counter()
            fps = 1.0 / max(now - last, 1e-6) if fps is None else \
                0.9 * fps + 0.1 / max(now - last, 1e-6)
            last = now
            if any(s.stop_requested for s in sinks) or stats.frames == max_frames:
                break
    finally:
        for sink in sinks:
            sink.close()
        if speech is not None and hasattr(speech, "close"):
            speech.close()
    stats.seconds = time.perf_counter() - start
    stats.skipped = pipe.source.skipped
    stats.stage_ms = pipe.stage_ms(stats.frames)
    return stats
