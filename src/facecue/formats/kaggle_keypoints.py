"""Kaggle Facial Keypoints Detection files: ``training.csv``, ``test.csv``, ``IdLookupTable.csv``
and the ``RowId,Location`` submission (plain or .gz).

Rows are validated; a bad row raises :class:`BadRowError` naming its file line. A training file
may carry columns beyond Kaggle's 30 keypoints + ``Image`` (the 68-point converter adds
``Source``, ``Identity``, ``Split``, ``Fallback`` and ``Box``); they are kept as strings.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facecue.fileio import atomic_write_bytes
from facecue.formats.csvfile import BadRowError, csv_rows
from facecue.labels import KEYPOINT_COLUMNS, KEYPOINT_NAMES

SIZE = 96
N_PIXELS = SIZE * SIZE


@dataclass
class KeypointRows:
    """Faces with 15 keypoints in 96x96-crop pixels; missing keypoints are NaN."""

    keypoints: np.ndarray  # (N, 15, 2) float32
    images: np.ndarray | None  # (N, 96, 96) uint8, None for a keypoints-only file
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # other columns, as str
    lines: np.ndarray | None = None  # file line of each row (1 = header)

    def __len__(self) -> int:
        return len(self.keypoints)

    def subset(self, mask: np.ndarray) -> KeypointRows:
        return KeypointRows(
            self.keypoints[mask], None if self.images is None else self.images[mask],
            {k: v[mask] for k, v in self.extra.items()},
            None if self.lines is None else self.lines[mask])

    def split(self, name: str) -> KeypointRows:
        """Rows of one ``Split`` value (``train``, ``val``, ``test``); ``all`` keeps every row."""
        if name == "all":
            return self
        if "Split" not in self.extra:
            raise ValueError(f"this keypoints file has no Split column; use split 'all', not "
                             f"{name!r}")
        return self.subset(self.extra["Split"] == name)


def _header(path: Path, rows: Iterator[tuple[int, list[str]]], required: tuple[str, ...]
            ) -> list[str]:
    try:
        line, header = next(rows)
    except StopIteration:
        raise BadRowError(f"{path}: empty file, expected a header row") from None
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        raise BadRowError(f"{path}: line {line}: header lacks column(s) {missing[:4]}{more}")
    return header


def _table(path: Path, columns: tuple[str, ...]
           ) -> tuple[Iterator[tuple[int, list[str]]], list[str], list[int]]:
    """(data rows, header, index of each of ``columns``) of a file that must have them."""
    rows = csv_rows(path, "keypoints")
    header = _header(path, rows, columns)
    return rows, header, [header.index(c) for c in columns]


@contextmanager
def _at(path: Path, line: int) -> Iterator[None]:
    """Give a row's :class:`BadRowError` its file and line."""
    try:
        yield
    except BadRowError as e:
        raise BadRowError(f"{path}: line {line}: {e}") from None


def _check_width(row: list[str], header: list[str]) -> None:
    if len(row) != len(header):
        raise BadRowError(f"expected {len(header)} fields, found {len(row)}")


def _parse_image(text: str) -> np.ndarray:
    tokens = text.split()
    if len(tokens) != N_PIXELS:
        raise BadRowError(f"Image has {len(tokens)} values, expected {N_PIXELS}")
    try:
        px = np.array(tokens, dtype=np.int64)
    except ValueError:
        bad = next(t for t in tokens if not t.isdigit())
        raise BadRowError(f"pixel value {bad!r} is not a non-negative integer") from None
    if px.max() > 255 or px.min() < 0:
        raise BadRowError(f"pixel values must lie in 0-255, found {px.min()}..{px.max()}")
    return px.astype(np.uint8).reshape(SIZE, SIZE)


def _parse_coord(name: str, text: str) -> float:
    if not text.strip():
        return np.nan
    try:
        v = float(text)
    except ValueError:
        raise BadRowError(f"{name} {text!r} is not a number") from None
    if not np.isfinite(v):
        raise BadRowError(f"{name} {text!r} is not a finite number")
    return v


def read_training_csv(path: str | Path, require_image: bool = True) -> KeypointRows:
    """Read a Kaggle ``training.csv`` (30 keypoint columns, ``Image``; empty = missing)."""
    path = Path(path)
    rows = csv_rows(path, "keypoints")
    header = _header(path, rows, KEYPOINT_COLUMNS + (("Image",) if require_image else ()))
    kcols = [header.index(c) for c in KEYPOINT_COLUMNS]
    icol = header.index("Image") if "Image" in header else None
    xcols = {h: i for i, h in enumerate(header) if h not in KEYPOINT_COLUMNS and h != "Image"}
    kps, images, lines = [], [], []
    extra: dict[str, list[str]] = {h: [] for h in xcols}
    for line, row in rows:
        with _at(path, line):
            _check_width(row, header)
            kps.append([_parse_coord(KEYPOINT_COLUMNS[j], row[i]) for j, i in enumerate(kcols)])
            if icol is not None:
                images.append(_parse_image(row[icol]))
        for h, i in xcols.items():
            extra[h].append(row[i])
        lines.append(line)
    return KeypointRows(
        keypoints=np.array(kps, np.float32).reshape(-1, len(KEYPOINT_NAMES), 2),
        images=(np.stack(images) if images else np.zeros((0, SIZE, SIZE), np.uint8))
        if icol is not None else None,
        extra={h: np.array(v, dtype=object) for h, v in extra.items()},
        lines=np.array(lines, np.int64))


def _csv_bytes(path: Path, header: list[str], rows: Iterator[list[str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    data = buf.getvalue().encode("utf-8")
    return gzip.compress(data, mtime=0) if path.suffix == ".gz" else data


def _image_text(image: np.ndarray) -> str:
    return " ".join(map(str, np.asarray(image, np.uint8).ravel().tolist()))


def write_training_csv(path: str | Path, rows: KeypointRows) -> None:
    """Write Kaggle ``training.csv`` (keypoints, then ``Image``, then any extra columns)."""
    path = Path(path)
    if rows.images is None:
        raise ValueError("write_training_csv needs images")
    names = list(rows.extra)
    flat = rows.keypoints.reshape(len(rows), len(KEYPOINT_COLUMNS))

    def lines() -> Iterator[list[str]]:
        for i in range(len(rows)):
            yield ([("" if np.isnan(v) else f"{v:.4f}") for v in flat[i]]
                   + [_image_text(rows.images[i])] + [str(rows.extra[h][i]) for h in names])

    atomic_write_bytes(path, _csv_bytes(path, list(KEYPOINT_COLUMNS) + ["Image"] + names,
                                        lines()))


def read_test_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read Kaggle ``test.csv``: (ImageIds, (N, 96, 96) uint8 images)."""
    path = Path(path)
    rows, header, (ci, cm) = _table(path, ("ImageId", "Image"))
    ids, images = [], []
    for line, row in rows:
        with _at(path, line):
            _check_width(row, header)
            if not row[ci].strip().isdigit():
                raise BadRowError(f"ImageId {row[ci]!r} is not a positive integer")
            ids.append(int(row[ci]))
            images.append(_parse_image(row[cm]))
    return np.array(ids, np.int64), (np.stack(images) if images
                                     else np.zeros((0, SIZE, SIZE), np.uint8))


def write_test_csv(path: str | Path, ids: np.ndarray, images: np.ndarray) -> None:
    path = Path(path)
    atomic_write_bytes(path, _csv_bytes(path, ["ImageId", "Image"], (
        [str(int(i)), _image_text(im)] for i, im in zip(ids, images, strict=True))))


@dataclass
class IdLookup:
    """Kaggle ``IdLookupTable.csv``: which (ImageId, keypoint column) each RowId asks for."""

    row_ids: np.ndarray  # (M,) int64
    image_ids: np.ndarray  # (M,) int64
    features: np.ndarray  # (M,) int64 index into KEYPOINT_COLUMNS

    def subset(self, mask: np.ndarray) -> IdLookup:
        return IdLookup(self.row_ids[mask], self.image_ids[mask], self.features[mask])


def read_id_lookup(path: str | Path) -> IdLookup:
    path = Path(path)
    rows, header, (cr, ci, cf) = _table(path, ("RowId", "ImageId", "FeatureName"))
    col = {c: i for i, c in enumerate(KEYPOINT_COLUMNS)}
    out: list[tuple[int, int, int]] = []
    need = max(cr, ci, cf) + 1  # the real table leaves off the empty trailing Location
    for line, row in rows:
        with _at(path, line):
            if not need <= len(row) <= len(header):
                raise BadRowError(f"expected {len(header)} fields, found {len(row)}")
            if not (row[cr].strip().isdigit() and row[ci].strip().isdigit()):
                raise BadRowError(f"RowId/ImageId {row[cr]!r}/{row[ci]!r} are not integers")
            if row[cf] not in col:
                raise BadRowError(f"FeatureName {row[cf]!r} is not a keypoint column")
        out.append((int(row[cr]), int(row[ci]), col[row[cf]]))
    a = np.array(out, np.int64).reshape(-1, 3)
    return IdLookup(a[:, 0], a[:, 1], a[:, 2])


def write_submission(path: str | Path, lookup: IdLookup, image_ids: np.ndarray,
                     keypoints: np.ndarray) -> None:
    """Write the ``RowId,Location`` file for every RowId of ``lookup``.

    ``keypoints`` (N, 15, 2) are the predictions for ``image_ids``; values are clipped to the
    96x96 crop, as the Kaggle targets are. Raises if the table asks for an image with no
    prediction.
    """
    flat = np.clip(np.asarray(keypoints, np.float64).reshape(len(image_ids), -1), 0.0, SIZE)
    pos = {int(i): k for k, i in enumerate(image_ids)}
    missing = sorted(set(lookup.image_ids.tolist()) - set(pos))
    if missing:
        raise ValueError(f"no prediction for {len(missing)} ImageId(s) the lookup table asks "
                         f"for, e.g. {missing[:5]}")
    rows_ = np.array([pos[int(i)] for i in lookup.image_ids], np.int64)
    values = flat[rows_, lookup.features] if len(rows_) else np.zeros(0)
    path = Path(path)
    atomic_write_bytes(path, _csv_bytes(path, ["RowId", "Location"], (
        [str(int(r)), f"{v:.4f}"] for r, v in zip(lookup.row_ids, values, strict=True))))


def read_submission(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(RowIds, Locations) of a submission file."""
    path = Path(path)
    rows, _, (cr, cl) = _table(path, ("RowId", "Location"))
    ids, locs = [], []
    for line, row in rows:
        with _at(path, line):
            try:
                ids.append(int(row[cr]))
                locs.append(float(row[cl]))
            except (ValueError, IndexError):
                raise BadRowError(f"not a RowId,Location row: {row}") from None
    return np.array(ids, np.int64), np.array(locs, np.float64)


def make_submission(test_csv: str | Path, lookup_csv: str | Path, out: str | Path,
                    model: str | Path | None = None, threads: int = 1,
                    precision: str = "auto") -> int:
    """Predict every ``test.csv`` face with a keypoint model (default: the shipped one, in
    the build ``precision`` picks) and
    write the submission for ``IdLookupTable.csv``; returns the number of rows written."""
    from facecue.vision.runtime import KeypointModel

    ids, images = read_test_csv(test_csv)
    net = KeypointModel.load(model, threads=threads, precision=precision)
    pred = np.concatenate([net.predict(images[i:i + 512]) for i in range(0, len(images), 512)]
                          ) if len(images) else np.zeros((0, len(KEYPOINT_NAMES), 2))
    lookup = read_id_lookup(lookup_csv)
    write_submission(out, lookup, ids, pred)
    return len(lookup.row_ids)
