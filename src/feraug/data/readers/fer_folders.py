"""FER2013 as image folders: ``Training/ PublicTest/ PrivateTest/<class>/`` (the usage form) or
the common Kaggle form ``train/ test/<class>/`` (validation is then carved from train by
:func:`feraug.data.load.finalize_splits`)."""

from __future__ import annotations

from pathlib import Path

from feraug.data.classfolders import read_class_folders
from feraug.data.dataset import FaceDataset
from feraug.data.readers.options import ReaderOptions

NAME = "fer2013-folders"

USAGE_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
KAGGLE_SPLITS = {"train": "train", "test": "test"}


def _layout(path: Path) -> dict[str, str] | None:
    if not path.is_dir():
        return None
    names = {p.name for p in path.iterdir() if p.is_dir()}
    if "Training" in names and names & {"PublicTest", "PrivateTest"}:
        return USAGE_SPLITS
    if {"train", "test"} <= names and not names & {"val", "valid", "validation"}:
        return KAGGLE_SPLITS  # with a val folder it is a generic split ImageFolder
    return None


def detect(path: Path) -> bool:
    """True for a folder holding usage or train/test split folders."""
    return _layout(path) is not None


def read(path: Path, size: int, options: ReaderOptions) -> FaceDataset:
    """Read every split folder; each holds one folder per emotion."""
    layout = _layout(path)
    if layout is None:
        from feraug.errors import DataError

        raise DataError(f"{path}: expected Training/PublicTest/PrivateTest or train/test folders")
    parts = [
        (split, folder)
        for folder_name, split in layout.items()
        if (folder := path / folder_name).is_dir()
    ]
    return read_class_folders(parts, size=size, class_map=options.class_map, fmt=NAME,
                              root=path)
