"""68-point landmark folders (iBUG order, laid out like ``youtube-faces-68``) and their
conversion to Kaggle-format 96x96 keypoint crops.

The converter cuts each face exactly as the run-time pipeline does: the Haar detector's box
through :func:`facecue.vision.crop.crop_face` with ``KEYPOINTS_CROP``. Where the detector misses the
face, or its box does not match the landmarks, a box derived from the landmarks stands in; its
placement is calibrated on detector boxes (:data:`FALLBACK_BOX`), and such rows are marked
``Fallback=1``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecue.formats.csvfile import BadRowError, csv_rows
from facecue.formats.kaggle_keypoints import KeypointRows
from facecue.video.sources import read_image
from facecue.vision.crop import KEYPOINTS_CROP, crop_face, to_gray
from facecue.vision.detect import Detection, HaarDetector

# Each Kaggle keypoint as the mean of these 68-point indices (subject's left = image right).
LANDMARKS68_TO_15: tuple[tuple[int, ...], ...] = (
    (42, 43, 44, 45, 46, 47),  # left_eye_center
    (36, 37, 38, 39, 40, 41),  # right_eye_center
    (42,), (45,),  # left_eye_inner_corner, left_eye_outer_corner
    (39,), (36,),  # right_eye_inner_corner, right_eye_outer_corner
    (22,), (26,),  # left_eyebrow_inner_end, left_eyebrow_outer_end
    (21,), (17,),  # right_eyebrow_inner_end, right_eyebrow_outer_end
    (30,),  # nose_tip
    (54,), (48,),  # mouth_left_corner, mouth_right_corner
    (51,), (57,),  # mouth_center_top_lip, mouth_center_bottom_lip
)
SPLITS = ("train", "val", "test")
SUFFIX = "_frames_keypoints.csv"


def keypoints15(points68: np.ndarray) -> np.ndarray:
    """(..., 68, 2) landmarks -> (..., 15, 2) Kaggle keypoints."""
    p = np.asarray(points68, np.float32)
    return np.stack([p[..., list(idx), :].mean(-2) for idx in LANDMARKS68_TO_15], -2)


@dataclass(frozen=True)
class Landmarks68:
    """One labelled image of a 68-point folder."""

    path: Path  # the image file
    source: str  # path relative to the folder, e.g. ``training/Luis_Fonsi_21.jpg``
    points: np.ndarray  # (68, 2) float32, image pixels


def read_landmarks68(folder: str | Path) -> list[Landmarks68]:
    """All rows of every ``NAME_frames_keypoints.csv`` in ``folder``; images in ``folder/NAME/``.

    Each CSV has an unnamed file-name column, then x0,y0,...,x67,y67.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"68-point folder not found: {folder}")
    tables = sorted(folder.glob(f"*{SUFFIX}"))
    if not tables:
        raise FileNotFoundError(f"{folder} holds no *{SUFFIX} file")
    out = []
    for table in tables:
        images = folder / table.name[: -len(SUFFIX)]
        rows = csv_rows(table, "68-point landmarks")
        if next(rows, None) is None:
            raise BadRowError(f"{table}: empty file, expected a header row")
        for line, row in rows:
            try:
                if len(row) != 137:
                    raise BadRowError(f"expected 137 fields, found {len(row)}")
                try:
                    pts = np.array(row[1:], np.float32).reshape(68, 2)
                except ValueError:
                    raise BadRowError("a landmark coordinate is not a number") from None
                if not np.isfinite(pts).all():
                    raise BadRowError("a landmark coordinate is not finite")
            except BadRowError as e:
                raise BadRowError(f"{table}: line {line}: {e}") from None
            out.append(Landmarks68(images / row[0], f"{images.name}/{row[0]}", pts))
    if not out:
        raise BadRowError(f"{folder}: its *{SUFFIX} files list no images, only headers")
    return out


def identity(source: str) -> str:
    """The person of a file: its name without folder, extension and ``_NN`` frame suffix."""
    return re.sub(r"_\d+$", "", Path(source).stem)


def identity_split(name: str, val: float = 0.1, test: float = 0.1) -> str:
    """``train``, ``val`` or ``test`` for an identity, from a hash of its name: deterministic,
    and every image of one person lands in the same split."""
    u = int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:12], 16) / float(1 << 48)
    return "test" if u < test else "val" if u < test + val else "train"


def in_split(items: Sequence[Landmarks68], split: str) -> list[Landmarks68]:
    """The items whose person falls in ``split`` (``test``: the held-out identities)."""
    return [i for i in items if identity_split(identity(i.source)) == split]


@dataclass(frozen=True)
class BoxCalibration:
    """Where the detector puts its (square) box relative to 68 landmarks: side = ``scale`` x
    RMS radius of the points, centre = centroid + (``dx``, ``dy``) x RMS radius."""

    scale: float
    dx: float
    dy: float

    def box(self, points68: np.ndarray) -> tuple[float, float, float, float]:
        c, r = _centre_radius(points68)
        side = self.scale * r
        return (c[0] + self.dx * r - side / 2, c[1] + self.dy * r - side / 2, side, side)


# Fitted with fit_box_calibration on the train-split detector boxes of youtube-faces-68
# (tests/test_keypoints_data.py refits it and checks these values).
FALLBACK_BOX = BoxCalibration(scale=3.0262, dx=-0.0294, dy=-0.399)
MIN_IOU = 0.5  # a detection framing the landmarks worse than this is not that face


def _centre_radius(points68: np.ndarray) -> tuple[np.ndarray, float]:
    p = np.asarray(points68, np.float64)
    c = p.mean(0)
    return c, float(np.sqrt(((p - c) ** 2).sum(1).mean()))


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def match_detection(detections: list[Detection], points68: np.ndarray,
                    calibration: BoxCalibration = FALLBACK_BOX) -> Detection | None:
    """The detection that frames these landmarks (best IoU with the calibrated box, at least
    :data:`MIN_IOU`), or None."""
    ref = calibration.box(points68)
    scored = [(iou(d.box, ref), d) for d in detections]
    best = max(scored, key=lambda t: t[0], default=(0.0, None))
    return best[1] if best[0] >= MIN_IOU else None


def fit_box_calibration(points: Sequence[np.ndarray], boxes: Sequence[Sequence[float]]
                        ) -> BoxCalibration:
    """Median placement of detector ``boxes`` relative to their landmark sets."""
    rel = []
    for p, (x, y, w, h) in zip(points, boxes, strict=True):
        c, r = _centre_radius(p)
        rel.append((max(w, h) / r, (x + w / 2 - c[0]) / r, (y + h / 2 - c[1]) / r))
    s, dx, dy = np.median(np.array(rel), 0)
    return BoxCalibration(round(float(s), 4), round(float(dx), 4), round(float(dy), 4))


def framing_pairs(items: Sequence[Landmarks68], blazeface, haar: HaarDetector | None = None
                  ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """BlazeFace's raw box and keypoints, and the Haar box, for each labelled face both
    detectors find (the data :func:`facecue.vision.blazeface.fit_framing` fits on).

    BlazeFace's detection is the most confident one whose box holds the landmarks' centre.
    """
    haar = haar or HaarDetector()
    boxes, points, targets = [], [], []
    for item in items:
        image = read_image(item.path)
        det = match_detection(haar.detect_still(image), item.points)
        centre = item.points.mean(0)
        raw = [(score, box, pts) for score, box, pts in blazeface.detect_raw(image)
               if box[0] <= centre[0] <= box[0] + box[2] and box[1] <= centre[1] <= box[1] + box[3]]
        if det is not None and raw:
            _, box, pts = max(raw, key=lambda r: r[0])
            boxes.append(box)
            points.append(pts)
            targets.append(np.array(det.box, np.float64))
    return boxes, points, targets


def convert_landmarks68(items: Sequence[Landmarks68],
                        detector: Callable[[np.ndarray], list[Detection]] | None = None,
                        progress: bool = False) -> KeypointRows:
    """Cut 96x96 keypoint crops as the pipeline would, with the 15 keypoints in crop pixels.

    Extra columns: ``Source``, ``Identity``, ``Split`` (by identity), ``Fallback`` (1 = the
    detector gave no matching box, the calibrated landmark box was used) and ``Box`` (the
    ``x y w h`` box the crop was cut from).
    """
    detector = detector or HaarDetector()
    it = items
    if progress:
        from tqdm import tqdm

        it = tqdm(items, desc="detect+crop", leave=False)
    images, kps = [], []
    extra: dict[str, list[str]] = {k: [] for k in
                                   ("Source", "Identity", "Split", "Fallback", "Box")}
    for item in it:
        gray = to_gray(read_image(item.path))  # decoded as the pipeline decodes
        det = match_detection(detector(gray), item.points)
        box = det.box if det is not None else FALLBACK_BOX.box(item.points)
        crop = crop_face(gray, box, KEYPOINTS_CROP)
        images.append(crop.image)
        kps.append(crop.from_source(keypoints15(item.points)))
        who = identity(item.source)
        for k, v in (("Source", item.source), ("Identity", who), ("Split", identity_split(who)),
                     ("Fallback", "0" if det is not None else "1"),
                     ("Box", " ".join(f"{float(b):.2f}" for b in box))):
            extra[k].append(v)
    return KeypointRows(
        keypoints=np.array(kps, np.float32).reshape(-1, 15, 2),
        images=np.stack(images) if images else np.zeros((0, 96, 96), np.uint8),
        extra={k: np.array(v, dtype=object) for k, v in extra.items()})


def load_keypoint_data(path: str | Path, progress: bool = False) -> KeypointRows:
    """A Kaggle-format CSV, or a 68-point folder converted on the fly."""
    from facecue.formats.kaggle_keypoints import read_training_csv

    path = Path(path)
    if path.is_dir():
        return convert_landmarks68(read_landmarks68(path), progress=progress)
    return read_training_csv(path)


def landmarks68_to_csv(folder: str | Path, out: str | Path, progress: bool = False
                       ) -> KeypointRows:
    """Convert a 68-point folder (:func:`convert_landmarks68`) into a Kaggle-format
    ``training.csv[.gz]`` at ``out``; returns the rows written."""
    from facecue.formats.kaggle_keypoints import write_training_csv

    rows = convert_landmarks68(read_landmarks68(folder), progress=progress)
    write_training_csv(out, rows)
    return rows
