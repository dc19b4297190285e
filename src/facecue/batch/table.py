"""Faces as a table: one row per frame and face, the columns of ``faces.parquet``.

The rows are built once here, as an Arrow table with a fixed schema, so ``faces.parquet``
(written by ``facecue batch`` and ``facecue run --parquet``) and
:func:`to_dataframe` (from ``facecue.stream()`` / ``facecue.analyze()`` results) cannot drift
apart. Needs pyarrow and pandas: ``pip install 'facecue[scale]'``.

Columns, in order: ``time`` (s), ``frame``, ``source`` (the image file for image sources,
else null), ``track_id`` (null for stills), ``box_x``, ``box_y``, ``box_w``, ``box_h``,
``detection_score``; ``emotion`` (the label shown, smoothed in streams) and ``prob_LABEL``
for every class of the label set (smoothed); ``KEYPOINT_x`` / ``KEYPOINT_y`` for the 15
keypoints (smoothed); then the same unsmoothed: ``raw_emotion``, ``raw_prob_LABEL``,
``raw_KEYPOINT_x`` / ``raw_KEYPOINT_y``. Probabilities and keypoints are float32 as the
models give them (not rounded).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facecue.fileio import atomic_write_bytes, prepare_output
from facecue.labels import DEFAULT_LABELS, KEYPOINT_NAMES, class_names
from facecue.results import Face, FrameResult
from facecue.video.sinks import Sink

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

INSTALL = "pip install 'facecue[scale]'"


def _arrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise RuntimeError(f"Parquet tables need pyarrow and pandas: {INSTALL}") from None
    return pa, pq


def columns(labels: tuple[str, ...]) -> list[str]:
    """The column names for a label set's class names, in order."""
    points = [f"{k}_{axis}" for k in KEYPOINT_NAMES for axis in "xy"]
    probs = [f"prob_{k}" for k in labels]
    return ["time", "frame", "source", "track_id", "box_x", "box_y", "box_w", "box_h",
            "detection_score", "emotion", *probs, *points, "raw_emotion",
            *(f"raw_{c}" for c in probs), *(f"raw_{c}" for c in points)]


def schema(labels: tuple[str, ...]) -> pa.Schema:
    """The Arrow schema of :func:`columns`."""
    pa, _ = _arrow()
    kinds = {"time": pa.float64(), "frame": pa.int64(), "source": pa.string(),
             "track_id": pa.int64(), "box_x": pa.int32(), "box_y": pa.int32(),
             "box_w": pa.int32(), "box_h": pa.int32(), "detection_score": pa.float32(),
             "emotion": pa.string(), "raw_emotion": pa.string()}
    return pa.schema([(c, kinds.get(c, pa.float32())) for c in columns(labels)])


class FaceRows:
    """Rows gathered frame by frame, column-wise; :meth:`table` makes the Arrow table."""

    def __init__(self, labels: tuple[str, ...], keep: bool = False):
        self.labels, self.keep = labels, keep
        self.data: dict[str, list] = {c: [] for c in columns(labels)}
        self.results: list[FrameResult] = []  # with ``keep``: every frame, for a second use
        self.last_time = 0.0  # of the last frame added, with faces or not

    def add(self, result: FrameResult) -> None:
        self.last_time = result.time
        if self.keep:
            self.results.append(result)
        for face in result.faces:
            self._face(result, face)

    def _face(self, result: FrameResult, face: Face) -> None:
        d = self.data
        d["time"].append(float(result.time))
        d["frame"].append(int(result.index))
        d["source"].append(None if result.source is None else str(result.source))
        d["track_id"].append(face.track_id)
        for name, v in zip(("box_x", "box_y", "box_w", "box_h"), face.box, strict=True):
            d[name].append(int(v))
        d["detection_score"].append(float(face.detection_score))
        raw_expression = face.raw_expression or face.expression
        raw_points = face.keypoints if face.raw_keypoints is None else face.raw_keypoints
        for prefix, expression, points in (("", face.expression, face.keypoints),
                                           ("raw_", raw_expression, raw_points)):
            d[f"{prefix}emotion"].append(expression.label)
            for k, p in zip(expression.labels, expression.probs, strict=True):
                d[f"{prefix}prob_{k}"].append(float(p))
            for k, (x, y) in zip(KEYPOINT_NAMES, np.asarray(points, np.float32), strict=True):
                d[f"{prefix}{k}_x"].append(float(x))
                d[f"{prefix}{k}_y"].append(float(y))

    @property
    def count(self) -> int:
        return len(self.data["time"])

    def table(self) -> pa.Table:
        pa, _ = _arrow()
        return pa.Table.from_pydict(self.data, schema=schema(self.labels))


def to_table(frames: Iterable[FrameResult] | Iterable[Face],
             labels: str | tuple[str, ...] | None = None) -> pa.Table:
    """The Arrow table of :func:`to_dataframe`, built as the frames come (a long stream is
    not held in memory)."""
    items = iter(frames)
    first = next(items, None)
    if isinstance(first, Face):  # analyze(): the faces of one image
        items = iter([FrameResult(index=0, time=0.0, width=0, height=0,
                                  faces=[first, *items])])
    elif first is not None:
        items = itertools.chain([first], items)
    names = None if labels is None else (
        class_names(labels) if isinstance(labels, str) else tuple(labels))
    rows = None if names is None else FaceRows(names)
    for result in items:
        if rows is None:  # the columns are the first face's label set
            if not result.faces:
                continue  # a frame without faces gives no row
            rows = FaceRows(result.faces[0].expression.labels)
        rows.add(result)
    return (rows or FaceRows(class_names(DEFAULT_LABELS))).table()


def to_dataframe(frames: Iterable[FrameResult] | Iterable[Face],
                 labels: str | tuple[str, ...] | None = None) -> pd.DataFrame:
    """A pandas DataFrame with one row per frame and face, with the columns of
    ``faces.parquet`` (this module's docstring), from ``facecue.stream()`` results (or the
    faces of ``facecue.analyze()``: frame 0, time 0). ``labels``: the label set (name or
    class names) for the probability columns when there may be no face; by default the
    faces' own. Needs ``facecue[scale]``."""
    try:
        import pandas  # noqa: F401  (to_pandas needs it)
    except ImportError:
        raise RuntimeError(f"DataFrames need pandas: {INSTALL}") from None
    return to_table(frames, labels).to_pandas()


def write_parquet(path: str | Path, table: pa.Table) -> Path:
    """Write ``table`` to ``path`` atomically (a temporary file renamed into place)."""
    pa, pq = _arrow()
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    atomic_write_bytes(path, buffer.getvalue().to_pybytes())
    return Path(path)


class ParquetSink(Sink):
    """``faces.parquet`` for :func:`facecue.run` (``facecue run --parquet``): rows gathered
    as frames come, the file written atomically when the run ends."""

    def __init__(self, path: str | Path, labels: tuple[str, ...], keep: bool = False):
        _arrow()  # fail before the first frame when pyarrow is missing
        self.path = Path(path)
        prepare_output(self.path)
        self.rows = FaceRows(labels, keep)  # keep: the frames too (captions fuse them)

    def write(self, image: np.ndarray | None, result: FrameResult) -> None:
        self.rows.add(result)

    def close(self) -> None:
        self.files = (write_parquet(self.path, self.rows.table()),)
