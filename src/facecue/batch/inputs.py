"""What a batch is given: a folder (its videos, recursively), a glob, or a manifest (CSV or
Parquet) listing paths and URLs."""

from __future__ import annotations

import csv
import glob
from pathlib import Path

# Suffixes of the files a folder or glob contributes (a manifest lists anything OpenCV reads).
VIDEO_EXTS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv",
              ".ts", ".mts", ".3gp", ".ogv"}
MANIFEST_COLUMNS = ("path", "video", "url", "file")  # the column a manifest's entries are in


def find_videos(spec: str | Path) -> list[str]:
    """The videos of ``spec``, in a stable order: a folder's video files (recursively, by
    path), a glob's matches (``**`` recurses), or a manifest's entries in its order (a
    ``.csv`` or ``.parquet`` file with a ``path``, ``video``, ``url`` or ``file`` column, or
    a CSV of one unnamed column; relative paths are read from the manifest's folder).
    Duplicates are dropped. ``FileNotFoundError`` when nothing matches."""
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        found = sorted(str(p) for p in path.rglob("*")
                       if p.suffix.lower() in VIDEO_EXTS and p.is_file())
    elif path.is_file() and path.suffix.lower() in (".csv", ".parquet"):
        found = _manifest(path)
    elif any(c in text for c in "*?["):
        found = sorted(p for p in glob.glob(text, recursive=True)
                       if Path(p).suffix.lower() in VIDEO_EXTS and Path(p).is_file())
    elif path.is_file() or "://" in text:
        found = [text]
    else:
        raise FileNotFoundError(f"no such folder, file or manifest: {text}")
    if not found:
        raise FileNotFoundError(f"no videos in {text} (video files end in "
                                f"{', '.join(sorted(VIDEO_EXTS))})")
    return list(dict.fromkeys(found))


def _manifest(path: Path) -> list[str]:
    if path.suffix.lower() == ".parquet":
        from facecue.batch.table import _arrow

        _, pq = _arrow()
        table = pq.read_table(path)
        column = next((c for c in MANIFEST_COLUMNS if c in table.column_names), None)
        if column is None:
            raise ValueError(f"{path} has none of the columns {', '.join(MANIFEST_COLUMNS)}")
        entries = [str(v) for v in table.column(column).to_pylist() if v]
    else:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f) if r and r[0].strip()]
        head = [c.strip().lower() for c in rows[0]] if rows else []
        column = next((c for c in MANIFEST_COLUMNS if c in head), None)
        if column is None:  # one unnamed column of paths
            entries = [r[0].strip() for r in rows]
        else:
            i = head.index(column)
            entries = [r[i].strip() for r in rows[1:] if len(r) > i and r[i].strip()]
    return [e if "://" in e or Path(e).is_absolute() else str(path.parent / e) for e in entries]
