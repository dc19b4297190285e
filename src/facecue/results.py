"""Typed results: what facecue tells you about a face and a frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facecue.labels import KEYPOINT_NAMES


@dataclass(frozen=True)
class Expression:
    """Emotion probabilities over a label set, and the label shown."""

    labels: tuple[str, ...]
    probs: np.ndarray  # (len(labels),) float32, sums to 1
    label: str  # shown label (after smoothing/hysteresis in streams; argmax otherwise)

    @property
    def score(self) -> float:
        return float(self.probs[self.labels.index(self.label)])

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(p), 4) for k, p in zip(self.labels, self.probs, strict=True)}


@dataclass(frozen=True)
class Face:
    """One face in one image or frame; coordinates in that image's pixels."""

    box: tuple[int, int, int, int]  # x, y, w, h
    keypoints: np.ndarray  # (15, 2) x, y in KEYPOINT_NAMES order
    expression: Expression
    track_id: int | None = None
    detection_score: float = 1.0
    raw_keypoints: np.ndarray | None = None  # before temporal smoothing (streams only)
    raw_expression: Expression | None = None

    def keypoint(self, name: str) -> tuple[float, float]:
        x, y = self.keypoints[KEYPOINT_NAMES.index(name)]
        return float(x), float(y)

    def as_dict(self) -> dict:
        """JSON-ready summary: box, keypoints (rounded, frame pixels), probabilities, label."""
        return {
            "id": self.track_id,
            "box": [int(v) for v in self.box],
            "score": round(float(self.detection_score), 3),
            "keypoints": np.round(self.keypoints.astype(np.float64), 1).tolist(),
            "label": self.expression.label,
            "probs": self.expression.as_dict(),
        }

    def lip_gap(self) -> float:
        """Distance between the lip centres relative to face size: mouth openness."""
        top = np.array(self.keypoint("mouth_center_top_lip"))
        bottom = np.array(self.keypoint("mouth_center_bottom_lip"))
        return float(np.linalg.norm(bottom - top) / max(self.box[2], self.box[3], 1))


@dataclass(frozen=True)
class FrameResult:
    """All faces found in one frame of a stream (or one still image)."""

    index: int  # frame index in the source
    time: float  # seconds from the start of the source
    width: int
    height: int
    faces: list[Face] = field(default_factory=list)
