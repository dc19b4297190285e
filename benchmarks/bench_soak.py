"""Soak: a long stream of real frames through ``facecue.run`` with every sink (annotated video,
JSON Lines, summary, snapshots), with the process's resident memory as it goes.

The stream loops real clips: the built-in clip (a face that leaves and a new one that comes
back, so face IDs keep starting and ending), then three times a clip with no face (the face
models cost the most: a fair share of frames without them keeps the run short). Prints the memory
curve, then the growth after warm-up (the first fifth of the frames); ``--json`` prints one
JSON object instead (``tests/test_faults_run.py`` runs it so). Rerunnable::

    python benchmarks/bench_soak.py                         # 20,000 frames into a temp folder
    python benchmarks/bench_soak.py --frames 5000 --out DIR --json
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from facecue.api import run
from facecue.results import FrameResult
from facecue.video.pipeline import Pipeline
from facecue.video.sinks import Sink
from facecue.video.sources import DEMO_CLIP, ArraySource

NO_FACE = Path(__file__).resolve().parents[2] / "shared/media/videos/pyfeat_no_face.mp4"
SIZE = (160, 120)  # small frames: the face models cost the same, the rest less


def frames_of(path: Path) -> list[np.ndarray]:
    """A clip's frames at ``SIZE``."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (frame := cap.read()[1]) is not None:
        frames.append(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA))
    cap.release()
    if not frames:
        raise SystemExit(f"cannot read {path}")
    return frames


def rss_mb() -> float:
    """Resident memory of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class MemoryCurve(Sink):
    """Resident memory every ``every`` frames."""

    def __init__(self, every: int):
        self.every, self.curve = every, []

    def write(self, image: np.ndarray | None, result: FrameResult) -> None:
        if (result.index + 1) % self.every == 0:
            self.curve.append((result.index + 1, round(rss_mb(), 1)))


def soak(frames: int, out: Path, every: int) -> dict:
    loop = frames_of(DEMO_CLIP) + 3 * frames_of(NO_FACE)
    stream = (loop[i % len(loop)] for i in range(frames))
    cv2.setNumThreads(1)
    memory = MemoryCurve(every)
    start = time.perf_counter()
    report = run(ArraySource(stream, fps=15), out, pipeline=Pipeline(), snapshot_every=10.0,
                 sinks=[memory])
    curve = memory.curve
    warm = next(mb for n, mb in curve if n >= frames // 5)
    return {"frames": report.frames, "face_frames": report.face_frames,
            "face_ids": len(report.track_ids), "seconds": round(time.perf_counter() - start, 1),
            "rss_mb": curve, "warm_mb": warm, "growth": round(curve[-1][1] / warm - 1, 4),
            "files": [str(f) for f in report.files]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--every", type=int, default=250, help="frames between memory readings")
    ap.add_argument("--out", help="output folder (default: a temporary one)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = soak(args.frames, Path(args.out or tmp), args.every)
    if args.json:
        print(json.dumps(result))
        return
    for n, mb in result["rss_mb"]:
        print(f"{n:7d} frames  {mb:7.1f} MB")
    print(f"{result['frames']} frames ({result['face_frames']} with faces, "
          f"{result['face_ids']} face IDs) in {result['seconds']} s; resident memory after "
          f"warm-up {result['warm_mb']} MB -> {result['rss_mb'][-1][1]} MB "
          f"({100 * result['growth']:+.1f} %)")


if __name__ == "__main__":
    main()
