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


class KeypointNet(nn.Module):
    """15-keypoint regressor for 96x96 crops; outputs 30 values, pixel coordinates in the crop.

    Conv stages down to a 12x12 grid, one heat map per keypoint, and a soft-argmax (the
    expected cell position under the map's softmax), so coordinates stay tied to where things
    are in the image. A pooled-feature regression head (measured) stalled at the mean shape.
    ``context_head`` (a dilated 3x3 heat-map conv, 32 px more context) and ``fine_heatmaps``
    (maps upsampled to 24x24 and sharpened by a 1x1 conv of the 24x24 features) are better on
    val; the shipped members have both (int8 with uint8 activations keeps them fast, see
    :func:`facecue.train.export.quantize_int8`).
    """

    FINE_SPLIT = 17  # index of the third stage's max-pool in ``features`` (24x24 -> 12x12)

    def __init__(self, width: int = 16, size: int = 96, mean: float = 128.0,
                 std: float = 64.0, context_head: bool = False, fine_heatmaps: bool = False):
        super().__init__()
        w, maps = width, len(KEYPOINT_NAMES)
        self.features = nn.Sequential(*_stage(1, w, 1), *_stage(w, 2 * w, 2),
                                      *_stage(2 * w, 4 * w, 2), *_stage(4 * w, 8 * w, 2)[:-1])
        self.heatmaps = (nn.Conv2d(8 * w, maps, 3, padding=2, dilation=2)
                         if context_head else nn.Conv2d(8 * w, maps, 1))
        self.fine = nn.Conv2d(4 * w, maps, 1) if fine_heatmaps else None
        self.cells = cells = size // (4 if fine_heatmaps else 8)
        centres = (torch.arange(cells, dtype=torch.float32) + 0.5) * (size / cells)
        self.register_buffer("centres", centres, persistent=False)
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        if self.fine is None:
            h = self.heatmaps(self.features(x))
        else:
            f = self.features[:self.FINE_SPLIT](x)
            h = self.heatmaps(self.features[self.FINE_SPLIT:](f))
            # a fixed size (not a scale factor) keeps onnxruntime's shape inference whole
            h = nn.functional.interpolate(h, size=(self.cells, self.cells), mode="nearest")
            h = h + self.fine(f)
        n, k, gh, gw = h.shape
        p = torch.softmax(h.flatten(2), -1).view(n, k, gh, gw)
        xs = (p.sum(2) * self.centres).sum(-1)
        ys = (p.sum(3) * self.centres).sum(-1)
        return torch.stack([xs, ys], -1).flatten(1)
