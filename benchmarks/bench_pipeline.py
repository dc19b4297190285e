"""Pipeline benchmark: FPS with 1 and 2 pipeline threads, facecue vs the ``fer`` package's
pipeline, and smoothing behaviour.

Rerunnable; prints figures only (no pass/fail). Inputs: the two one-face clips, the stage clip
(small faces, cuts to the audience: up to two faces at once) and the five-face photo as a
sequence (a camera panning over it, 150 frames). For each, FPS of the pipeline alone (frames
decoded beforehand) and from the file (decoding included) with ``workers`` 1 (one thread) and
2 (decoding, tracking, detection and crops in a reader thread, overlapped with the models),
side by side, best of ``--repeat`` runs; and how many model runs each frame took (one per
model for all its faces). Needs the real media in ``../shared/media`` and the ``bench`` extra
for the fer side (see ``fer_peer.py``: fer's own Haar detection, crop and TFLite model, run
without TensorFlow)::

    python benchmarks/bench_pipeline.py                       # both builds of the shipped models
    python benchmarks/bench_pipeline.py --precision float32   # the float builds only
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

from facecue.cpu import cpu_name  # noqa: E402
from facecue.video.pipeline import Pipeline, StreamStats, usable_cores  # noqa: E402
from facecue.video.sources import Frame, FrameSource, pan  # noqa: E402
from facecue.vision.runtime import ExpressionModel, KeypointModel  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "media" / "videos"
CLIPS = ["pyfeat_single_face.mp4", "pyfeat_WolfgangLanger_Pexels.mp4",
         "fr_short_hamilton_clip.mp4"]
PHOTO = "pyfeat_multi_face.jpg"  # five people (Haar misses the one in sunglasses)
PHOTO_FRAMES, PHOTO_FPS = 150, 30.0
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


def load_pipeline(models: str | None, threads: int, precision: str | None) -> Pipeline:
    d = Path(models) if models else None
    kw = {"precision": precision} if precision else {}
    return Pipeline(ExpressionModel.load("fer7", d / "expression_fer7.onnx" if d else None,
                                         threads, **kw),
                    KeypointModel.load(d / "keypoints15.onnx" if d else None, threads, **kw))


class Counting:
    """An onnxruntime session that records the batch size of every run."""

    def __init__(self, session):
        self.session, self.runs = session, []

    def run(self, outputs, feeds):
        self.runs.append(len(next(iter(feeds.values()))))
        return self.session.run(outputs, feeds)

    def __getattr__(self, name):
        return getattr(self.session, name)


def batching_report(pipe: Pipeline, frames, times) -> None:
    """Model runs per frame with faces, and faces per run: one run per model per frame."""
    models = (pipe.expression, pipe.keypoints)
    saved = [m.session for m in models]
    counters = [Counting(s) for s in saved]
    for m, c in zip(models, counters, strict=True):
        m.session = c
    per_frame = []  # (faces, expression runs, keypoint runs) per frame with faces
    try:
        for _, result in pipe.stream(Decoded(frames, times)):
            runs = [c.runs for c in counters]
            if result.faces:
                per_frame.append((len(result.faces), len(runs[0]), len(runs[1])))
            for c in counters:
                c.runs = []
    finally:
        for m, s in zip(models, saved, strict=True):
            m.session = s
    if not per_frame:
        print("  model runs: no frame with faces")
        return
    faces, expr, kp = (np.array(v) for v in zip(*per_frame, strict=True))
    print(f"  model runs per frame with faces: expression {expr.mean():.2f}, keypoints "
          f"{kp.mean():.2f} (max {max(expr.max(), kp.max())}); faces per frame mean "
          f"{faces.mean():.2f}, max {faces.max()}, {(faces > 1).sum()} frames with several")


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


def run_facecue(pipe: Pipeline, frames, times, workers: int | None = None
                ) -> tuple[list, StreamStats]:
    """A new stream over the frames: its results and its stats."""
    faces = pipe.stream(Decoded(frames, times), workers)
    return [result for _, result in faces], faces.stats


def run_file(pipe: Pipeline, path: Path, workers: int) -> tuple[list, StreamStats]:
    """A new stream over the file itself, decoding included."""
    faces = pipe.stream(str(path), workers)
    return [result for _, result in faces], faces.stats


def best_of(repeat: int, workers: list[int], fn, *args) -> dict[int, tuple]:
    """``fn(*args, w)`` for each ``w`` in ``workers``, ``repeat`` rounds taking turns: per
    ``w`` the fastest round's (output, wall, cpu)."""
    best: dict[int, tuple] = {}
    for _ in range(repeat):
        for w in workers:
            out = timed(fn, *args, w)
            if w not in best or out[1] < best[w][1]:
                best[w] = out
    return best


FIRST = ("decode", "convert", "track", "crop")  # the reader thread's stages (track has detect)
SECOND = ("expression", "keypoints", "smooth")  # the models' thread


def threads_report(label: str, best: dict[int, tuple], n: int) -> None:
    """FPS per pipeline threads, what a frame cost in CPU time and the cores the run got (on
    a busy machine fewer than its threads), and the bound the one-thread stages set."""
    print(f"  {label}: " + "; ".join(
        f"{w} thread{'s' if w > 1 else ''} {n / wall:.1f} FPS ({1000 * cpu / n:.2f} ms CPU "
        f"a frame, {cpu / wall:.2f} cores used)" for w, (_, wall, cpu) in best.items())
        + (f"; 2 vs 1: {best[1][1] / best[2][1]:.2f}x" if 1 in best and 2 in best else ""))
    if 1 in best:
        seconds = best[1][0][1].seconds
        first, second = (sum(seconds.get(k, 0.0) for k in ks) * 1000 / n for ks in (FIRST,
                                                                                   SECOND))
        print(f"    one thread's stages: first (decode, track, detect, crop) {first:.2f} "
              f"ms/frame, second (models, smoothing) {second:.2f}: {1000 / (first + second):.1f}"
              f" FPS in turn, at most {1000 / max(first, second):.1f} FPS overlapped on two "
              f"free cores")


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
    ap.add_argument("--photo", default=str(SHARED.parent / "photos" / PHOTO),
                    help="photo run as a panned sequence ('' to leave it out)")
    ap.add_argument("--models", help="folder with expression_fer7.onnx and keypoints15.onnx "
                                     "(default: shipped models)")
    ap.add_argument("--precision", choices=["auto", "int8", "float32"], nargs="+",
                    default=["int8", "float32"],
                    help="shipped builds to run, side by side (default: int8 float32)")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads per model")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                    help="pipeline threads to compare (default 1 2)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds per figure (best is shown)")
    ap.add_argument("--no-fer", action="store_true")
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    pipes = {build: load_pipeline(args.models, args.threads, build)
             for build in (args.precision if not args.models else [None])}
    precisions = "; ".join(", ".join(f"{getattr(m, 'name', '?')} {getattr(m, 'precision', '?')}"
                                     for m in (p.expression, p.keypoints))
                           for p in pipes.values())
    print(f"CPU: {cpu_name()}, {usable_cores()} cores usable; models: "
          f"{args.models or 'shipped'} ({precisions}); onnxruntime and OpenCV threads "
          f"{args.threads}; pipeline threads compared: {args.workers}; best of {args.repeat}")
    fer = None
    if not args.no_fer:
        try:
            fer = FerPipeline(args.threads)
            print("fer side: fer 25.10.3's Haar detection, crop and TFLite model (fer_peer.py)")
        except (RuntimeError, ImportError, OSError) as e:
            print(f"fer side skipped: {e}")
    inputs = [(name, Path(args.media) / name) for name in args.clips]
    if args.photo:
        inputs.append((f"{Path(args.photo).name} panned", Path(args.photo)))
    for name, path in inputs:
        video = path.suffix.lower() not in {".jpg", ".jpeg", ".png"}
        if video:
            frames, times, dec_ms, fps = decode(path)
        else:
            image = cv2.imread(str(path))
            if image is None:
                raise SystemExit(f"cannot read {path}")
            frames, fps, dec_ms = pan(image, PHOTO_FRAMES), PHOTO_FPS, 0.0
            times = [i / fps for i in range(len(frames))]
        h, w = frames[0].shape[:2]
        n = len(frames)
        print(f"\n{name}: {n} frames {w}x{h} @ {fps:.2f} fps"
              + (f"; decode {dec_ms:.2f} ms/frame" if video else ""))
        bests = {}
        for build, each in pipes.items():
            if len(pipes) > 1:
                print(f" {build} build:")
            run_facecue(each, frames[:10], times[:10], 1)  # warm-up
            batching_report(each, frames, times)
            best = best_of(args.repeat, args.workers, run_facecue, each, frames, times)
            threads_report("pipeline alone (frames decoded beforehand)", best, n)
            if video:
                threads_report("from the file (decoding included)",
                               best_of(args.repeat, args.workers, run_file, each, path), n)
            (results, stats), wall, cpu = best[args.workers[0]]
            print(f"  facecue, {args.workers[0]} thread(s): {speed(n, wall, cpu)}; face found "
                  f"in {stats.face_frames / n:.1%} of frames, {len(stats.track_ids)} track "
                  f"ID(s), {stats.detections} detector calls")
            for w, ((_, stats), _, _) in best.items():
                print(f"    per stage ms/frame (wall), {w} thread(s): " + ", ".join(
                    f"{k} {v:.2f}" for k, v in stats.stage_ms().items() if k != "decode"))
            bests[build] = best
        best = next(iter(bests.values()))  # the first build's: against fer, smoothing
        (results, stats), wall, cpu = best[args.workers[0]]
        if fer is not None and video:
            fer_results, fer_wall, fer_cpu = timed(lambda imgs: [fer(i) for i in imgs], frames)
            fer_found = sum(bool(r) for r in fer_results) / n
            fastest = min(wall for _, wall, _ in best.values())
            print(f"  fer:     {speed(n, fer_wall, fer_cpu)}; face found in {fer_found:.1%} "
                  f"of frames; facecue is {fer_wall / fastest:.1f}x faster (wall, its fastest "
                  f"setting), {fer_cpu / cpu:.1f}x (CPU, {args.workers[0]} thread(s))")
        if name == CHANGE_CLIP:
            smoothing_report(results, times)


if __name__ == "__main__":
    main()
