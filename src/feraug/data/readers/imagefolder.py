"""Any ImageFolder: ``root/<class>/<image>``, or ``root/<split>/<class>/<image>`` with split
folders named train/val/test (also training/validation/valid/testing). Class folder names are
mapped to emotions through the user's class map, or through the emotion synonyms."""

from __future__ import annotations

from pathlib import Path

from feraug.data.classfolders import read_class_folders
from feraug.data.dataset import FaceDataset
from feraug.data.listing import subfolders
from feraug.data.readers.options import ReaderOptions

NAME = "imagefolder"
SPLIT_NAMES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val",
    "test": "test", "testing": "test",
}


def detect(path: Path) -> bool:
    """True for any folder with sub-folders (the generic fallback)."""
    return path.is_dir() and bool(subfolders(path))


def read(path: Path, size: int, options: ReaderOptions) -> FaceDataset:
    """Read class folders, under split folders when the top level names splits."""
    dirs = subfolders(path)
    if dirs and all(d.name.lower() in SPLIT_NAMES for d in dirs):
        parts = [(SPLIT_NAMES[d.name.lower()], d) for d in dirs]
    else:
        parts = [("", path)]
    return read_class_folders(parts, size=size, class_map=options.class_map, fmt=NAME, root=path)
