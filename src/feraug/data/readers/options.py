"""Options shared by the readers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReaderOptions:
    """What a reader may need beyond the path and the image size.

    ``class_map`` maps a folder/class name to a canonical emotion (ImageFolder);
    ``val_fraction`` is the share of the training images held out for validation where a data
    set has no validation split of its own; ``seed`` fixes that split.
    """

    class_map: dict[str, str] | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 0
