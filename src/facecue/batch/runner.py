"""A library of videos through :func:`~facecue.batch.video.process_video`: on a local process
pool (every usable core by default) or as Ray tasks, on a local Ray instance or a cluster.

Either way each worker process loads the models once (:func:`~facecue.batch.video.worker_for`)
and is given one video at a time; no more videos are in flight than there are workers, so a
worker that dies costs only the videos it (and, on the local pool, its siblings) had at that
moment. Those are given out again up to ``retries`` times, then recorded as failed. Videos
already complete are not given out at all; ``library.parquet`` is written at the end from every
video's record. Ray is imported only here, and only with ``ray=...``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from facecue.batch.video import (
    Job,
    Settings,
    completed,
    finish,
    process_video,
    remove_partial,
)
from facecue.video.pipeline import usable_cores
from facecue.vision.runtime import check_shipped_expression

log = logging.getLogger(__name__)

RETRIES = 2  # more tries for a video whose worker died (a video's own errors are recorded)
LIBRARY_COLUMNS = ("video", "name", "status", "error", "warning", "frames", "faces",
                   "face_frames", "tracks", "duration", "seconds", "dominant", "captions",
                   "facecue_version", "labels", "precision", "detector", "expression_sha256",
                   "keypoints_sha256", "detector_sha256")


@dataclass(frozen=True, kw_only=True)
class BatchReport:
    """What a batch did: videos processed now, skipped as already complete, failed (of all
    in the library, now or before), frames processed now, wall time, where the library is."""

    videos: int
    processed: int
    skipped: int
    failed: int
    frames: int
    seconds: float
    library: Path
    engine: str  # "pool" or "ray"
    workers: int

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def run_batch(videos: list[str], out: str | Path, settings: Settings | None = None, *,
              workers: int | None = None, ray: str | None = None, retries: int = RETRIES,
              retry_failed: bool = False, progress: bool = True) -> BatchReport:
    """Process ``videos`` into ``out`` (``out/videos/NAME/`` per video, ``out/library.parquet``)
    and report. ``workers``: processes (default every usable core; with Ray, the CPUs of the
    local instance it starts). ``ray``: None for the local pool; ``"auto"`` for Ray at
    ``$RAY_ADDRESS`` if set, else a local instance started (and stopped) here; else a
    cluster's address. ``retry_failed``: do again the videos recorded as failed before.
    ``settings`` default to :class:`Settings` (fer7, BlazeFace, no captions, whole videos).
    One batch per ``out`` at a time: a batch starts by removing partial outputs."""
    out, settings = Path(out), settings or Settings()
    (out / "videos").mkdir(parents=True, exist_ok=True)
    remove_partial(out)
    jobs = [Job.of(v) for v in dict.fromkeys(videos)]
    todo = [j for j in jobs if completed(out, j, settings, retry_failed) is None]
    todo.sort(key=_size, reverse=True)  # the longest first: no long video left for the end
    start = time.perf_counter()
    engine = None
    if todo:  # nothing to do starts no worker and no Ray
        check_shipped_expression(settings.labels)  # a label set without a model: say so now
        engine = (_Pool(min(workers or usable_cores(), len(todo))) if ray is None
                  else _Ray(ray, workers))
    bar = Progress(len(jobs), len(jobs) - len(todo), enabled=progress)
    frames, finished = 0, False
    try:
        for record in engine.run(todo, out, settings, retries) if engine else ():
            frames += record["frames"] if not record.get("skipped") else 0
            bar.done(record)
        finished = True
    finally:
        if engine is not None:
            engine.close(stop=not finished)
        bar.close()
    remove_partial(out)  # what workers that died left
    records = [completed(out, j, settings) for j in jobs]
    library = write_library(out / "library.parquet", [r for r in records if r is not None])
    return BatchReport(videos=len(jobs), processed=bar.processed, skipped=len(jobs) - len(todo),
                       failed=sum(r is None or r["status"] == "failed" for r in records),
                       frames=frames, seconds=time.perf_counter() - start, library=library,
                       engine="pool" if ray is None else "ray",
                       workers=engine.workers if engine else 0)


def _size(job: Job) -> int:
    """A video's file size, for its share of the work (0 for a URL)."""
    try:
        return os.stat(job.video).st_size
    except OSError:
        return 0


def write_library(path: Path, records: list[dict]) -> Path:
    """``library.parquet``: one row per video, :data:`LIBRARY_COLUMNS`."""
    from facecue.batch.table import _arrow, write_parquet

    pa, _ = _arrow()
    dominant = pa.list_(pa.struct([("track_id", pa.int64()), ("emotion", pa.string()),
                                   ("frames", pa.int64())]))
    kinds = {"frames": pa.int64(), "faces": pa.int64(), "face_frames": pa.int64(),
             "tracks": pa.int64(), "duration": pa.float64(), "seconds": pa.float64(),
             "captions": pa.int64(), "dominant": dominant}
    schema = pa.schema([(c, kinds.get(c, pa.string())) for c in LIBRARY_COLUMNS])
    table = pa.Table.from_pylist([{c: r.get(c) for c in LIBRARY_COLUMNS} for r in records],
                                 schema=schema)
    return write_parquet(path, table)


def _failed(out: Path, job: Job, settings: Settings, error: str) -> dict:
    """Record a video whose workers kept dying (no worker is left to record it)."""
    from facecue import __version__

    return finish(out, job, settings, None, {"status": "failed", "error": error,
                                             "facecue_version": __version__})


class _Pool:
    """A local process pool (spawned: no model or thread state copied from this process)."""

    def __init__(self, workers: int):
        self.workers = workers
        self.executor: ProcessPoolExecutor | None = None

    def _start(self) -> ProcessPoolExecutor:
        self.executor = ProcessPoolExecutor(self.workers, multiprocessing.get_context("spawn"),
                                            initializer=_pool_init)
        return self.executor

    def run(self, todo: list[Job], out: Path, settings: Settings, retries: int
            ) -> Iterator[dict]:
        queue, tries = list(todo), dict.fromkeys(todo, 0)
        running: dict[Future, Job] = {}
        executor = self._start()
        while queue or running:
            while queue and len(running) < self.workers:
                job = queue.pop(0)
                running[executor.submit(process_video, job, out, settings)] = job
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for future in finished:
                job = running.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool:
                    broken = True
                    tries[job] += 1
                    if tries[job] > retries:
                        yield _failed(out, job, settings, f"its worker died {tries[job]} times")
                    else:
                        log.warning("a worker died on %s; trying it again", job.video)
                        queue.insert(0, job)
            if broken:  # every video in flight fails with it: start a new pool
                for future, job in running.items():
                    future.cancel()
                    queue.insert(0, job)
                running.clear()
                executor.shutdown(wait=True)
                executor = self._start()

    def close(self, stop: bool = False) -> None:
        """Let the workers go; with ``stop`` (an interrupted batch) end them now, without
        waiting for their videos (left partial, removed by the next batch)."""
        executor, self.executor = self.executor, None
        if executor is None:
            return
        if stop:  # the pool's own shutdown would wait for the videos in flight
            for process in list((executor._processes or {}).values()):
                process.terminate()
        executor.shutdown(wait=True, cancel_futures=True)


def _pool_init() -> None:
    """A pool worker: Ctrl-C is the batch's to handle (it stops the workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def import_ray():
    """Ray, or what to install."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("--ray needs Ray: pip install 'facecue[scale]'") from None
    return ray


def _ray_video(job: Job, out: str, settings: Settings) -> dict:
    """The Ray task: :func:`process_video` with this worker process's models."""
    return process_video(job, out, settings)


class _Ray:
    """Ray tasks (one CPU each; Ray retries a task whose worker died ``retries`` times)."""

    def __init__(self, address: str, workers: int | None):
        ray = self.ray = import_ray()
        self.started = False
        self.temp_dir = None
        self.running: dict = {}  # task -> its video, while in flight
        if not ray.is_initialized():
            term = signal.getsignal(signal.SIGTERM)  # ray.init sets its own
            address = os.environ.get("RAY_ADDRESS") if address == "auto" else address
            if address:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            else:  # a local instance of our own, its files in a folder of ours
                os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves here
                self.temp_dir = tempfile.mkdtemp(prefix="facecue-ray-")
                ray.init(num_cpus=workers or usable_cores(), include_dashboard=False,
                         _temp_dir=self.temp_dir, log_to_driver=False,
                         configure_logging=False)
            self.started = True
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, term)
        self.workers = int(ray.cluster_resources().get("CPU", 1))

    def run(self, todo: list[Job], out: Path, settings: Settings, retries: int
            ) -> Iterator[dict]:
        ray = self.ray
        task = ray.remote(num_cpus=1, max_retries=retries)(_ray_video)
        queue, running = list(todo), self.running
        while queue or running:
            while queue and len(running) < self.workers:
                job = queue.pop(0)
                running[task.remote(job, str(out.resolve()), settings)] = job
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)  # Ctrl-C gets in
            for ref in ready:
                job = running.pop(ref)
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as e:  # its workers died: retries used up
                    yield _failed(out, job, settings, f"{type(e).__name__}: {e}"[:2000])

    def close(self, stop: bool = False) -> None:
        """Cancel what is still in flight (``stop``: an interrupted batch), and stop the
        local instance if this batch started it."""
        ray = self.ray
        for ref in self.running if stop else ():
            ray.cancel(ref, force=True)
        if self.started:
            ray.shutdown()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


class Progress:
    """A progress line on standard error: videos done, frames per second, time left."""

    def __init__(self, total: int, skipped: int, enabled: bool = True,
                 clock: Callable[[], float] = time.perf_counter):
        self.total, self.skipped, self.enabled, self.clock = total, skipped, enabled, clock
        self.processed = self.failed = self.frames = 0
        self.start = clock()
        self.tty = sys.stderr.isatty()
        self._show()

    def done(self, record: dict) -> None:
        if record.get("skipped"):
            self.skipped += 1
        else:
            self.processed += 1
            self.frames += record["frames"]
            self.failed += record["status"] == "failed"
            if record["status"] == "failed":
                log.warning("%s failed: %s", record["video"], record["error"])
        self._show()

    def line(self) -> str:
        elapsed = self.clock() - self.start
        done = self.processed + self.skipped
        left = self.total - done
        eta = (timedelta(seconds=round(elapsed / self.processed * left)) if self.processed
               and left else "?" if left else timedelta(0))
        return (f"{done}/{self.total} videos ({self.skipped} already done, {self.failed} "
                f"failed), {self.frames / elapsed if elapsed > 0 else 0:.1f} frames/s, "
                f"ETA {eta}")

    def _show(self) -> None:
        if not self.enabled:
            return
        if self.tty:
            sys.stderr.write("\r\033[K" + self.line())
            sys.stderr.flush()
        else:
            log.info("%s", self.line())

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
