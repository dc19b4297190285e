"""Batch image augmentation on the CPU in torch: one affine warp per image, photometric jitter
and cutout, with any keypoints moved by the same warp (needs the ``train`` extra)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


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
