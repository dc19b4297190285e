"""Evaluate the shipped models with onnxruntime only: expression on FER2013-format data (and
ferplus8 on its FER+ votes), keypoints on Kaggle-format CSVs or 68-point folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facecue.evaluation.metrics import (
    accuracy_interval,
    classification_report,
    cross_entropy_to_votes,
    identity_intervals,
    keypoint_report,
)
from facecue.fileio import file_sha256
from facecue.formats.fer2013 import Fer2013, cross_split_duplicates, read_fer2013
from facecue.formats.ferplus import (
    MAJORITY_RULE,
    check_ferplus_options,
    load_ferplus,
    vote_distribution,
)
from facecue.formats.kaggle_keypoints import KeypointRows
from facecue.labels import class_names
from facecue.vision.runtime import (
    ExpressionModel,
    KeypointModel,
    check_shipped_expression,
    model_file,
)


def _check_limit(limit: int) -> None:
    if limit < 0:  # a slice [:-1] would quietly drop the last row
        raise ValueError(f"limit must be 0 (every row) or more, not {limit}")


def evaluate_expression(data: str | Path, labels: str = "fer7", split: str = "PrivateTest",
                        model: str | Path | None = None, limit: int = 0,
                        plots: str | Path | None = None, skip_bad: bool = False,
                        threads: int = 2, precision: str = "auto",
                        ferplus: str | Path | None = None,
                        provenance: str | Path | None = None) -> dict:
    """Accuracy with its 95 % Wilson interval, per-class precision/recall, confusion matrix on
    ``split``, and the same accuracy with the split's images that also occur in Training
    removed (FER2013 has such duplicates). With ``skip_bad``, the rows left out are counted and
    their lines named (``skipped_*``). ``model`` defaults to the shipped one in the build
    ``precision`` picks.

    ``ferplus8`` is scored on the FER+ votes of ``ferplus`` (:func:`_ferplus_rows`): the
    clear-majority emotion is the target, and ``cross_entropy_to_votes`` says how well the
    model's probabilities match the votes."""
    _check_limit(limit)
    check_ferplus_options(labels, ferplus, skip_bad)
    if model is None:
        check_shipped_expression(labels)  # before the data is read
    fer, read_report = read_fer2013(data, skip_bad=skip_bad)
    dup_all = cross_split_duplicates(fer, split)
    votes, extra = None, {}
    if ferplus is None:
        rows = fer.split(split)
        images, targets, keep = rows.for_labels(labels)
        dup = dup_all[keep]
    else:
        images, targets, votes, dup, extra = _ferplus_rows(fer, dup_all, data, ferplus,
                                                           provenance, split)
    if limit:
        images, targets, dup = images[:limit], targets[:limit], dup[:limit]
        votes = None if votes is None else votes[:limit]
    if len(images) == 0:
        raise ValueError(f"{data}: no {split} rows for label set {labels}")
    model_path = model_file(f"expression_{labels}", model, precision)
    net = ExpressionModel.load(labels, model_path, threads=threads)
    probs = np.concatenate([net.predict_proba(images[i:i + 1024])
                            for i in range(0, len(images), 1024)])
    pred = probs.argmax(1)
    names = class_names(labels)
    report = {"labels": labels, "split": split, "data": str(data), "model": str(model_path),
              "model_sha256": file_sha256(model_path), "skipped_bad_rows": read_report.skipped,
              "skipped_lines": read_report.skipped_lines, "skipped_why": read_report.problems,
              **classification_report(targets, pred, names)}
    report["accuracy_interval95"] = accuracy_interval(int((pred == targets).sum()), len(pred))
    if votes is not None:
        report["cross_entropy_to_votes"] = cross_entropy_to_votes(probs, votes)
    report |= extra
    clean = ~dup
    report["dedup"] = {"removed": int(dup.sum()), "n": int(clean.sum()),
                       "accuracy": float((pred[clean] == targets[clean]).mean())
                       if clean.any() else 0.0}
    if plots:
        from facecue.evaluation.plots import plot_confusion, plot_face_grid

        out = Path(plots)
        out.mkdir(parents=True, exist_ok=True)
        plot_confusion(np.array(report["confusion_matrix"]), names,
                       out / f"confusion_{labels}_{split}.png")
        plot_face_grid(images, targets, pred, names, out / f"faces_{labels}_{split}.png")
    return report


def _ferplus_rows(fer: Fer2013, dup_all: np.ndarray, data: str | Path, ferplus: str | Path,
                  provenance: str | Path | None, split: str):
    """The ``split`` rows the FER+ paper scores: images, clear-majority emotions, vote
    distributions, cross-split duplicate flags, and the report's account of the rows.

    Rows of uncertain alignment (:func:`facecue.formats.ferplus.load_ferplus`) and rows
    without a clear emotion majority (:func:`facecue.formats.ferplus.clear_majority`: NF or
    unknown majority, or none) are left out and counted."""
    plus, join = load_ferplus(fer, data, ferplus, provenance)
    in_split = np.ones(len(fer), bool) if split == "all" else fer.usage == split
    dup_rows = np.zeros(len(fer), bool)
    dup_rows[in_split] = dup_all
    rows = plus.split(split)
    images, targets, keep = rows.for_majority()
    votes = vote_distribution(rows.votes[keep])
    uncertain = sum(n for u, n in join.uncertain.items() if split in ("all", u))
    extra = {"ferplus": str(ferplus), "provenance": join.provenance,
             "majority_rule": MAJORITY_RULE, "rows_in_split": int(in_split.sum()),
             "left_out": {"uncertain_alignment": uncertain, **rows.left_out()},
             "short_vote_lines": join.short_vote_lines}
    return images, targets, votes, dup_rows[rows.rows[keep]], extra


def evaluate_keypoints(data: str | Path | KeypointRows, split: str | None = None,
                       model: str | Path | None = None, limit: int = 0,
                       plots: str | Path | None = None, threads: int = 1,
                       precision: str = "auto") -> dict:
    """Kaggle RMSE, NME and per-keypoint errors of a keypoint model on ``split`` rows, with
    their 95 % intervals over the people when the rows name them (a 68-point folder does).

    ``data`` is a Kaggle-format CSV, a 68-point folder (converted with the pipeline's detector
    and crop) or rows already read. ``split`` defaults to ``test`` (held-out identities) when
    the data has a Split column, else to ``all``. ``model`` defaults to the shipped one in the
    build ``precision`` picks.
    """
    from facecue.formats.landmarks68 import load_keypoint_data

    _check_limit(limit)
    rows = data if isinstance(data, KeypointRows) else load_keypoint_data(data)
    split = split or ("test" if "Split" in rows.extra else "all")
    rows = rows.split(split)
    if limit:
        rows = rows.subset(np.arange(min(limit, len(rows))))
    if len(rows) == 0:
        raise ValueError(f"{data}: no {split} rows with keypoints")
    model_path = model_file("keypoints15", model, precision)
    net = KeypointModel.load(model_path, threads=threads)
    pred = np.concatenate([net.predict(rows.images[i:i + 512])
                           for i in range(0, len(rows), 512)])
    report = {"split": split, "data": str(data) if not isinstance(data, KeypointRows) else None,
              "model": str(model_path), "model_sha256": file_sha256(model_path),
              **keypoint_report(pred, rows.keypoints)}
    if "Fallback" in rows.extra:
        report["fallback_box_rows"] = int((rows.extra["Fallback"] == "1").sum())
    if "Identity" in rows.extra and len(set(rows.extra["Identity"].tolist())) > 1:
        report["interval_over_people"] = identity_intervals(pred, rows.keypoints,
                                                            rows.extra["Identity"])
    if plots:
        from facecue.evaluation.plots import plot_keypoint_grid

        plot_keypoint_grid(rows.images, rows.keypoints, pred,
                           Path(plots) / f"keypoints_{split}.png")
    return report
