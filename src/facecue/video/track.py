"""Face tracking between detections: stable IDs, cheap box updates, a grace period for misses.

A full-frame Haar scan costs tens of milliseconds, too much for every frame. The tracker moves
each face box with sparse optical flow (a fraction of a millisecond), re-detects near a known
face every few frames (a few milliseconds) and scans the whole frame for new faces less often.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from facecue.vision.detect import Detection, Detector, drop_nested, intersection

_LK = dict(winSize=(15, 15), maxLevel=2,
           criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 0.03))


@dataclass
class Track:
    """One face followed over time; ``box`` is x, y, w, h in frame pixels."""

    id: int
    box: np.ndarray  # (4,) float32
    score: float
    last_seen: float  # time of the last detection that matched it
    last_check: int  # frame count at the last detection attempt for it
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 2), np.float32))
    lost: bool = False  # optical flow failed: the box is stale until a detection finds it
    tilt: float = 0.0  # degrees to turn its crops by, from the last detection (Detection.tilt)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x, y, w, h boxes."""
    inter = intersection(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def downscale(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """``image`` shrunk so its longest side is at most ``side``, and the scale used."""
    s = min(1.0, side / max(image.shape[:2]))
    if s == 1.0:
        return image, 1.0
    size = (round(image.shape[1] * s), round(image.shape[0] * s))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), s


class FaceTracker:
    """Keeps face IDs across frames; call :meth:`update` once per frame, in order.

    ``detect_every``: frames between re-detections near each face (sooner when flow fails);
    ``scan_every``: frames between full-frame scans for new faces while faces are tracked,
    ``idle_scan_every`` while none are (nothing else costs then); scans while tracking run
    on frames downscaled to ``scan_side`` (they only look for new, not tiny, faces; a
    full-resolution scan of a textured 640x360 frame can take 100+ ms); ``grace``: seconds a face
    may go undetected before it is dropped; ``work_side``: flow runs on frames downscaled to
    this longest side so 4K input costs the same as 640 px.
    """

    def __init__(self, detector: Detector, detect_every: int = 5, scan_every: int = 30,
                 idle_scan_every: int = 5, scan_side: int = 320, grace: float = 1.0,
                 match_iou: float = 0.3, work_side: int = 640):
        self.detector = detector
        # a detection starts a new track only from this score (the detector's
        # ``new_face_score``, if it has one); known faces are followed from its lower threshold
        self.new_face_score = float(getattr(detector, "new_face_score", 0.0))
        self.detect_every, self.scan_every = detect_every, scan_every
        self.idle_scan_every, self.scan_side = idle_scan_every, scan_side
        self.grace, self.match_iou, self.work_side = grace, match_iou, work_side
        self.tracks: list[Track] = []
        self.frames = 0
        self.detections = 0  # detector calls (full scans and near re-detections)
        self.detect_time = 0.0  # seconds spent in those calls
        self._next_id = 1
        self._prev: np.ndarray | None = None
        self._scale = 1.0
        self._last_scan = -max(scan_every, idle_scan_every)
        self._busy = False  # some face was visible after the previous frame

    def update(self, gray: np.ndarray, t: float, image: np.ndarray | None = None
               ) -> list[Track]:
        """Advance to a new frame at time ``t`` seconds; return the faces visible in it.
        ``gray`` is the frame in grayscale (optical flow runs on it); ``image``, the frame as
        the detector should see it (colour for BlazeFace), defaults to ``gray``."""
        image = gray if image is None else image
        small, self._scale = downscale(gray, self.work_side)
        if self._prev is not None and self._prev.shape == small.shape:
            self._flow(small)
        else:
            for tr in self.tracks:
                tr.lost = True
        self._prev = small

        near = getattr(self.detector, "detect_near", None)
        for tr in self.tracks:
            if tr.lost or self.frames - tr.last_check >= self.detect_every:
                tr.last_check = self.frames
                found = self._detect(near, image, tuple(tr.box)) if near else \
                    self._detect(self.detector, image)
                best = max(found, key=lambda d: iou(tr.box, np.array(d.box)), default=None)
                self._match([best] if best else [], t, create=False, only=tr)

        busy = any(not tr.lost for tr in self.tracks)
        # Scan at once when the last visible face was just lost: it may have moved too fast
        # for the flow and the local re-detection.
        if (self._busy and not busy) or self.frames - self._last_scan >= (
                self.scan_every if busy else self.idle_scan_every):
            self._last_scan = self.frames
            found = self._detect(self._scan, image, self.scan_side if busy else 0)
            self._match(drop_nested(found), t, create=True)
            busy = any(not tr.lost for tr in self.tracks)
        self._busy = busy

        self.tracks = [tr for tr in self.tracks if t - tr.last_seen <= self.grace]
        self.frames += 1
        return [tr for tr in self.tracks if not tr.lost]

    def _detect(self, fn, *args) -> list[Detection]:
        t0 = time.perf_counter()
        found = fn(*args)
        self.detect_time += time.perf_counter() - t0
        self.detections += 1
        return found

    def _scan(self, image: np.ndarray, side: int) -> list[Detection]:
        """Full-frame detection, on a copy downscaled to longest side ``side`` if given."""
        small, s = downscale(image, side) if side else (image, 1.0)
        found = self.detector(small)
        if s == 1.0:
            return found
        return [Detection(tuple(round(v / s) for v in d.box), d.score,
                          d.landmarks and tuple((x / s, y / s) for x, y in d.landmarks))
                for d in found]

    def _flow(self, small: np.ndarray) -> None:
        """Move every track's box by the median motion (and scale) of its flow points."""
        for tr in self.tracks:
            tr.lost = tr.lost or not len(tr.points)
        live = [tr for tr in self.tracks if not tr.lost]
        if not live:
            return
        p0 = np.concatenate([tr.points for tr in live])
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(self._prev, small, p0, None, **_LK)
        # Forward-backward check: a point that does not flow back to where it started was
        # lost (occlusion, scene cut), even when LK itself reports success.
        back, st2, _ = cv2.calcOpticalFlowPyrLK(small, self._prev, p1, None, **_LK)
        fb = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
        ok = st1.reshape(-1).astype(bool) & st2.reshape(-1).astype(bool) & (fb < 1.0)
        start = 0
        for tr in live:
            n = len(tr.points)
            a, b, good = p0[start:start + n, 0], p1[start:start + n, 0], ok[start:start + n]
            start += n
            if good.sum() < max(4, n // 3):
                tr.lost = True
                continue
            a, b = a[good], b[good]
            shift = np.median(b - a, axis=0)
            da = np.linalg.norm(a - a.mean(0), axis=1)
            db = np.linalg.norm(b - b.mean(0), axis=1)
            scale = float(np.median(db[da > 1] / da[da > 1])) if (da > 1).sum() >= 3 else 1.0
            x, y, w, h = tr.box
            cx = x + w / 2 + shift[0] / self._scale
            cy = y + h / 2 + shift[1] / self._scale
            w, h = w * scale, h * scale
            tr.box = np.array([cx - w / 2, cy - h / 2, w, h], np.float32)
            tr.points = b.reshape(-1, 1, 2)

    def _match(self, found: list[Detection], t: float, create: bool,
               only: Track | None = None) -> None:
        """Give each detection to the track it overlaps most; unmatched ones start tracks."""
        candidates = [only] if only else self.tracks
        for det in found:
            box = np.array(det.box, np.float32)
            best = max(candidates, key=lambda tr: iou(tr.box, box), default=None)
            if best is not None and iou(best.box, box) >= self.match_iou:
                self._refresh(best, box, det, t)
            elif create and all(iou(tr.box, box) < self.match_iou for tr in self.tracks) \
                    and det.score >= self.new_face_score:
                lost = self._nearby_lost(box)
                if lost is not None:  # a face that jumped away from its track: same face
                    self._refresh(lost, box, det, t)
                else:
                    self.tracks.append(Track(self._next_id, box, det.score, t, self.frames,
                                             self._features(box), tilt=det.tilt))
                    self._next_id += 1
        self._drop_duplicates()

    def _refresh(self, tr: Track, box: np.ndarray, det: Detection, t: float) -> None:
        """Put a track on a fresh detection and restart its flow points there."""
        tr.box, tr.score, tr.last_seen, tr.lost = box, det.score, t, False
        tr.tilt = det.tilt
        tr.last_check, tr.points = self.frames, self._features(box)

    def _nearby_lost(self, box: np.ndarray) -> Track | None:
        """The closest lost track of similar size within two face widths of ``box``."""
        def dist(tr: Track) -> float:
            return float(np.hypot(*(tr.box[:2] + tr.box[2:] / 2 - box[:2] - box[2:] / 2)))

        near = [tr for tr in self.tracks if tr.lost and 2 / 3 < tr.box[2] / box[2] < 3 / 2
                and dist(tr) < 2 * box[2]]
        return min(near, key=dist, default=None)

    def _features(self, box: np.ndarray, margin: int = 16) -> np.ndarray:
        """Corners inside the central part of ``box`` to follow with optical flow.

        Found in that part and ``margin`` pixels around it (the corner measure looks 3 px
        around each pixel), not in the whole frame: the same corners at a tenth of the cost
        of masking the whole frame.
        """
        s = self._scale
        x, y, w, h = box * s
        ih, iw = self._prev.shape[:2]
        x0, y0 = max(0, int(x + 0.15 * w)), max(0, int(y + 0.1 * h))
        x1 = min(iw, max(x0, int(x + 0.85 * w)))
        y1 = min(ih, max(y0, int(y + 0.9 * h)))
        if x1 <= x0 or y1 <= y0:
            return np.zeros((0, 1, 2), np.float32)
        ax, ay = max(0, x0 - margin), max(0, y0 - margin)
        around = self._prev[ay:min(ih, y1 + margin), ax:min(iw, x1 + margin)]
        mask = np.zeros_like(around)
        mask[y0 - ay:y1 - ay, x0 - ax:x1 - ax] = 255
        pts = cv2.goodFeaturesToTrack(around, maxCorners=30, qualityLevel=0.01,
                                      minDistance=max(3, int(w / 15)), mask=mask)
        if pts is None:
            return np.zeros((0, 1, 2), np.float32)
        return (pts + np.array([ax, ay], np.float32)).astype(np.float32)

    def _drop_duplicates(self) -> None:
        """Two tracks on one face (flow drifted together): keep the older ID."""
        keep: list[Track] = []
        for tr in sorted(self.tracks, key=lambda tr: tr.id):
            if all(iou(tr.box, k.box) < 0.5 for k in keep):
                keep.append(tr)
        self.tracks = keep
