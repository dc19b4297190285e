"""FER2013 reader: the Kaggle ``fer2013.csv`` (plain or .gz) and the ``icml_face_data.csv`` variant.

Every row is validated; a bad row raises :class:`BadRowError` naming its line, unless the caller
asks to skip bad rows, in which case they are counted and reported in :class:`ReadReport`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facecue.formats.csvfile import BadRowError, csv_rows
from facecue.labels import fer_to_class

USAGES = ("Training", "PublicTest", "PrivateTest")
N_PIXELS = 48 * 48


@dataclass
class ReadReport:
    """What a read kept and, with ``skip_bad``, which lines it left out and why."""

    rows: int = 0
    skipped_lines: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # first few skipped-row messages

    @property
    def skipped(self) -> int:
        return len(self.skipped_lines)

    def skip(self, line: int, message: str) -> None:
        self.skipped_lines.append(line)
        if len(self.problems) < 20:
            self.problems.append(message)

    def summary(self, shown: int = 10) -> str:
        """``skipped 2 bad rows (lines 4, 9)``, naming at most ``shown`` lines."""
        lines = ", ".join(map(str, self.skipped_lines[:shown]))
        if self.skipped > shown:
            lines += f" and {self.skipped - shown} more"
        s = "" if self.skipped == 1 else "s"
        return f"skipped {self.skipped} bad row{s} (line{s} {lines})"


@dataclass
class Fer2013:
    """FER2013 rows: 48x48 grayscale images with their FER label id, Usage and file line."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64 FER2013 label ids 0..6
    usage: np.ndarray  # (N,) str
    lines: np.ndarray  # (N,) file line of each row (1 = header)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask: np.ndarray) -> Fer2013:
        return Fer2013(self.images[mask], self.labels[mask], self.usage[mask], self.lines[mask])

    def split(self, usage: str) -> Fer2013:
        """Rows of one Usage; ``"all"`` keeps every row."""
        if usage == "all":
            return self
        if usage not in USAGES:
            raise ValueError(f"unknown split {usage!r}; choose one of {USAGES} or 'all'")
        return self.subset(self.usage == usage)

    def for_labels(self, labels: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Images, class indices of label set ``labels``, and the kept-row mask."""
        mapping = fer_to_class(labels)
        keep = np.isin(self.labels, list(mapping))
        lut = np.full(7, -1, dtype=np.int64)
        for fer, cls in mapping.items():
            lut[fer] = cls
        return self.images[keep], lut[self.labels[keep]], keep

    def image_hashes(self) -> np.ndarray:
        """A hash of each image's bytes, for finding exact duplicates."""
        return np.array([hashlib.blake2b(im.tobytes(), digest_size=12).hexdigest()
                         for im in self.images])


def read_fer2013(path: str | Path, skip_bad: bool = False) -> tuple[Fer2013, ReadReport]:
    """Read and validate a FER2013 CSV (``emotion,pixels,Usage`` in any column order/spacing)."""
    report = ReadReport()
    rows = csv_rows(Path(path), "FER2013", on_bad=report.skip if skip_bad else None)
    try:
        header_line, header = next(rows)
    except StopIteration:
        raise BadRowError(f"{path}: empty file, expected a header row") from None
    header = [h.strip().lower() for h in header]
    missing = {"emotion", "pixels", "usage"} - set(header)
    if missing:
        raise BadRowError(f"{path}: line {header_line}: header lacks column(s) {sorted(missing)}")
    ie, ip, iu = header.index("emotion"), header.index("pixels"), header.index("usage")
    images, labels, usage, lines = [], [], [], []
    for line, row in rows:
        try:
            label, img, use = _parse_row(row, len(header), ie, ip, iu)
        except BadRowError as e:
            msg = f"{path}: line {line}: {e}"
            if not skip_bad:
                raise BadRowError(msg) from None
            report.skip(line, msg)
            continue
        images.append(img)
        labels.append(label)
        usage.append(use)
        lines.append(line)
    report.rows = len(labels)
    data = Fer2013(
        images=np.stack(images) if images else np.zeros((0, 48, 48), np.uint8),
        labels=np.array(labels, dtype=np.int64),
        usage=np.array(usage, dtype=object),
        lines=np.array(lines, dtype=np.int64),
    )
    return data, report


def _parse_row(row: list[str], ncols: int, ie: int, ip: int, iu: int):
    if len(row) != ncols:
        raise BadRowError(f"expected {ncols} fields, found {len(row)}")
    try:
        label = int(row[ie])
    except ValueError:
        raise BadRowError(f"emotion {row[ie]!r} is not an integer") from None
    if not 0 <= label <= 6:
        raise BadRowError(f"emotion {label} is not a FER2013 label (0-6)")
    use = row[iu].strip()
    if use not in USAGES:
        raise BadRowError(f"Usage {use!r} is not one of {', '.join(USAGES)}")
    tokens = row[ip].split()
    if len(tokens) != N_PIXELS:
        raise BadRowError(f"pixels has {len(tokens)} values, expected {N_PIXELS}")
    try:
        px = np.array(tokens, dtype=np.int64)
    except ValueError:
        bad = next(t for t in tokens if not t.lstrip("-").isdigit())
        raise BadRowError(f"pixel value {bad!r} is not an integer") from None
    if px.min() < 0 or px.max() > 255:
        raise BadRowError(f"pixel values must lie in 0-255, found {px.min()}..{px.max()}")
    return label, px.astype(np.uint8).reshape(48, 48), use


def cross_split_duplicates(data: Fer2013, split: str) -> np.ndarray:
    """Mask over ``data.split(split)`` rows whose exact image also occurs in another Usage.

    For a test split that other Usage is Training (the leak that matters); for Training it is
    either test split; for ``all``, any second Usage.
    """
    hashes, usage = data.image_hashes(), data.usage
    if split == "all":
        seen: dict[str, set[str]] = {}
        for h, u in zip(hashes, usage, strict=True):
            seen.setdefault(h, set()).add(u)
        return np.array([len(seen[h]) > 1 for h in hashes], dtype=bool)
    ref_usages = ["Training"] if split != "Training" else [u for u in USAGES if u != "Training"]
    ref = set(hashes[np.isin(usage, ref_usages)])
    return np.array([h in ref for h in hashes[usage == split]], dtype=bool)


def label_counts(data: Fer2013) -> dict[str, dict[int, int]]:
    return {u: dict(sorted(Counter(data.labels[data.usage == u].tolist()).items()))
            for u in USAGES}
