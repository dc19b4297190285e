"""Pictures a person would rather look at than read (needs matplotlib: facecue[plots])."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("plots need matplotlib: pip install 'facecue[plots]'") from None
    return plt


def _save(fig, path: str | Path) -> None:
    """Save atomically: render to a temporary file beside ``path``, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)


def plot_history(history: list[dict], path: str | Path, series: list[tuple[str, str]]) -> None:
    """Training curves: one panel per (history key, title)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(series), figsize=(4.5 * len(series), 3.2))
    epochs = [row["epoch"] for row in history]
    for ax, (key, title) in zip(np.atleast_1d(axes), series, strict=True):
        ax.plot(epochs, [row[key] for row in history], marker=".")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    _save(fig, path)
    plt.close(fig)


def plot_confusion(cm: np.ndarray, names: tuple[str, ...], path: str | Path) -> None:
    """Row-normalised confusion matrix with counts."""
    plt = _pyplot()
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(names), 0.8 + 0.9 * len(names)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{norm[i, j]:.2f}\n{cm[i, j]}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    _save(fig, path)
    plt.close(fig)


def _grid(n_images: int, count: int, seed: int, cell: tuple[float, float]):
    """A figure of up to ``count`` axes (6 columns) and the random image index for each."""
    plt = _pyplot()
    idx = np.random.default_rng(seed).choice(n_images, min(count, n_images), replace=False)
    cols = 6
    rows = int(np.ceil(len(idx) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell[0], rows * cell[1]))
    axes = np.atleast_1d(axes).ravel()
    for ax in axes:
        ax.axis("off")
    return plt, fig, list(zip(axes, idx, strict=False))


def plot_face_grid(images: np.ndarray, true: np.ndarray, pred: np.ndarray,
                   names: tuple[str, ...], path: str | Path, count: int = 36,
                   seed: int = 0) -> None:
    """A grid of faces titled "predicted / true", wrong ones in red."""
    plt, fig, cells = _grid(len(images), count, seed, (1.6, 1.8))
    for ax, i in cells:
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
        ok = pred[i] == true[i]
        ax.set_title(f"{names[pred[i]]}\n/ {names[true[i]]}", fontsize=7,
                     color="black" if ok else "red")
    _save(fig, path)
    plt.close(fig)


def plot_keypoint_grid(images: np.ndarray, true: np.ndarray, pred: np.ndarray,
                       path: str | Path, count: int = 24, seed: int = 0) -> None:
    """A grid of faces with true (green) and predicted (red) keypoints."""
    plt, fig, cells = _grid(len(images), count, seed, (1.8, 1.8))
    for ax, i in cells:
        # extent: pixel k spans [k, k + 1), the crop coordinates' convention
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=255,
                  extent=(0, images.shape[2], images.shape[1], 0))
        ax.scatter(true[i, :, 0], true[i, :, 1], s=6, c="lime", label="true")
        ax.scatter(pred[i, :, 0], pred[i, :, 1], s=6, c="red", marker="x", label="predicted")
    _save(fig, path)
    plt.close(fig)
