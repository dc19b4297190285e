"""Teacher labels: the mean keypoints of finished runs written onto more faces (the FER2013
Training faces, framed like keypoint crops) or blended into the real labels, for a student
net to learn from. Each labelled file gets a record (:mod:`facecue.train.lineage`) so that a
student's model card can name its teachers and count their training time. Needs the
``train`` extra."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from facecue.formats.fer2013 import read_fer2013
from facecue.formats.kaggle_keypoints import KeypointRows, read_training_csv, write_training_csv
from facecue.train.backbone import fer_as_keypoint_crops
from facecue.train.keypoints import load_run, predict
from facecue.train.lineage import record_labelling

BATCH = 512  # crops per forward pass while labelling


class MeanKeypoints(torch.nn.Module):
    """The mean of several keypoint networks' outputs (an ensemble of training runs)."""

    def __init__(self, members: list[torch.nn.Module]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)


def mean_of_runs(runs: list[str | Path]) -> MeanKeypoints:
    """The mean of finished runs' best networks: the teacher, and the shipped model."""
    return MeanKeypoints([load_run(run) for run in runs]).eval()


def pseudo_label(runs: list[str | Path], fer_data: str, out: str | Path, *,
                 limit: int = 0) -> int:
    """Label the FER2013 Training faces (framed like keypoint crops; the first ``limit`` when
    set) with the mean keypoints of finished runs, into a Kaggle-format training CSV: 28,709
    more faces for a student net to learn from (``train keypoints --data OUT``, then
    ``--init`` its best.pt on the real data). Returns the number of rows; ``OUT.json`` records
    how the file was made."""
    started = time.time()
    teacher = mean_of_runs(runs)
    faces = read_fer2013(fer_data)[0].split("Training").images
    crops = fer_as_keypoint_crops(faces[:limit] if limit else faces)
    rows = KeypointRows(keypoints=predict(teacher, crops, BATCH).astype(np.float32),
                        images=crops)
    write_training_csv(out, rows)
    record_labelling(out, runs, started, fer=str(fer_data), rows=len(rows))
    return len(rows)


def blend_labels(runs: list[str | Path], data: str, out: str | Path, splits: list[str],
                 weight: float = 0.5) -> int:
    """Copy a keypoints CSV with the rows of ``splits`` relabelled as ``weight`` x their own
    keypoints + (1 - ``weight``) x the finished runs' mean keypoints (the teacher's alone where
    a keypoint is missing): distillation on the real faces, which also evens out annotation
    noise. Rows of other splits (val when it scores, always test) are copied unchanged.
    Returns the number of rows relabelled; ``OUT.json`` records how, as ``pseudo_label``."""
    if not 0 <= weight <= 1:
        raise ValueError(f"weight must be in [0, 1], not {weight}")
    if "test" in splits:
        raise ValueError("the test rows are held out; they are never relabelled")
    started = time.time()
    rows = read_training_csv(data)
    if "Split" not in rows.extra:
        raise ValueError(f"{data} has no Split column (make it with `facecue data from-68`)")
    chosen = np.isin(rows.extra["Split"], splits)
    taught = predict(mean_of_runs(runs), rows.images[chosen], BATCH).astype(np.float32)
    own = rows.keypoints[chosen]
    rows.keypoints[chosen] = np.where(np.isnan(own), taught, weight * own + (1 - weight) * taught)
    write_training_csv(out, rows)
    record_labelling(out, runs, started, data=str(data), splits=list(splits), weight=weight,
                     rows=int(chosen.sum()))
    return int(chosen.sum())
