"""Classification and keypoint metrics in plain numpy."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """(k, k) counts, rows = true class, columns = predicted class."""
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def classification_report(y_true: np.ndarray, y_pred: np.ndarray,
                          names: tuple[str, ...]) -> dict:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix."""
    cm = confusion_matrix(y_true, y_pred, len(names))
    tp = np.diag(cm).astype(float)
    precision = np.divide(tp, cm.sum(0), out=np.zeros_like(tp), where=cm.sum(0) > 0)
    recall = np.divide(tp, cm.sum(1), out=np.zeros_like(tp), where=cm.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp),
                   where=(precision + recall) > 0)
    n = int(cm.sum())
    return {
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "n": n,
        "per_class": {name: {"precision": round(float(p), 4), "recall": round(float(r), 4),
                             "f1": round(float(f), 4), "support": int(s)}
                      for name, p, r, f, s in zip(names, precision, recall, f1, cm.sum(1),
                                                  strict=True)},
        "confusion_matrix": cm.tolist(),
    }


def keypoint_report(pred: np.ndarray, true: np.ndarray, names: tuple[str, ...] | None = None,
                    norm_points: tuple[int, int] = (3, 5)) -> dict:
    """Keypoint errors over the coordinates present in ``true`` (NaN = missing).

    ``rmse_px96`` is the Kaggle metric (RMSE over present coordinates, crop pixels); ``nme`` is
    the mean point error over the normalising distance between ``norm_points`` (default: the
    two outer eye corners of the Kaggle set), over rows where both of those are present.
    """
    from facecue.labels import KEYPOINT_NAMES

    names = names or KEYPOINT_NAMES
    pred = np.asarray(pred, np.float64).reshape(len(true), -1, 2)
    true = np.asarray(true, np.float64).reshape(len(true), -1, 2)
    present = ~np.isnan(true)
    sq = np.where(present, (pred - true) ** 2, 0.0)
    point = ~np.isnan(true).any(-1)  # (N, K) both coordinates present
    dist = np.where(point, np.sqrt(sq.sum(-1)), np.nan)
    a, b = norm_points
    norm = np.linalg.norm(true[:, a] - true[:, b], axis=-1)
    has_norm = np.isfinite(norm) & (norm > 0)
    per_row = np.nanmean(dist[has_norm], axis=1) / norm[has_norm] if has_norm.any() \
        else np.zeros(0)
    return {
        "n": int(len(true)),
        "coordinates": int(present.sum()),
        "rmse_px96": float(np.sqrt(sq.sum() / max(present.sum(), 1))),
        "mean_point_error_px96": float(np.nanmean(dist)) if point.any() else float("nan"),
        "nme": float(per_row.mean()) if len(per_row) else float("nan"),
        "nme_n": int(len(per_row)),
        "nme_norm": f"{names[a]}-{names[b]} distance",
        "per_keypoint": {
            name: {"mean_px96": round(float(np.nanmean(dist[:, k])), 4) if point[:, k].any()
                   else None,
                   "rmse_px96": round(float(np.sqrt(sq[:, k].sum() / present[:, k].sum())), 4)
                   if present[:, k].any() else None,
                   "n": int(point[:, k].sum())}
            for k, name in enumerate(names)},
    }
