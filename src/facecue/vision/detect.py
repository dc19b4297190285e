"""Face detectors behind one small interface: ``detector(image) -> list[Detection]``, where
``image`` is a uint8 frame, gray or BGR (each detector takes what it needs from it).

The models were trained on crops cut from OpenCV's Haar boxes, so that box framing is part of
the model contract: every detector returns its boxes in it (BlazeFace maps its own boxes there,
:mod:`facecue.vision.blazeface`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from facecue.vision.crop import tilt_beyond, to_gray, to_rgb, to_uint8


@dataclass(frozen=True)
class Detection:
    box: tuple[int, int, int, int]  # x, y, w, h in image pixels, in the models' framing; may
    # reach past the image's edge for a face the edge cuts
    score: float
    # keypoints the detector gives with the box, in image pixels (BlazeFace: six, named by
    # facecue.vision.blazeface.LANDMARKS); None for detectors without
    landmarks: tuple[tuple[float, float], ...] | None = None

    @property
    def tilt(self) -> float:
        """Degrees to turn this face's crops by to make it upright enough for the models
        (:func:`facecue.vision.crop.tilt_beyond` of its eyes, the first two keypoints); 0
        without keypoints."""
        return tilt_beyond(self.landmarks[0], self.landmarks[1]) if self.landmarks else 0.0


class Detector(Protocol):
    """Anything that finds faces in a uint8 gray or BGR image, largest first."""

    def __call__(self, image: np.ndarray) -> list[Detection]: ...


DETECTORS = ("blazeface", "blazeface-short", "haar", "mediapipe")
# benchmarks/bench_detectors.py: it finds the faces Haar misses, none where there is none, at
# a third of the cost, with keypoints as good (docs/performance.md)
DEFAULT_DETECTOR = "blazeface"


def make_detector(name: str = DEFAULT_DETECTOR) -> Detector:
    """A detector by name: ``blazeface`` (default: MediaPipe's full-range BlazeFace, shipped
    as ONNX, with its short-range model for the tracker's re-detections), ``blazeface-short``
    (the short-range model only: faces near the camera), ``haar`` (OpenCV's cascade, the
    framing the models were trained on) or ``mediapipe`` (the mediapipe package)."""
    if name == "haar":
        return HaarDetector()
    if name in ("blazeface", "blazeface-short"):
        from facecue.vision.blazeface import BlazeFaceDetector

        return BlazeFaceDetector("short" if name.endswith("short") else "full")
    if name == "mediapipe":
        return MediaPipeDetector()
    raise ValueError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}")


def detect_still(detector: Detector, image: np.ndarray) -> list[Detection]:
    """The faces of a still image: the detector's ``detect_still`` where it has one (more
    scales or tiles than a stream's call), else a call, on the uint8 image as decoded
    (colour kept); boxes nested in larger ones dropped."""
    return drop_nested(getattr(detector, "detect_still", detector)(to_uint8(image)))


def drop_nested(dets: list[Detection], inside: float = 0.3) -> list[Detection]:
    """Drop detections with more than ``inside`` of their area within a larger one.

    Haar cascades sometimes fire again on a mouth or chin region overlapping a found face;
    a real second face hardly ever lies that much inside another face's box.
    """
    keep: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.box[2] * d.box[3]):
        w, h = d.box[2:]
        if all(intersection(d.box, k.box) < inside * w * h for k in keep):
            keep.append(d)
    return keep


def intersection(a: tuple | np.ndarray, b: tuple | np.ndarray) -> float:
    """Area shared by two x, y, w, h boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return float(ix * iy)


class HaarDetector:
    """OpenCV Haar cascade (``haarcascade_frontalface_alt2``) on a downscaled grayscale image.

    A call scans the image shrunk to ``max_side`` pixels, so in a larger image it finds faces
    down to ``min_face / max_side`` of the long side (3.75 % by default); :meth:`detect_still`
    looks again at up to ``still_side`` pixels (down to 1.9 %, and to ``min_face`` px in
    images up to that size).
    """

    def __init__(self, cascade: str = "haarcascade_frontalface_alt2.xml", max_side: int = 640,
                 min_face: int = 24, scale_factor: float = 1.1, min_neighbors: int = 4,
                 still_side: int = 1280):
        data = getattr(cv2, "data", None)
        path = Path(data.haarcascades if data else "") / cascade
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise RuntimeError(
                f"OpenCV Haar cascade {cascade} not found at {path}: install "
                "'opencv-python-headless<5' (OpenCV 5 wheels ship no Haar cascades)"
            )
        self.max_side, self.still_side = max_side, still_side
        self.min_face = min_face
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def __call__(self, image: np.ndarray) -> list[Detection]:
        return self._scan(to_gray(image), self.max_side)

    def detect_still(self, image: np.ndarray) -> list[Detection]:
        """All faces of a still image: the scan of a call, then, in an image larger than
        ``max_side``, a scan at up to ``still_side`` pixels for the faces too small for it
        (up to about twice the first scan's time; streams skip it, their tracker scans often)."""
        gray = to_gray(image)
        found = self._scan(gray, self.max_side)
        side = max(gray.shape[:2])
        if side > self.max_side:
            # up to 10 % above the first scan's smallest face, in this scan's pixels
            largest = round(1.1 * self.min_face * min(side, self.still_side) / self.max_side)
            found += self._scan(gray, self.still_side, largest)
        return drop_nested(found)

    def _scan(self, gray: np.ndarray, side: int, largest: int = 0) -> list[Detection]:
        """Faces up to ``largest`` px (0: any) on ``gray`` shrunk to longest side ``side``,
        largest first, boxes in ``gray``'s pixels."""
        h, w = gray.shape[:2]
        s = min(1.0, side / max(h, w))
        small = cv2.resize(gray, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) \
            if s < 1.0 else gray
        out = self._cascade(small, s, (0, 0), (self.min_face, self.min_face), (largest, largest))
        return sorted(out, key=lambda d: -d.box[2] * d.box[3])

    def detect_near(self, image: np.ndarray, box: tuple[float, float, float, float],
                    search: float = 1.6) -> list[Detection]:
        """Detect faces of about ``box``'s size in a window around it: a cheap re-detection.

        Only scales from 0.7x to 1.4x the box and a window ``search`` times its side are tried,
        and the window is scaled so the face is ~64 px, which costs a few milliseconds instead
        of a full-frame scan.
        """
        x, y, w, h = box
        side = max(w, h)
        cx, cy = x + w / 2.0, y + h / 2.0
        ih, iw = image.shape[:2]
        x0, y0 = max(0, int(cx - side * search / 2)), max(0, int(cy - side * search / 2))
        x1, y1 = min(iw, int(cx + side * search / 2)), min(ih, int(cy + side * search / 2))
        if x1 - x0 < self.min_face or y1 - y0 < self.min_face:
            return []
        s = min(1.0, 64.0 / side)
        roi = to_gray(image[y0:y1, x0:x1])
        if s < 1.0:
            roi = cv2.resize(roi, (max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s))),
                             interpolation=cv2.INTER_AREA)
        lo, hi = round(side * s * 0.7), round(side * s * 1.4)
        return self._cascade(roi, s, (x0, y0), (lo, lo), (hi, hi))

    def _cascade(self, img: np.ndarray, s: float, offset: tuple[int, int],
                 min_size: tuple[int, int], max_size: tuple[int, int] = (0, 0)
                 ) -> list[Detection]:
        """Run the cascade on ``img``, a part of the image cut at ``offset`` and scaled by
        ``s``; boxes are returned in image pixels."""
        boxes, _, weights = self.cascade.detectMultiScale3(
            cv2.equalizeHist(img), scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors, minSize=min_size, maxSize=max_size,
            outputRejectLevels=True,
        )
        ox, oy = offset
        return [Detection(box=(int(round(bx / s)) + ox, int(round(by / s)) + oy,
                               int(round(bw / s)), int(round(bh / s))), score=float(wgt))
                for (bx, by, bw, bh), wgt in zip(np.asarray(boxes).reshape(-1, 4),
                                                 np.asarray(weights).reshape(-1), strict=True)]


class MediaPipeDetector:
    """MediaPipe BlazeFace (``facecue[mediapipe]``): finds faces Haar misses (sunglasses, turned
    heads, faces cut by the border).

    Its boxes are framed differently from the Haar boxes the models were trained on, so each
    is resized by ``box_scale`` and moved by ``shift_y`` (fraction of its side, negative = up)
    to the Haar framing; the defaults are the medians over the 22 faces both detectors find
    in the test photos.
    """

    def __init__(self, min_score: float = 0.5, full_range: bool = True,
                 box_scale: float = 1.03, shift_y: float = -0.10):
        try:
            import mediapipe as mp
        except ImportError:
            raise RuntimeError(
                "the mediapipe face detector needs the optional package: "
                "pip install 'facecue[mediapipe]'"
            ) from None
        self._fd = mp.solutions.face_detection.FaceDetection(
            model_selection=int(full_range), min_detection_confidence=min_score)
        self.box_scale, self.shift_y = box_scale, shift_y

    def __call__(self, image: np.ndarray) -> list[Detection]:
        ih, iw = image.shape[:2]
        res = self._fd.process(to_rgb(image))
        out = []
        for det in res.detections or []:
            r = det.location_data.relative_bounding_box
            raw = max(r.width * iw, r.height * ih)
            side = raw * self.box_scale
            cx = (r.xmin + r.width / 2) * iw
            cy = (r.ymin + r.height / 2) * ih + self.shift_y * raw
            box = (round(cx - side / 2), round(cy - side / 2), round(side), round(side))
            out.append(Detection(box=box, score=float(det.score[0])))
        return sorted(out, key=lambda d: -d.box[2] * d.box[3])
