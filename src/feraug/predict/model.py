"""Which classifier predicts: a checkpoint path, an already loaded one, or the default model
that ships inside the package (``feraug/assets/default_model.pt``)."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from feraug.errors import CheckpointError
from feraug.training.checkpoint import LoadedClassifier, load_classifier

DEFAULT_MODEL = "default_model.pt"

ModelSpec = str | Path | LoadedClassifier | None


def default_model_path() -> Path:
    """Path of the bundled default model; raises :class:`CheckpointError` when it is absent."""
    ref = resources.files("feraug") / "assets" / DEFAULT_MODEL
    if not ref.is_file():
        raise CheckpointError(
            "no default model is bundled with this install of feraug "
            f"(feraug/assets/{DEFAULT_MODEL} is missing); pass a checkpoint written by "
            "`feraug train`: `feraug predict PHOTO --model path/to/best.pt` on the command "
            "line, or predict(images, model='path/to/best.pt') in Python")
    # Installed packages are plain folders (setuptools package-data), so this is a real file.
    return Path(str(ref))


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
