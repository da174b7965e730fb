"""``zhu-cnn``: the small classifier of Zhu et al. (PAKDD 2018).

Three conv-pool-norm-relu blocks on a 48 px grayscale face, then two fully connected layers
and a softmax (applied in the loss). The paper gives the block structure, not every width;
the widths here (32/64/128, FC 512) are our choice, sized to train in minutes per epoch on a
laptop CPU.
"""

from __future__ import annotations

import torch
from torch import nn

RECIPE = {
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "batch_size": 128,
    "epochs": 40,
    "scheduler": "plateau",
    "tta": "flip",
}


def _block(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ZhuCNN(nn.Module):
    """conv-pool-BN-ReLU x3 (5x5 then 3x3 kernels) -> FC -> dropout -> FC."""

    def __init__(self, num_classes: int, in_size: int = 48, widths=(32, 64, 128),
                 hidden: int = 512, dropout: float = 0.5) -> None:
        super().__init__()
        c1, c2, c3 = widths
        self.features = nn.Sequential(_block(1, c1, 5), _block(c1, c2, 3), _block(c2, c3, 3))
        side = in_size // 8
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c3 * side * side, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (for t-SNE of the feature manifold)."""
        return self.head[:3](self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build(num_classes: int, in_size: int = 48, **_: object) -> nn.Module:
    """Build the network for ``num_classes`` outputs."""
    return ZhuCNN(num_classes, in_size)
