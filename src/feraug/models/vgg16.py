"""``vgg16``: torchvision's VGG16 convolutional stack for small one-channel faces, as used for
transfer learning by Kusunose et al. (2022), with a small classifier head.

The 13 convolutions are torchvision's; the first takes one channel. The last max-pool is
dropped (48 px would shrink to 1x1), features are averaged globally, and the head is
``512 -> 256 -> classes`` with dropout instead of VGG's 25088 x 4096 layers (about 120M
parameters that a 48 px face cannot feed). ``pretrained_weights`` names a local torchvision
ImageNet file (``vgg16-*.pth``; nothing is downloaded): its convolutions are copied, the RGB
kernels of the first summed over colour, and the head starts fresh. Without such a file the
network is trained from scratch, or initialised from a FER2013 checkpoint with ``--init``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from feraug.errors import CheckpointError
from feraug.models.weights import read_state_dict

RECIPE = {
    "optimizer": "sgd",
    "lr": 0.01,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "batch_size": 64,
    "epochs": 30,
    "scheduler": "cosine",
    "tta": "flip",
}


class SmallVGG16(nn.Module):
    """VGG16's convolutions (one input channel, no last pool) + global pool + small head."""

    def __init__(self, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        # Only the convolutions: building torchvision's whole VGG16 would allocate its
        # 120M-parameter classifier just to throw it away.
        features = make_layers(cfgs["D"])
        features[0] = nn.Conv2d(1, 64, 3, padding=1)
        for m in features.modules():  # VGG's own initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        self.features = features[:-1]
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(512, 256),
                                  nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(256, num_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features before the head."""
        return torch.flatten(self.pool(self.features(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))


def load_imagenet_weights(model: SmallVGG16, path: Path) -> None:
    """Copy a local torchvision VGG16 state dict's convolutions into ``model``."""
    state = read_state_dict(path, "VGG16")
    if not isinstance(state, dict) or "features.0.weight" not in state:
        raise CheckpointError(f"{path}: not a torchvision VGG16 state dict "
                              "(no features.0.weight)")
    convs = {k.removeprefix("features."): v for k, v in state.items()
             if k.startswith("features.")}
    convs["0.weight"] = convs["0.weight"].sum(dim=1, keepdim=True)
    own = model.features.state_dict()
    if set(convs) != set(own) or any(own[k].shape != v.shape for k, v in convs.items()):
        raise CheckpointError(f"{path}: incompatible VGG16 weights (VGG16 without batch norm "
                              "expected, as torchvision's vgg16-*.pth)")
    model.features.load_state_dict(convs)


def build(num_classes: int, in_size: int = 48, pretrained_weights: str | None = None,
          **_: object) -> nn.Module:
    """Build the network, loading ``pretrained_weights`` from a local file when given."""
    model = SmallVGG16(num_classes)
    if pretrained_weights:
        load_imagenet_weights(model, Path(pretrained_weights))
    return model
