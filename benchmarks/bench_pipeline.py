"""Pipeline benchmark: facecue vs the ``fer`` package's pipeline, and smoothing behaviour.

Rerunnable; prints figures only (no pass/fail). Needs the real clips in ``../shared/media``
and the ``bench`` extra for the fer side (see ``fer_peer.py``: fer's own Haar detection, crop
and TFLite model, run without TensorFlow)::

    python benchmarks/bench_pipeline.py                       # shipped models
    python benchmarks/bench_pipeline.py --models DIR          # other model files
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from fer_peer import FerPipeline  # noqa: E402

from facecue.video.pipeline import Pipeline, StreamStats  # noqa: E402
from facecue.video.sources import Frame, FrameSource  # noqa: E402
from facecue.vision.runtime import ExpressionModel, KeypointModel  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "media" / "videos"
CLIPS = ["pyfeat_single_face.mp4", "pyfeat_WolfgangLanger_Pexels.mp4"]
# WolfgangLanger (looked at frame by frame): crying 0-9 s, a smile starts ~9.5 s, laughing
# from ~11 s to the end. Steady stretches for flicker; the change is looked for in between.
CHANGE_CLIP, CHANGE_WINDOW = "pyfeat_WolfgangLanger_Pexels.mp4", (8.0, 13.0)
STEADY = {"crying": (0.0, 9.0), "laughing": (13.0, float("inf"))}


def decode(path: Path) -> tuple[list[np.ndarray], list[float], float, float]:
    """All frames of a clip, their times, decode ms per frame and the clip's fps."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SystemExit(f"cannot open {path}")
    frames, times = [], []
    t0 = time.perf_counter()
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
        times.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
    ms = 1000 * (time.perf_counter() - t0) / max(len(frames), 1)
    return frames, times, ms, cap.get(cv2.CAP_PROP_FPS)


def load_pipeline(models: str | None, threads: int) -> Pipeline:
    d = Path(models) if models else None
    return Pipeline(ExpressionModel.load("fer7", d / "expression_fer7.onnx" if d else None,
                                         threads),
                    KeypointModel.load(d / "keypoints15.onnx" if d else None, threads))


def timed(fn, *args) -> tuple[object, float, float]:
    """``fn(*args)``, its wall time and its CPU time (what it costs on an idle core: the
    machine may be shared, and with one thread per library CPU time is the work done)."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - w0, time.process_time() - c0


class Decoded(FrameSource):
    """Frames decoded beforehand, with their real times: the stream times the pipeline alone."""

    def __init__(self, frames: list[np.ndarray], times: list[float]):
        super().__init__()
        self.frames, self.times = frames, times

    def __iter__(self):
        for i, (img, t) in enumerate(zip(self.frames, self.times, strict=True)):
            yield Frame(i, t, img)


def run_facecue(pipe: Pipeline, frames, times) -> tuple[list, StreamStats]:
    """A new stream over the frames: its results and its stats."""
    faces = pipe.stream(Decoded(frames, times))
    return [result for _, result in faces], faces.stats


def speed(n: int, wall: float, cpu: float) -> str:
    return (f"{n / wall:.1f} FPS wall ({1000 * wall / n:.2f} ms/frame), "
            f"{n / cpu:.1f} FPS by CPU time ({1000 * cpu / n:.2f} ms/frame)")


def label_changes(labels: list[str]) -> int:
    return sum(a != b for a, b in zip(labels, labels[1:], strict=False))


def smoothing_report(results, times) -> None:
    """Label flicker on the steady stretches, raw vs smoothed, and lag after the real change."""
    t = np.array(times)
    faces = [(r.faces[0] if r.faces else None) for r in results]
    raw_all, shown_all, minutes = 0, 0, 0.0
    for name, (a, b) in STEADY.items():
        idx = [i for i in range(len(t)) if a <= t[i] < b and faces[i]]
        if len(idx) < 10:
            print(f"  {name}: too few face frames")
            continue
        raw = [faces[i].raw_expression.label for i in idx]
        shown = [faces[i].expression.label for i in idx]
        m = (t[idx[-1]] - t[idx[0]]) / 60.0
        r, s = label_changes(raw), label_changes(shown)
        raw_all, shown_all, minutes = raw_all + r, shown_all + s, minutes + m
        print(f"  steady {name} {t[idx[0]]:.1f}-{t[idx[-1]]:.1f} s: label changes/min raw "
              f"{r / m:.1f}, smoothed {s / m:.1f}; raw labels {dict(Counter(raw))}")
    if minutes:
        ratio = (f"{raw_all / shown_all:.1f}x" if shown_all else
                 "inf" if raw_all else "n/a (raw labels never change)")
        print(f"  steady stretches together: changes/min raw {raw_all / minutes:.1f}, smoothed "
              f"{shown_all / minutes:.1f}, ratio {ratio} (target >= 5x)")
    a, b = STEADY["laughing"]
    raw = [f.raw_expression.label for f, tt in zip(faces, t, strict=True) if f and a <= tt < b]
    if not raw:
        return
    target = Counter(raw).most_common(1)[0][0]
    # The change: the first moment in the window where most raw labels over the previous
    # 0.5 s are not the steady label and most over the next 0.5 s are; the lag is until the
    # shown label becomes it.
    lo, hi = CHANGE_WINDOW

    def share(a: float, b: float) -> float:
        labels = [f.raw_expression.label for f, tt in zip(faces, t, strict=True)
                  if f and a <= tt < b]
        return Counter(labels)[target] / len(labels) if labels else 0.0

    for i in range(len(t)):
        if lo <= t[i] <= hi and share(t[i] - 0.5, t[i]) <= 0.5 < share(t[i], t[i] + 0.5):
            follow = next((tt for f, tt in zip(faces, t, strict=True)
                           if tt >= t[i] and f and f.expression.label == target), None)
            if follow is None:
                print(f"  change to {target!r} at {t[i]:.2f} s: smoothed label never follows")
            else:
                print(f"  change to {target!r} at {t[i]:.2f} s (raw): smoothed label follows "
                      f"after {follow - t[i]:.2f} s (target <= 0.5 s)")
            return
    print(f"  no change to {target!r} in the raw labels between {lo} and {hi} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="*", default=CLIPS)
    ap.add_argument("--media", default=str(SHARED), help="folder with the clips")
    ap.add_argument("--models", help="folder with expression_fer7.onnx and keypoints15.onnx "
                                     "(default: shipped models)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-fer", action="store_true")
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    pipe = load_pipeline(args.models, args.threads)
    print(f"models: {args.models or 'shipped'}; threads {args.threads}")
    fer = None
    if not args.no_fer:
        try:
            fer = FerPipeline(args.threads)
            print("fer side: fer 25.10.3's Haar detection, crop and TFLite model (fer_peer.py)")
        except (RuntimeError, ImportError, OSError) as e:
            print(f"fer side skipped: {e}")
    for name in args.clips:
        frames, times, dec_ms, fps = decode(Path(args.media) / name)
        h, w = frames[0].shape[:2]
        print(f"\n{name}: {len(frames)} frames {w}x{h} @ {fps:.2f} fps; "
              f"decode {dec_ms:.2f} ms/frame (not included below)")
        n = len(frames)
        run_facecue(pipe, frames[:10], times[:10])  # warm-up
        (results, stats), wall, cpu = timed(run_facecue, pipe, frames, times)
        print(f"  facecue: {speed(n, wall, cpu)}; face found in {stats.face_frames / n:.1%} of "
              f"frames, {len(stats.track_ids)} track ID(s), {stats.detections} detector calls")
        print("    per stage ms/frame (wall): " + ", ".join(
            f"{k} {v:.2f}" for k, v in stats.stage_ms().items() if k != "decode"))
        if fer is not None:
            fer_results, fer_wall, fer_cpu = timed(lambda imgs: [fer(i) for i in imgs], frames)
            fer_found = sum(bool(r) for r in fer_results) / n
            print(f"  fer:     {speed(n, fer_wall, fer_cpu)}; face found in {fer_found:.1%} "
                  f"of frames; facecue is {fer_wall / wall:.1f}x faster (wall), "
                  f"{fer_cpu / cpu:.1f}x (CPU)")
        if name == CHANGE_CLIP:
            smoothing_report(results, times)


if __name__ == "__main__":
    main()
