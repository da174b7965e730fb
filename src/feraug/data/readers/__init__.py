"""Data set readers, registered by name and auto-detected in registry order.

A reader is a module with ``NAME``, ``detect(path) -> bool`` and
``read(path, size, options) -> FaceDataset``. Adding a format is one new module plus one line
in :data:`READERS` (put specific formats before the generic ``imagefolder`` fallback).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from feraug.data.readers import ckplus, fer_csv, fer_folders, imagefolder, jaffe, sfew
from feraug.errors import DataError

READERS: dict[str, ModuleType] = {
    fer_csv.NAME: fer_csv,
    fer_folders.NAME: fer_folders,
    ckplus.NAME: ckplus,
    jaffe.NAME: jaffe,
    sfew.NAME: sfew,
    imagefolder.NAME: imagefolder,
}


def detect_format(path: Path) -> str:
    """Name of the first reader that recognises ``path``; DataError when none does."""
    if not path.exists():
        raise DataError(f"{path}: path does not exist")
    for name, reader in READERS.items():
        if reader.detect(path):
            return name
    raise DataError(f"{path}: not a recognised data set (formats: {', '.join(READERS)}); "
                    "use --format to choose one")


def get_reader(name: str) -> ModuleType:
    """The reader module registered as ``name``."""
    try:
        return READERS[name]
    except KeyError:
        raise DataError(f"unknown data format {name!r} (known: {', '.join(READERS)})") from None
