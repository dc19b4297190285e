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


def _point_errors(pred: np.ndarray, true: np.ndarray, norm_points: tuple[int, int]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row and keypoint: squared coordinate errors (0 where missing), which coordinates are
    present, point distances (NaN where missing), which points are present; and each row's
    mean point error over its normalising distance (NaN for a row without that distance)."""
    pred = np.asarray(pred, np.float64).reshape(len(true), -1, 2)
    true = np.asarray(true, np.float64).reshape(len(true), -1, 2)
    present = ~np.isnan(true)
    sq = np.where(present, (pred - true) ** 2, 0.0)
    point = ~np.isnan(true).any(-1)  # (N, K) both coordinates present
    dist = np.where(point, np.sqrt(sq.sum(-1)), np.nan)
    a, b = norm_points
    norm = np.linalg.norm(true[:, a] - true[:, b], axis=-1)
    row_nme = np.full(len(true), np.nan)
    ok = np.isfinite(norm) & (norm > 0) & point.any(-1)
    row_nme[ok] = np.nanmean(dist[ok], axis=1) / norm[ok]
    return sq, present, dist, point, row_nme


def accuracy_interval(correct: int, n: int, level: float = 0.95) -> list[float]:
    """Wilson score interval of an accuracy of ``correct`` out of ``n`` independent rows: how
    far the figure could move by the luck of which rows the test happened to hold."""
    from statistics import NormalDist

    if n <= 0:
        raise ValueError("an accuracy interval needs at least one row")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


# The least model probability :func:`cross_entropy_to_votes` takes the log of, the smallest
# normal float32: a float32 softmax rounds a probability below about 1e-45 to 0, whose log
# would make the mean infinite; every probability above it is taken as it is.
MIN_PROBABILITY = float(np.finfo(np.float32).tiny)


def cross_entropy_to_votes(probs: np.ndarray, votes: np.ndarray) -> float:
    """Mean over rows of -sum_k votes_k log probs_k (nats): how well a model's probabilities
    match the taggers' vote distribution (``votes``, rows summing to 1); lower is better, and
    its least possible value, the votes' own entropy, is reached by a model that gives exactly
    the vote shares. Probabilities below :data:`MIN_PROBABILITY` count as that."""
    probs = np.maximum(np.asarray(probs, np.float64), MIN_PROBABILITY)
    return float(-(np.asarray(votes, np.float64) * np.log(probs)).sum(1).mean())


def keypoint_report(pred: np.ndarray, true: np.ndarray, names: tuple[str, ...] | None = None,
                    norm_points: tuple[int, int] = (3, 5)) -> dict:
    """Keypoint errors over the coordinates present in ``true`` (NaN = missing).

    ``rmse_px96`` is the Kaggle metric (RMSE over present coordinates, crop pixels); ``nme`` is
    the mean point error over the normalising distance between ``norm_points`` (default: the
    two outer eye corners of the Kaggle set), over rows where both of those are present.
    """
    from facecue.labels import KEYPOINT_NAMES

    names = names or KEYPOINT_NAMES
    sq, present, dist, point, row_nme = _point_errors(pred, true, norm_points)
    a, b = norm_points
    per_row = row_nme[np.isfinite(row_nme)]
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


def identity_intervals(pred: np.ndarray, true: np.ndarray, identities: np.ndarray, *,
                       baseline: np.ndarray | None = None, rounds: int = 2000,
                       level: float = 0.95, seed: int = 0,
                       norm_points: tuple[int, int] = (3, 5)) -> dict:
    """Percentile intervals of ``rmse_px96`` and ``nme`` when the people are resampled.

    The faces of one person are not independent samples (same face, same annotator habits),
    so the bootstrap draws people with replacement and keeps all of each one's faces (a
    cluster bootstrap). With ``baseline`` (another model's keypoints for the same rows), the
    same draws also give the interval of the difference ``pred - baseline``: a difference
    whose interval excludes 0 is more than the luck of which people were held out.
    """
    people, index = np.unique(np.asarray(identities), return_inverse=True)
    if len(people) < 2:
        raise ValueError("intervals over people need at least two identities")
    counts = np.random.default_rng(seed).multinomial(
        len(people), np.full(len(people), 1 / len(people)), size=rounds).astype(np.float64)

    def sums(values: np.ndarray) -> np.ndarray:  # per person, then per bootstrap round
        return counts @ np.bincount(index, weights=values, minlength=len(people))

    def statistics(p: np.ndarray) -> dict[str, np.ndarray]:
        sq, present, _, _, row_nme = _point_errors(p, true, norm_points)
        has = np.isfinite(row_nme)
        return {"rmse_px96": np.sqrt(sums(sq.sum((1, 2))) / sums(present.sum((1, 2)))),
                "nme": sums(np.where(has, row_nme, 0.0)) / sums(has.astype(np.float64))}

    def interval(values: np.ndarray) -> list[float]:
        tail = 100 * (1 - level) / 2
        return [float(v) for v in np.nanpercentile(values, [tail, 100 - tail])]

    ours = statistics(pred)
    out: dict = {"level": level, "rounds": rounds, "seed": seed, "people": len(people),
                 **{k: interval(v) for k, v in ours.items()}}
    if baseline is not None:
        theirs = statistics(baseline)
        out["minus_baseline"] = {k: interval(ours[k] - theirs[k]) for k in ours}
    return out
