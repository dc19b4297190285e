"""Batch image augmentation on the CPU in torch: one affine warp per image, photometric jitter
and cutout, with any keypoints moved by the same warp (needs the ``train`` extra).

Keypoint crops also get the detector's measured box jitter and, optionally, a horizontal flip
with left/right swap (off by default: worse on val); a blanked rectangle (occlusion) leaves
the keypoints under it the target."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from facecue.labels import KEYPOINT_NAMES
from facecue.vision.crop import KEYPOINTS_CROP


def random_affine(n: int, gen: torch.Generator, rotate_deg: float, scale: float,
                  shift: float, flip: bool) -> torch.Tensor:
    """(n, 2, 3) matrices mapping output to input coordinates in [-1, 1] units."""
    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    a = uniform(-rotate_deg, rotate_deg) * math.pi / 180.0
    s = torch.exp(uniform(-math.log1p(scale), math.log1p(scale)))
    tx, ty = uniform(-shift, shift), uniform(-shift, shift)
    fx = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0) if flip else torch.ones(n)
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    return torch.stack([torch.stack([cos * fx, -sin, tx], 1),
                        torch.stack([sin * fx, cos, ty], 1)], 1)


def warp(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Warp (n, 1, h, w) images; outside pixels repeat the border."""
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                         align_corners=False)


def photometric(images: torch.Tensor, gen: torch.Generator, brightness: float = 0.25,
                contrast: float = 0.3) -> torch.Tensor:
    """Random brightness and contrast on raw 0..255 pixel batches."""
    n = images.shape[0]
    c = 1.0 + contrast * (2 * torch.rand(n, 1, 1, 1, generator=gen) - 1)
    b = 255.0 * brightness * (2 * torch.rand(n, 1, 1, 1, generator=gen) - 1)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return ((images - mean) * c + mean + b).clamp(0.0, 255.0)


def cutout(images: torch.Tensor, gen: torch.Generator, p: float = 0.5,
           max_frac: float = 0.4) -> torch.Tensor:
    """Blank a random rectangle (up to ``max_frac`` of each side) in a share ``p`` of images."""
    n, _, h, w = images.shape
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    ch = (torch.rand(n, generator=gen) * max_frac * h).long().view(n, 1, 1)
    cw = (torch.rand(n, generator=gen) * max_frac * w).long().view(n, 1, 1)
    cy = (torch.rand(n, generator=gen) * h).long().view(n, 1, 1)
    cx = (torch.rand(n, generator=gen) * w).long().view(n, 1, 1)
    box = (ys >= cy - ch // 2) & (ys < cy + ch // 2) & (xs >= cx - cw // 2) & (xs < cx + cw // 2)
    box &= (torch.rand(n, generator=gen) < p).view(n, 1, 1)
    return images.masked_fill(box.unsqueeze(1), 128.0)


def augment_faces(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Expression faces: rotation/scale/shift with a random mirror, photometric change and a
    blanked rectangle in half of them."""
    theta = random_affine(len(images), gen, rotate_deg=12, scale=0.12, shift=0.12, flip=True)
    return cutout(photometric(warp(images, theta), gen), gen)


# --- keypoint crops: the keypoints move with the pixels ---------------------------------------

SIZE = KEYPOINTS_CROP.size
# Keypoint order after a horizontal flip: the subject's left and right trade places.
FLIP_ORDER = tuple(
    KEYPOINT_NAMES.index(n.replace("left", "#").replace("right", "left").replace("#", "right"))
    for n in KEYPOINT_NAMES)
# Frame-to-frame Haar box noise, std in units of the box side: centre shift per axis and log
# side, as measured on the worst of four real clips (0.012-0.013 and 0.027; re-measured by
# benchmarks/bench_keypoints.py). Training on it keeps predictions steady under box wobble.
BOX_JITTER_SHIFT = 0.012
BOX_JITTER_LOG_SCALE = 0.027


def hflip(images: torch.Tensor, keypoints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror (N, 1, S, S) crops and their (N, 15, 2) keypoints, swapping left and right."""
    kp = keypoints[:, list(FLIP_ORDER)].clone()
    kp[..., 0] = SIZE - kp[..., 0]
    return images.flip(-1), kp


def warp_points(points: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Move (N, K, 2) crop-pixel points by the warp whose ``theta`` maps output to input."""
    u = points * (2.0 / SIZE) - 1.0
    a, t = theta[:, :, :2], theta[:, :, 2]
    u = torch.linalg.solve(a, (u - t[:, None]).transpose(1, 2)).transpose(1, 2)
    return (u + 1.0) * (SIZE / 2.0)


def augment_keypoints(images: torch.Tensor, keypoints: torch.Tensor, gen: torch.Generator,
                      flip_prob: float = 0.0, cutout_prob: float = 0.0
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flip, rotation/scale/shift, box jitter, photometric change and (in a share
    ``cutout_prob`` of crops) a blanked rectangle, over which the keypoints stay the target."""
    n = len(images)
    flip = torch.rand(n, generator=gen) < flip_prob
    fi, fk = hflip(images[flip], keypoints[flip])
    images, keypoints = images.clone(), keypoints.clone()
    images[flip], keypoints[flip] = fi, fk
    theta = random_affine(n, gen, rotate_deg=15.0, scale=0.10, shift=0.06, flip=False)
    box_unit = 2.0 / KEYPOINTS_CROP.scale  # the detector box side in [-1, 1] crop units
    theta[:, :, :2] *= torch.exp(BOX_JITTER_LOG_SCALE * torch.randn(n, generator=gen))[:, None,
                                                                                        None]
    theta[:, :, 2] += BOX_JITTER_SHIFT * box_unit * torch.randn(n, 2, generator=gen)
    images = photometric(warp(images, theta), gen)
    if cutout_prob:
        images = cutout(images, gen, p=cutout_prob)
    return images, warp_points(keypoints, theta)
