"""Shared helpers for the pipeline tests: which model files to run, and short real clips."""

from __future__ import annotations

from pathlib import Path

import cv2

from facecue.video.pipeline import Pipeline
from facecue.vision.runtime import ExpressionModel, KeypointModel, shipped_model_path


def model_paths() -> tuple[Path, Path]:
    """The shipped expression (fer7) and keypoint models."""
    return shipped_model_path("expression_fer7"), shipped_model_path("keypoints15")


def model_args() -> list[str]:
    """CLI flags selecting the same models."""
    expr, kp = model_paths()
    return ["--expression-model", str(expr), "--keypoints-model", str(kp)]


def make_pipeline(**kwargs) -> Pipeline:
    cv2.setNumThreads(1)
    expr, kp = model_paths()
    return Pipeline(ExpressionModel.load("fer7", expr), KeypointModel.load(kp), **kwargs)


def read_frames(path: Path, limit: int = 0, step: int = 1) -> list:
    """Decoded frames of a real clip (every ``step``-th, at most ``limit``)."""
    cap = cv2.VideoCapture(str(path))
    frames, i = [], 0
    while not limit or len(frames) < limit:
        ok, img = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(img)
        i += 1
    cap.release()
    return frames
