"""Network definitions (PyTorch; needs the ``train`` extra).

Both nets take raw grayscale pixel values (float, 0..255) and normalise inside the graph, so the
exported ONNX files need no preprocessing beyond the crop.
"""

from __future__ import annotations

import torch
from torch import nn

from facecue.labels import KEYPOINT_NAMES


def _stage(cin: int, cout: int, convs: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for k in range(convs):
        layers += [
            nn.Conv2d(cin if k == 0 else cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        ]
    return layers + [nn.MaxPool2d(2)]


class VGGNet(nn.Module):
    """A small VGG-style CNN: conv stages with max-pooling, global average pool, linear head."""

    def __init__(self, outputs: int, widths=(24, 48, 96, 192), convs=(1, 2, 2, 2),
                 dropout: float = 0.3, mean: float = 128.0, std: float = 64.0):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for w, n in zip(widths, convs, strict=True):
            layers += _stage(cin, w, n)
            cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, outputs))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        return self.head(self.pool(self.features(x)))


def expression_net(num_classes: int, width: int = 24) -> VGGNet:
    """Expression classifier for 48x48 crops; outputs logits."""
    return VGGNet(num_classes, widths=(width, 2 * width, 4 * width, 8 * width))


class KeypointNet(VGGNet):
    """15-keypoint regressor for 96x96 crops; outputs 30 values, pixel coordinates in the crop.

    The head predicts offsets from the crop centre in units of half the crop side, which keeps
    the regression targets near zero.
    """

    def __init__(self, width: int = 24, size: int = 96):
        super().__init__(2 * len(KEYPOINT_NAMES),
                         widths=(width, 2 * width, 4 * width, 8 * width, 8 * width),
                         convs=(1, 2, 2, 2, 2), dropout=0.1)
        self.half = size / 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * self.half + self.half
