"""One video of a batch: the unit of work, the same on a local process pool and on Ray.

:func:`process_video` runs the face pipeline (:func:`facecue.run` with sinks) over one video
and writes its outputs into a hidden partial folder beside the final one: ``faces.parquet``
(:mod:`facecue.batch.table`), ``summary.csv`` (per face ID, :class:`SummarySink`),
``timeline.png`` and, when asked, ``captions.vtt``/``.css``/``.srt``/``.json`` (the captions
code: speech fused with the same frames, not a second pass of the pipeline). ``video.json``,
the video's row of ``library.parquet``, is written last, and the folder is then renamed into
place in one step: a video's outputs are complete or absent, never half there. A video whose
folder is complete for the same settings and the same file is not done again, so a worker
retried after it died cannot write a video twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import time
import traceback
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from facecue.fileio import atomic_write_json, file_sha256
from facecue.labels import DEFAULT_LABELS
from facecue.results import FrameResult
from facecue.vision.detect import DEFAULT_DETECTOR

RECORD = "video.json"  # the video's library row, written last: its presence marks completion
PARTIAL = re.compile(r"\.(.+)\.partial-(\d+)-[0-9a-f]{8}")  # a folder being written


@dataclass(frozen=True)
class Settings:
    """What a batch does to every video; a video done with other settings is done again."""

    labels: str = DEFAULT_LABELS
    precision: str = "auto"
    detector: str = DEFAULT_DETECTOR
    captions: bool = False
    max_frames: int = 0  # frames per video; 0: all


@dataclass(frozen=True)
class Job:
    """A video to do and the name of its output folder (its file name and a hash of where
    it is, so two videos of the same name in different folders do not meet)."""

    video: str  # an absolute path (workers run elsewhere) or a URL
    name: str

    @classmethod
    def of(cls, video: str | Path) -> Job:
        video = str(video) if "://" in str(video) else os.path.abspath(video)
        stem = re.sub(r"[^\w.-]+", "_", Path(video.split("?")[0]).stem)[:60] or "video"
        return cls(video, f"{stem}-{hashlib.sha1(video.encode()).hexdigest()[:10]}")


def fingerprint(video: str) -> list[int] | None:
    """Size and modification time of a local file (a changed file is done again); None for a
    URL or a missing file."""
    try:
        st = os.stat(video)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def folder(out: Path, job: Job) -> Path:
    return Path(out) / "videos" / job.name


def completed(out: Path, job: Job, settings: Settings, retry_failed: bool = False
              ) -> dict | None:
    """The record of ``job`` if its outputs are complete for ``settings`` and the file is
    unchanged since (a failure counts as done unless ``retry_failed``), else None."""
    path = folder(out, job) / RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if (record.get("settings") != asdict(settings)
            or record.get("fingerprint") != fingerprint(job.video)
            or (retry_failed and record.get("status") == "failed")):
        return None
    if not all((path.parent / f).exists() for f in record.get("files", [])):
        return None
    return record


def remove_partial(out: Path) -> None:
    """Delete the partial folders of videos left by workers that died or were stopped (call
    when no worker of this output folder runs)."""
    videos = Path(out) / "videos"
    for path in videos.glob(".*.partial-*") if videos.is_dir() else ():
        if PARTIAL.fullmatch(path.name):
            shutil.rmtree(path, ignore_errors=True)


def model_hashes(settings: Settings) -> dict[str, str | None]:
    """sha256 of the model files the settings load here (the expression and keypoint
    builds this CPU runs, the detector's files), for the library's provenance columns."""
    from facecue.vision.runtime import model_file

    hashes: dict[str, str | None] = {
        "expression_sha256": file_sha256(model_file(f"expression_{settings.labels}", None,
                                                    settings.precision)),
        "keypoints_sha256": file_sha256(model_file("keypoints15", None, settings.precision)),
        "detector_sha256": None}
    if settings.detector.startswith("blazeface"):
        from facecue.vision.blazeface import VARIANTS, detector_path

        variants = ["short"] if settings.detector.endswith("short") else ["full", "short"]
        hashes["detector_sha256"] = ",".join(
            file_sha256(detector_path(VARIANTS[v].stem)) for v in variants)
    return hashes


class Worker:
    """What one worker process loads once and uses for every video it is given: the face
    pipeline (one thread, and OpenCV and FFmpeg held to one: the batch's parallelism is its
    processes), matplotlib and, for captions, Whisper (on the first video that has sound)."""

    def __init__(self, settings: Settings):
        import cv2

        from facecue import __version__
        from facecue.batch.timeline import load_matplotlib
        from facecue.video.pipeline import Pipeline
        from facecue.vision.runtime import shipped_build

        # one core per worker, decoding included: the batch's parallelism is its processes
        os.environ.setdefault("OPENCV_FFMPEG_THREADS", "1")
        cv2.setNumThreads(1)
        self.settings = settings
        self.pipeline = Pipeline(labels=settings.labels, precision=settings.precision,
                                 detector=settings.detector, workers=1)
        self.provenance = {"facecue_version": __version__, "labels": settings.labels,
                           "precision": shipped_build(settings.precision),
                           "detector": settings.detector, **model_hashes(settings)}
        self._transcriber = None
        load_matplotlib()  # with the models: no video pays for it

    @property
    def transcriber(self):
        if self._transcriber is None:
            from facecue.speech.transcribe import Transcriber

            self._transcriber = Transcriber(cpu_threads=1)
        return self._transcriber


@lru_cache(maxsize=2)
def worker_for(settings: Settings) -> Worker:
    """This process's worker for ``settings``, loaded on its first video."""
    return Worker(settings)


def process_video(job: Job, out: str | Path, settings: Settings,
                  worker: Worker | None = None) -> dict:
    """Do one video (unless its outputs are already complete) and return its library row.
    Any error of the video (a file that cannot be read, no frame decoded) is caught and
    recorded with ``status`` ``failed``; only the death of the process loses the video,
    whose runner then gives it to another worker."""
    out = Path(out)
    done = completed(out, job, settings)
    if done is not None:
        return {**done, "skipped": True}
    worker = worker or worker_for(settings)
    final = folder(out, job)
    partial = final.with_name(f".{job.name}.partial-{os.getpid()}-{secrets.token_hex(4)}")
    partial.mkdir(parents=True)
    start = time.perf_counter()
    try:
        record = _outputs(job, partial, settings, worker)
    except Exception as e:  # recorded with the video; the batch goes on
        shutil.rmtree(partial)
        partial.mkdir()
        record = {"status": "failed", "error": f"{type(e).__name__}: {e}",
                  "trace": traceback.format_exc(limit=-3)}
    return finish(out, job, settings, partial, {
        **record, "seconds": round(time.perf_counter() - start, 3), **worker.provenance})


def finish(out: Path, job: Job, settings: Settings, partial: Path | None, record: dict) -> dict:
    """Complete ``record`` (the library row) with defaults, write it last into ``partial``
    (a new one when None: a runner recording a video whose workers died) and move the
    folder into place; the row."""
    if partial is None:
        partial = folder(out, job).with_name(
            f".{job.name}.partial-{os.getpid()}-{secrets.token_hex(4)}")
        partial.mkdir(parents=True)
    record = {"video": job.video, "name": job.name, "status": "done", "error": None,
              "warning": None, "frames": 0, "faces": 0, "face_frames": 0, "tracks": 0,
              "duration": None, "dominant": [], "captions": None, "files": [], **record,
              "settings": asdict(settings), "fingerprint": fingerprint(job.video)}
    atomic_write_json(partial / RECORD, record)
    _into_place(partial, folder(out, job))
    return {**record, "skipped": False}


def _into_place(partial: Path, final: Path) -> None:
    """Rename the finished folder over the final one (an older, incomplete or outdated one
    is removed first: a rerun redoes it)."""
    if final.exists():
        old = final.with_name(f".{final.name}.partial-{os.getpid()}-{secrets.token_hex(4)}")
        os.replace(final, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(partial, final)


def _outputs(job: Job, partial: Path, settings: Settings, worker: Worker) -> dict:
    """Every output of one video in ``partial``; the record's counts."""
    from facecue.api import run
    from facecue.batch.table import ParquetSink
    from facecue.batch.timeline import plot_timeline
    from facecue.video.sinks import SummarySink
    from facecue.video.sources import open_source

    labels = worker.pipeline.expression.labels
    source = open_source(job.video)
    faces = ParquetSink(partial / "faces.parquet", labels, keep=settings.captions)
    summary = SummarySink(partial / "summary.csv", labels)
    report = run(source, pipeline=worker.pipeline, sinks=[faces, summary],
                 max_frames=settings.max_frames)
    if report.frames == 0:
        raise ValueError(f"no frame of {job.video} could be decoded"
                         + (f" ({report.ended_early})" if report.ended_early else ""))
    fps, length = source.fps, getattr(source, "length", 0)
    duration = length / fps if length and fps and not settings.max_frames else (
        faces.rows.last_time + (1 / fps if fps else 0.0))
    files = ["faces.parquet", "summary.csv", "timeline.png"]
    plot_timeline(faces.rows.data, partial / "timeline.png", labels, job.video, duration)
    warning = report.ended_early
    captions = None
    if settings.captions:
        captions, files, warning = _captions(job, partial, faces.rows.results, worker, files,
                                             warning)
    return {"warning": warning, "frames": report.frames, "faces": faces.rows.count,
            "face_frames": report.face_frames, "tracks": len(report.track_ids),
            "duration": round(duration, 3), "dominant": _dominant(summary),
            "captions": captions, "files": files}


def _captions(job: Job, partial: Path, results: list[FrameResult], worker: Worker,
              files: list[str], warning: str | None) -> tuple[int | None, list[str], str | None]:
    """The captions of one video in every format, as :func:`facecue.captions.media.caption_file`
    makes them (its steps, with the frames already analysed instead of a second pass of the
    face pipeline: the tests hold the two equal); no audio track is a warning, not a failure."""
    from facecue.captions.cues import render_captions, save_captions
    from facecue.captions.fusion import fuse, with_baseline
    from facecue.speech.audio import probe

    if not probe(job.video).has_audio:
        note = "no audio track: no captions"
        return None, files, f"{warning}; {note}" if warning else note
    items = with_baseline(list(fuse(results, worker.transcriber.utterances(job.video))))
    for fmt in ("vtt", "srt", "json"):
        written = save_captions(partial / f"captions.{fmt}", render_captions(items, fmt), fmt)
        files = files + [p.name for p in written]
    return len(items), files, warning


def _dominant(summary) -> list[dict]:
    """Per face ID: its most frequent shown emotion and its frames (from ``summary.csv``'s
    rows)."""
    return [{"track_id": int(r["track_id"]), "emotion": r["dominant"], "frames": r["frames"]}
            for r in summary.rows()]
