"""Which classifier predicts: a checkpoint path, an already loaded one, or the default model
that ships inside the package (``feraug/assets/default_model.pt``)."""

from __future__ import annotations

import functools
from pathlib import Path

from feraug.bundled import default_model_path
from feraug.models.checkpoint import LoadedClassifier, load_classifier

ModelSpec = str | Path | LoadedClassifier | None


@functools.lru_cache(maxsize=2)
def _default(device: str) -> LoadedClassifier:
    return load_classifier(default_model_path(), device)


def resolve_model(model: ModelSpec, device: str = "cpu") -> LoadedClassifier:
    """A ready classifier for ``model``: None = the bundled default, a path = that checkpoint
    (loaded with ``weights_only=True``), a :class:`LoadedClassifier` = itself."""
    if model is None:
        return _default(str(device))
    if isinstance(model, LoadedClassifier):
        return model
    return load_classifier(Path(model), device)
