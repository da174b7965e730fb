"""Classifier registry: name -> module with ``build(num_classes, in_size, **kw)`` and ``RECIPE``.

Adding a classifier is one new module plus one line in :data:`CLASSIFIERS`. Models that are
assembled from trained checkpoints rather than trained (the ensemble) are listed in
:data:`ASSEMBLED`: checkpoints can hold them, ``feraug train`` refuses them.
"""

from __future__ import annotations

from types import ModuleType

from torch import nn

from feraug.errors import ConfigError
from feraug.models import (
    ensemble,
    resnet18,
    vgg16,
    vgg_fer,
    vgg_fer_small,
    zhu_cnn,
    zhu_cnn_wide,
)

CLASSIFIERS: dict[str, ModuleType] = {
    "zhu-cnn": zhu_cnn,
    "zhu-cnn-wide": zhu_cnn_wide,
    "vgg-fer": vgg_fer,
    "vgg-fer-small": vgg_fer_small,
    "resnet18": resnet18,
    "vgg16": vgg16,
}

ASSEMBLED: dict[str, ModuleType] = {
    "ensemble": ensemble,
}


def known_classifier(name: str) -> str:
    """``name`` when it is a trainable registered classifier; ValueError otherwise (for
    config validators)."""
    if name not in CLASSIFIERS:
        raise ValueError(f"unknown model {name!r} (known: {', '.join(CLASSIFIERS)})")
    return name


def get_classifier(name: str) -> ModuleType:
    """The module registered as ``name``."""
    module = CLASSIFIERS.get(name) or ASSEMBLED.get(name)
    if module is None:
        raise ConfigError(f"unknown model {name!r} (known: {', '.join(CLASSIFIERS)})")
    return module


def build_classifier(name: str, num_classes: int, in_size: int, **kwargs: object) -> nn.Module:
    """Instantiate a registered classifier."""
    return get_classifier(name).build(num_classes, in_size, **kwargs)


def recipe(name: str) -> dict:
    """The model's default training recipe (overridable by config and flags)."""
    if name not in CLASSIFIERS:
        raise ConfigError(f"unknown model {name!r} (known: {', '.join(CLASSIFIERS)})")
    return dict(CLASSIFIERS[name].RECIPE)
