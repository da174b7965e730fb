"""``zhu-cnn-wide``: zhu-cnn's three conv-pool-norm-relu blocks at twice the width
(64/128/256 channels, FC 1024).

About 4x zhu-cnn's multiply-adds (roughly 0.1 GFLOP per 48 px face), still small enough to
train on a laptop CPU in minutes per epoch; the extra capacity is what the rare, subtle
classes (disgust, fear) need. Same training recipe as zhu-cnn.
"""

from __future__ import annotations

from torch import nn

from feraug.models.zhu_cnn import RECIPE as ZHU_RECIPE
from feraug.models.zhu_cnn import ZhuCNN

RECIPE = dict(ZHU_RECIPE)


def build(num_classes: int, in_size: int = 48, **_: object) -> nn.Module:
    """Build the network for ``num_classes`` outputs."""
    return ZhuCNN(num_classes, in_size, widths=(64, 128, 256), hidden=1024)
