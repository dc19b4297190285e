"""Face crops: the one place that decides which pixels a model sees.

Training data and the run-time pipeline both cut faces through :func:`crop_face`, from a face
detector box, so the crop a model learned on is the crop it gets at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CropSpec:
    """How a square crop is placed around a detector box (x, y, w, h)."""

    size: int  # output side in pixels
    scale: float  # crop side / detector box side
    shift_y: float = 0.0  # centre offset, as a fraction of the box side (positive = down)


# FER2013 faces are tightly framed: on FER2013 PublicTest faces the Haar box covers a median
# 0.958 of the frame, centred (tests/test_crop_contract.py), so the frame is the box x 1.04.
EXPRESSION_CROP = CropSpec(size=48, scale=1.04)
# Keypoints crop: the Haar box with a margin. Measured on youtube-faces-68, this keeps 99 % of
# faces' 15 keypoints at least 14 px (x) and 11 px (y) inside the 96 px crop, room for jitter.
KEYPOINTS_CROP = CropSpec(size=96, scale=1.3, shift_y=0.07)


# A head tilted (eye line against the horizontal) up to this many degrees is cropped as it is:
# the models learned such tilts from their training crops. Beyond it, the crop is turned by
# the excess. Chosen on youtube-faces-68's validation people (keypoint NME through BlazeFace,
# facecue.evaluation.detectors with turn 0, 20 and -30 degrees): turning every crop by the
# whole tilt cost accuracy on faces as they are, turning by the excess over 10 degrees did not,
# and it recovered most of the accuracy lost on turned heads. benchmarks/bench_detectors.py
# prints the held-out figures.
UPRIGHT_WITHIN = 10.0


def tilt_beyond(right_eye: tuple[float, float], left_eye: tuple[float, float],
                within: float = UPRIGHT_WITHIN) -> float:
    """How far (degrees, signed) to turn a face's crop: its eye line's angle (the person's
    right eye is on the image's left) beyond ``within`` degrees of level, else 0."""
    angle = float(np.degrees(np.arctan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0])))
    return float(np.sign(angle) * max(0.0, abs(angle) - within))


@dataclass(frozen=True)
class Crop:
    """A cut-out face and the square region of the source image it came from."""

    image: np.ndarray  # (size, size) uint8 grayscale
    x0: float  # top-left corner of the square region, source pixels (before it is turned)
    y0: float
    side: float  # side of the square region, source pixels
    angle: float = 0.0  # degrees the region is turned about its centre (a tilted face's)

    def to_source(self, points: np.ndarray) -> np.ndarray:
        """Map (..., 2) points from crop pixels to source-image pixels."""
        s = self.side / self.image.shape[0]
        p = np.asarray(points, dtype=np.float32) * s + np.array([self.x0, self.y0], np.float32)
        return p if not self.angle else self._turn(p, self.angle)

    def from_source(self, points: np.ndarray) -> np.ndarray:
        """Map (..., 2) points from source-image pixels to crop pixels."""
        s = self.image.shape[0] / self.side
        p = np.asarray(points, dtype=np.float32)
        p = p if not self.angle else self._turn(p, -self.angle)
        return (p - np.array([self.x0, self.y0], np.float32)) * s

    def _turn(self, points: np.ndarray, angle: float) -> np.ndarray:
        """``points`` turned by ``angle`` degrees about the region's centre."""
        t = np.radians(angle)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]], np.float32)
        centre = np.array([self.x0 + self.side / 2, self.y0 + self.side / 2], np.float32)
        return ((points - centre) @ rot.T + centre).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Any OpenCV image depth (8 or 16 bit; float 0..1) as uint8, channels unchanged."""
    img = np.asarray(image)
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)
    if img.dtype.kind == "f":
        return np.clip(img * 255.0, 0, 255).astype(np.uint8)
    if img.dtype != np.uint8:
        raise ValueError(f"unsupported image dtype {img.dtype}")
    return img


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any OpenCV image (gray, BGR, BGRA; 8 or 16 bit; float 0..1) as uint8 grayscale."""
    img = to_uint8(image)
    if img.ndim == 2:
        return img
    if img.ndim == 3 and img.shape[2] == 1:
        return img[:, :, 0]
    if img.ndim == 3 and img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"unsupported image shape {img.shape}")


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Any OpenCV image (gray, BGR, BGRA; any depth) as uint8 RGB: for detectors trained on
    colour (a gray image becomes three equal channels)."""
    img = to_uint8(image)
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def crop_face(gray: np.ndarray, box: tuple[float, float, float, float], spec: CropSpec,
              angle: float = 0.0) -> Crop:
    """Cut the square ``spec`` region around detector ``box`` from a grayscale image, turned
    by ``angle`` degrees about its centre (a tilted face made upright: :func:`tilt_beyond`).

    Parts of the region outside the image are filled by replicating the border, so faces cut by
    the frame edge still give a full crop.
    """
    x, y, w, h = (float(v) for v in box)
    side = max(1, round(max(w, h) * spec.scale))
    if angle:
        return _turned_crop(gray, (x, y, w, h), spec, side, angle)
    cx = x + w / 2.0
    cy = y + h / 2.0 + spec.shift_y * max(w, h)
    x0, y0 = round(cx - side / 2.0), round(cy - side / 2.0)
    ih, iw = gray.shape[:2]
    # Pad only as far as the region leaves the image, then cut and resize.
    pad_l, pad_t = max(0, -x0), max(0, -y0)
    pad_r, pad_b = max(0, x0 + side - iw), max(0, y0 + side - ih)
    region = gray[max(0, y0) : min(ih, y0 + side), max(0, x0) : min(iw, x0 + side)]
    if region.size == 0:
        raise ValueError(f"face box {box} lies outside the {iw}x{ih} image")
    if pad_l or pad_t or pad_r or pad_b:
        region = cv2.copyMakeBorder(region, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if side > spec.size else cv2.INTER_LINEAR
    img = cv2.resize(region, (spec.size, spec.size), interpolation=interp)
    return Crop(image=img, x0=float(x0), y0=float(y0), side=float(side))


def _turned_crop(gray: np.ndarray, box: tuple[float, float, float, float], spec: CropSpec,
                 side: int, angle: float) -> Crop:
    """:func:`crop_face` of a region turned by ``angle``: the region made upright at the
    source's resolution, then resized as an upright region is."""
    x, y, w, h = box
    t = np.radians(angle)
    c, s = np.cos(t), np.sin(t)
    shift = spec.shift_y * max(w, h)  # along the face's own downward axis
    cx, cy = x + w / 2 - s * shift, y + h / 2 + c * shift
    half = side / 2
    # crop pixel (u, v) shows source pixel centre + R (u - half, v - half)
    to_source = np.array([[c, -s, cx - c * half + s * half], [s, c, cy - s * half - c * half]])
    region = cv2.warpAffine(gray, to_source, (side, side),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if side > spec.size else cv2.INTER_LINEAR
    img = cv2.resize(region, (spec.size, spec.size), interpolation=interp)
    return Crop(image=img, x0=cx - half, y0=cy - half, side=float(side), angle=angle)
