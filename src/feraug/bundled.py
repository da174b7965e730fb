"""The classifier that ships inside the package (``feraug/assets/default_model.pt``): the
model ``feraug predict`` uses by default and the generators' ``guide: bundled``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from feraug.errors import CheckpointError

DEFAULT_MODEL = "default_model.pt"
#: How a config or option names the bundled model instead of a checkpoint path.
BUNDLED = "bundled"


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


def checkpoint_path(name: str | Path) -> Path:
    """``"bundled"`` -> the bundled default model's path; anything else as a path."""
    return default_model_path() if str(name) == BUNDLED else Path(name)
