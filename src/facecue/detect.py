"""Face detectors behind one small interface: ``detector(gray) -> list[Detection]``.

The default is OpenCV's Haar cascade that ships in the OpenCV (< 5) wheel. Keypoint training
crops are cut from this detector's boxes too, so its box framing is part of the model contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class Detection:
    box: tuple[int, int, int, int]  # x, y, w, h in image pixels
    score: float


class HaarDetector:
    """OpenCV Haar cascade (``haarcascade_frontalface_alt2``) on a downscaled grayscale image."""

    def __init__(self, cascade: str = "haarcascade_frontalface_alt2.xml", max_side: int = 640,
                 min_face: int = 24, scale_factor: float = 1.1, min_neighbors: int = 4):
        data = getattr(cv2, "data", None)
        path = Path(data.haarcascades if data else "") / cascade
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise RuntimeError(
                f"OpenCV Haar cascade {cascade} not found at {path}: install "
                "'opencv-python-headless<5' (OpenCV 5 wheels ship no Haar cascades)"
            )
        self.max_side = max_side
        self.min_face = min_face
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def __call__(self, gray: np.ndarray) -> list[Detection]:
        h, w = gray.shape[:2]
        s = min(1.0, self.max_side / max(h, w))
        small = cv2.resize(gray, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) \
            if s < 1.0 else gray
        small = cv2.equalizeHist(small)
        boxes, _, weights = self.cascade.detectMultiScale3(
            small, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_face, self.min_face), outputRejectLevels=True,
        )
        out = []
        for (x, y, bw, bh), wgt in zip(np.asarray(boxes).reshape(-1, 4),
                                       np.asarray(weights).reshape(-1), strict=True):
            box = tuple(int(round(v / s)) for v in (x, y, bw, bh))
            out.append(Detection(box=box, score=float(wgt)))
        return sorted(out, key=lambda d: -d.box[2] * d.box[3])
