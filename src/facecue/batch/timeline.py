"""A video's emotions over time as a PNG: one band per face ID, the smoothed probability of
every emotion stacked, so a reader sees at a glance who felt what when (needs matplotlib,
which ``facecue[scale]`` brings)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from facecue.fileio import atomic_write_bytes

MAX_TRACKS = 6  # bands drawn: the face IDs seen longest


def load_matplotlib():
    """matplotlib (drawing into files only) and its Figure class, or what to install."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeError("the timeline needs matplotlib: pip install 'facecue[scale]'"
                           ) from None
    return matplotlib, Figure


def plot_timeline(rows: dict[str, list], path: str | Path, labels: tuple[str, ...],
                  title: str, end: float) -> Path:
    """Draw the timeline of a video's face rows (:class:`facecue.batch.table.FaceRows`'s
    columns: ``time``, ``track_id``, ``prob_LABEL``) up to ``end`` seconds into ``path``
    (atomically); a video without faces gets a picture that says so."""
    matplotlib, Figure = load_matplotlib()
    probs = np.array([rows[f"prob_{k}"] for k in labels], np.float32).reshape(len(labels), -1)
    times = np.array(rows["time"], np.float64)
    ids = np.array([-1 if t is None else t for t in rows["track_id"]], np.int64)
    tracks = {int(t): ids == t for t in np.unique(ids)}
    shown = sorted(sorted(tracks, key=lambda t: -tracks[t].sum())[:MAX_TRACKS])
    fig = Figure(figsize=(10, 1.2 + 1.4 * max(len(shown), 1)))
    axes = fig.subplots(max(len(shown), 1), 1, sharex=True, squeeze=False)[:, 0]
    colors = [matplotlib.colormaps["tab10"](i) for i in range(len(labels))]
    for ax, tid in zip(axes, shown, strict=False):
        ax.stackplot(times[tracks[tid]], probs[:, tracks[tid]], colors=colors, labels=labels,
                     step="post")
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"face {tid}" if tid >= 0 else "faces")
    if not shown:
        axes[0].text(0.5, 0.5, "no face", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_yticks([])
    axes[0].set_xlim(0, max(end, 1e-3))
    axes[0].set_title(Path(title).name, fontsize=10, loc="left")
    axes[-1].set_xlabel("time (s)")
    if shown:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="upper right", ncol=len(labels),
                   fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.93 if shown else 1))
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=80)
    atomic_write_bytes(path, png.getvalue())
    return Path(path)
