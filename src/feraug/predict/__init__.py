"""Predicting emotions in photos: face detection, training-identical crops, classification,
annotated copies.

``from feraug.predict import predict`` gives the function. The module itself is callable
too, so ``import feraug.predict`` (or ``feraug.predict`` once ``feraug`` imports this
subpackage) can be called as ``feraug.predict(images, ...)`` while its submodules
(``feraug.predict.api``, ``.detect`` ...) stay importable by dotted name.
"""

import sys
from types import ModuleType
from typing import Any

from feraug.predict.api import iter_predictions, predict
from feraug.predict.detect import DETECTORS, get_detector, register_detector
from feraug.predict.results import FacePrediction, ImagePrediction

__all__ = ["DETECTORS", "FacePrediction", "ImagePrediction", "get_detector",
           "iter_predictions", "predict", "register_detector"]


class _CallableModule(ModuleType):
    """``feraug.predict(...)`` is :func:`feraug.predict.api.predict`."""

    def __call__(self, *args: Any, **kwargs: Any) -> list[ImagePrediction]:
        return predict(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
