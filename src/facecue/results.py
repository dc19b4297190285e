"""Typed results: what facecue tells you about a face and a frame.

All three are frozen and built with keyword arguments only, so a field added later cannot
shift the meaning of a positional call."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facecue.labels import KEYPOINT_NAMES


@dataclass(frozen=True, kw_only=True)
class Expression:
    """Emotion probabilities over a label set, and the label shown."""

    labels: tuple[str, ...]
    probs: np.ndarray  # (len(labels),) float32, sums to 1
    label: str  # shown label (after smoothing/hysteresis in streams; argmax otherwise)

    @classmethod
    def most_likely(cls, labels: tuple[str, ...], probs: np.ndarray) -> Expression:
        """The model's own answer: ``probs`` as they are, the most likely label shown."""
        return cls(labels=labels, probs=probs.astype(np.float32),
                   label=labels[int(np.argmax(probs))])

    @property
    def score(self) -> float:
        """Probability of the shown label."""
        return float(self.probs[self.labels.index(self.label)])

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(p), 4) for k, p in zip(self.labels, self.probs, strict=True)}


@dataclass(frozen=True, kw_only=True)
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
        """The face as a JSON-ready dict: what ``facecue analyze --json`` prints per face and
        each record of ``facecue run``'s JSON Lines holds (after its ``time``, ``frame``
        and, for images and folders, ``source``: the image file).

        Fields, in this order (coordinates in the image's pixels, origin top left):

        - ``track_id`` (int): the face's ID, the same on every frame while the face is
          tracked in a stream. Absent for still images, whose faces are not tracked.
        - ``box`` ([x, y, width, height], ints): the face box, x and y its top-left corner.
        - ``detection_score`` (float): the face detector's confidence, higher is surer. For
          the default Haar detector the cascade's last-stage sum (about 55-58 on faces; not a
          probability); for ``--detector mediapipe`` a probability 0-1.
        - ``emotion`` (str): the emotion shown, the most likely one; in streams after
          smoothing over time and a hysteresis that keeps near-ties from flickering.
        - ``emotion_probs`` ({emotion: float}): the probability of every emotion of the
          label set (fer7: anger, disgust, fear, happiness, sad, surprise, neutral; fer5:
          anger, disgust, sad, happiness, surprise), summing to 1; smoothed in streams.
        - ``keypoints`` ({name: [x, y]}): the 15 keypoints by name
          (:data:`facecue.labels.KEYPOINT_NAMES`; "left" is the person's left, the image's
          right); smoothed in streams.

        Numbers are rounded: the score to 3 decimals, probabilities to 4, keypoints to 0.1 px.
        """
        out = {} if self.track_id is None else {"track_id": self.track_id}
        points = np.round(self.keypoints.astype(np.float64), 1).tolist()
        return {
            **out,
            "box": [int(v) for v in self.box],
            "detection_score": round(float(self.detection_score), 3),
            "emotion": self.expression.label,
            "emotion_probs": self.expression.as_dict(),
            "keypoints": dict(zip(KEYPOINT_NAMES, points, strict=True)),
        }

    def lip_gap(self) -> float:
        """Distance between the lip centres relative to face size: mouth openness."""
        top = np.array(self.keypoint("mouth_center_top_lip"))
        bottom = np.array(self.keypoint("mouth_center_bottom_lip"))
        return float(np.linalg.norm(bottom - top) / max(self.box[2], self.box[3], 1))


@dataclass(frozen=True, kw_only=True)
class FrameResult:
    """All faces found in one frame of a stream (or one still image)."""

    index: int  # frame index in the source
    time: float  # seconds from the start of the source
    width: int
    height: int
    faces: list[Face] = field(default_factory=list)
    source: Path | None = None  # the image file, for image and folder sources
