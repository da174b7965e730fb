"""``resnet18``: torchvision's ResNet-18 adapted to small one-channel faces (3x3 stem, no
initial max-pool), optionally initialised from a local weights file (never downloaded).

A local ImageNet checkpoint (``resnet18-*.pth``) can be given with ``pretrained_weights``: its
RGB stem is summed over colour channels and resized to 3x3; the final layer is replaced.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet18

from feraug.errors import CheckpointError
from feraug.models.weights import read_state_dict

RECIPE = {
    "optimizer": "sgd",
    "lr": 0.05,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "batch_size": 128,
    "epochs": 60,
    "scheduler": "cosine",
    "tta": "flip",
}


class SmallResNet18(nn.Module):
    """ResNet-18 with a 3x3 stride-1 one-channel stem for 40-64 px inputs."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        net = resnet18(weights=None, num_classes=num_classes)
        net.conv1 = nn.Conv2d(1, 64, 3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        self.net = net

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features before the classifier."""
        n = self.net
        x = n.relu(n.bn1(n.conv1(x)))
        x = n.layer4(n.layer3(n.layer2(n.layer1(x))))
        return torch.flatten(n.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def load_imagenet_weights(model: SmallResNet18, path: Path) -> None:
    """Copy a local torchvision ResNet-18 state dict into ``model`` (stem adapted, fc skipped)."""
    state = read_state_dict(path, "ResNet-18")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a ResNet-18 state dict")
    stem = state.get("conv1.weight")
    if stem is None:
        raise CheckpointError(f"{path}: not a ResNet-18 state dict (no conv1.weight)")
    stem = stem.sum(dim=1, keepdim=True)
    state["conv1.weight"] = nn.functional.interpolate(stem, size=(3, 3), mode="bilinear",
                                                      align_corners=False)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = model.net.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"fc.weight", "fc.bias"}:
        raise CheckpointError(f"{path}: incompatible ResNet-18 weights "
                              f"(missing {missing}, unexpected {unexpected})")


def build(num_classes: int, in_size: int = 48, pretrained_weights: str | None = None,
          **_: object) -> nn.Module:
    """Build the network, loading ``pretrained_weights`` from a local file when given."""
    model = SmallResNet18(num_classes)
    if pretrained_weights:
        load_imagenet_weights(model, Path(pretrained_weights))
    return model
