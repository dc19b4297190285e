"""Keypoints through a face detector on labelled images, and two detectors compared pair by pair.

The keypoint model sees the crop cut from the detector's box, so a detector changes what the
model gets. :func:`keypoints_through_detector` runs each labelled image through the pipeline's
still path (detect, match the labelled face, crop, predict) and scores it as the keypoint card
does (:func:`facecue.evaluation.metrics.keypoint_report`: mean point error over the distance
between the outer eye corners). An image where the detector gives no box for the labelled face
is a miss: counted, with no error, and never given a stand-in box (the training converter's
fallback would hide exactly what is being measured).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from facecue.evaluation.metrics import _point_errors, identity_intervals
from facecue.formats.landmarks68 import (
    Landmarks68,
    identity,
    keypoints15,
    match_detection,
    read_image,  # facecue.video.sources' decoder: evaluation may not import video itself
)
from facecue.vision.crop import KEYPOINTS_CROP, crop_face, to_gray, to_uint8
from facecue.vision.detect import Detection, detect_still
from facecue.vision.runtime import KeypointModel

# the card's normalising distance: left and right outer eye corner (KEYPOINT_NAMES indices)
NORM_POINTS = (3, 5)


@dataclass(frozen=True)
class DetectorKeypoints:
    """Per labelled image: the 15 keypoints predicted through one detector (image pixels; NaN
    where it missed the face), the labelled ones, and the image's NME (NaN on a miss)."""

    sources: tuple[str, ...]  # Landmarks68.source of each image
    identities: np.ndarray  # (N,) the person of each image
    keypoints: np.ndarray  # (N, 15, 2) float64
    truth: np.ndarray  # (N, 15, 2) float64
    nme: np.ndarray  # (N,) float64

    @property
    def found(self) -> np.ndarray:
        """(N,) bool: the detector framed the labelled face."""
        return ~np.isnan(self.nme)

    @property
    def misses(self) -> int:
        return int((~self.found).sum())

    @property
    def mean_nme(self) -> float:
        """Mean NME over the images the detector found (NaN if none)."""
        return float(self.nme[self.found].mean()) if self.found.any() else float("nan")


def keypoints_through_detector(detector: Callable[[np.ndarray], list[Detection]],
                               items: Sequence[Landmarks68], model: KeypointModel,
                               turn: float = 0.0, upright: bool = True) -> DetectorKeypoints:
    """Detect, crop and predict each image as the pipeline does a still, scored against its
    68-point labels mapped to the 15 keypoints. ``turn``: each image and its labels are first
    turned by that many degrees about the image centre (tilted heads); ``upright=False``
    crops tilted faces as they are (no :attr:`Detection.tilt`), to measure what turning
    their crops upright does."""
    preds, truth = [], []
    for item in items:
        image = to_uint8(read_image(item.path))
        points = item.points
        if turn:
            h, w = image.shape[:2]
            matrix = cv2.getRotationMatrix2D((w / 2, h / 2), turn, 1.0)
            image = cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
            points = np.c_[points, np.ones(len(points))] @ matrix.T
        truth.append(keypoints15(points))
        det = match_detection(detect_still(detector, image), points)
        if det is None:
            preds.append(np.full((15, 2), np.nan))
            continue
        crop = crop_face(to_gray(image), det.box, KEYPOINTS_CROP, det.tilt if upright else 0.0)
        preds.append(crop.to_source(model.predict(crop.image[None])[0]))
    pred = np.array(preds, np.float64).reshape(-1, 15, 2)
    true = np.array(truth, np.float64).reshape(-1, 15, 2)
    found = ~np.isnan(pred).any((1, 2))
    nme = np.full(len(pred), np.nan)
    if found.any():
        nme[found] = _point_errors(pred[found], true[found], NORM_POINTS)[4]
    return DetectorKeypoints(tuple(i.source for i in items),
                             np.array([identity(i.source) for i in items], dtype=object),
                             pred, true, nme)


@dataclass(frozen=True)
class PairedNME:
    """Detector ``a`` against ``b`` on the same labelled images. The means and the difference
    (``a`` - ``b``) are over the images both found; ``interval`` is the difference's percentile
    interval when the people are resampled (cluster bootstrap over identities:
    :func:`facecue.evaluation.metrics.identity_intervals`)."""

    n: int  # images
    people: int  # identities among them
    both: int  # images both detectors found
    nme_a: float
    nme_b: float
    difference: float
    interval: tuple[float, float]
    level: float
    rounds: int
    misses_a: int
    misses_b: int


def paired_nme(a: DetectorKeypoints, b: DetectorKeypoints, rounds: int = 2000,
               level: float = 0.95, seed: int = 0) -> PairedNME:
    """Compare two detectors' keypoints image by image; misses are counted for each, and
    the images either missed are left out of the means and the difference."""
    if a.sources != b.sources:
        raise ValueError("the two detectors were run on different images")
    both = a.found & b.found
    if not both.any():
        raise ValueError("no image was found by both detectors")
    spread = identity_intervals(a.keypoints[both], a.truth[both], a.identities[both],
                                baseline=b.keypoints[both], rounds=rounds, level=level,
                                seed=seed, norm_points=NORM_POINTS)
    nme_a, nme_b = float(a.nme[both].mean()), float(b.nme[both].mean())
    lo, hi = spread["minus_baseline"]["nme"]
    return PairedNME(n=len(a.sources), people=len(set(a.identities)), both=int(both.sum()),
                     nme_a=nme_a, nme_b=nme_b, difference=nme_a - nme_b, interval=(lo, hi),
                     level=level, rounds=rounds, misses_a=a.misses, misses_b=b.misses)
