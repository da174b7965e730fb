"""``vgg-fer``: the strong single-network FER2013 baseline (VGG variant of Khaireddin & Chen,
2021, 73.3% PrivateTest): four blocks of two 3x3 convs (64/128/256/512) with batch norm and
max pooling, then a fully connected head with dropout.

Known recipe (in :data:`RECIPE`): SGD with Nesterov momentum 0.9, lr 0.01, weight decay 1e-4,
reduce-on-plateau (factor 0.75, patience 5) on validation accuracy, random scale/shift/rotation
/flip/erasing, 40 px random crops and ten-crop test-time augmentation, batch 64, ~300 epochs
in the paper (we default to 100).
"""

from __future__ import annotations

import torch
from torch import nn

RECIPE = {
    "optimizer": "sgd",
    "lr": 0.01,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 1e-4,
    "batch_size": 64,
    "epochs": 100,
    "scheduler": "plateau",
    "plateau_factor": 0.75,
    "plateau_patience": 5,
    "crop_size": 40,
    "tta": "tencrop",
    "augment": {"scale": 0.2, "translate": 0.2, "rotation": 10.0, "flip": True, "erasing": 0.5},
}


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    layers = []
    for c in (c_in, c_out):
        layers += [nn.Conv2d(c, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


class VGGFer(nn.Module):
    """Four VGG stages and a two-layer head; works for any input side divisible by 16."""

    def __init__(self, num_classes: int, in_size: int = 40, dropout: float = 0.2,
                 widths: tuple[int, int, int, int] = (64, 128, 256, 512),
                 hidden: int = 1024) -> None:
        super().__init__()
        c1, c2, c3, c4 = widths
        self.features = nn.Sequential(
            _stage(1, c1), _stage(c1, c2), _stage(c2, c3), _stage(c3, c4),
            nn.AdaptiveAvgPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c4 * 4, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features."""
        return self.head[:-1](self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build(num_classes: int, in_size: int = 40, **_: object) -> nn.Module:
    """Build the network for ``num_classes`` outputs."""
    return VGGFer(num_classes, in_size)
