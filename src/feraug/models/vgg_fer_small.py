"""``vgg-fer-small``: :mod:`feraug.models.vgg_fer` at half the width (32/64/128/256, FC 512).

About a quarter of vgg-fer's multiply-adds, so a CPU can train it in an afternoon while
keeping what zhu-cnn lacks: two convolutions per stage, four stages, batch norm after every
convolution. The recipe is vgg-fer's augmentation and 40 px crops with a fixed-length cosine
schedule (a plateau schedule needs the hundreds of epochs a CPU cannot give), and flip
test-time augmentation of the centre crop (ten-crop costs 5x the inference).
"""

from __future__ import annotations

from torch import nn

from feraug.models.vgg_fer import VGGFer

RECIPE = {
    "optimizer": "sgd",
    "lr": 0.02,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "batch_size": 64,
    "epochs": 40,
    "scheduler": "cosine",
    "crop_size": 40,
    "tta": "flip",
    "augment": {"scale": 0.2, "translate": 0.2, "rotation": 10.0, "flip": True, "erasing": 0.5},
}


def build(num_classes: int, in_size: int = 40, **_: object) -> nn.Module:
    """Build the network for ``num_classes`` outputs."""
    return VGGFer(num_classes, in_size, widths=(32, 64, 128, 256), hidden=512)
