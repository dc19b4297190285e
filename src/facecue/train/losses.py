"""Training losses (needs the ``train`` extra): keypoint regression over the coordinates that
are present (the Kaggle rows miss some keypoints; a missing one is NaN and trains nothing), and
cross-entropy to a target distribution (the FER+ votes)."""

from __future__ import annotations

import torch


def masked_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Smooth-L1 (pixels) over the target coordinates that are present (not NaN)."""
    target = target.reshape(pred.shape)
    mask = ~torch.isnan(target)
    if not mask.any():
        return pred.sum() * 0.0
    return torch.nn.functional.smooth_l1_loss(pred[mask], target[mask], beta=1.0)


def point_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean distance (pixels) from each present target point (x and y not NaN) to its
    prediction: the numerator of NME, so training lowers what the benchmark measures, where
    smooth-L1 is quadratic for the sub-pixel errors that dominate."""
    pred = pred.reshape(len(pred), -1, 2)
    target = target.reshape(pred.shape)
    present = ~torch.isnan(target).any(-1)
    if not present.any():
        return pred.sum() * 0.0
    diff = pred[present] - target[present]
    return torch.sqrt((diff * diff).sum(-1) + 1e-6).mean()


LOSSES = {"smooth-l1": masked_loss, "point": point_loss}


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -sum_k target_k log softmax(logits)_k: cross-entropy to a
    distribution over the classes (each target row sums to 1), such as the share of ten
    taggers' votes, so a face the taggers split on teaches the split rather than one guess
    (the FER+ paper's cross-entropy mode)."""
    return -(target * torch.log_softmax(logits, 1)).sum(1).mean()
