"""CK+ class folders (anger, contempt, disgust, fear, happy, sadness, surprise[, neutral]) with
file names such as ``S010_004_00000017.png`` carrying the subject id. Splits are made by
subject-disjoint stratified k-fold (see :func:`feraug.data.splits.assign_splits`)."""

from __future__ import annotations

import re
from pathlib import Path

from feraug.data.classfolders import read_class_folders
from feraug.data.dataset import FaceDataset
from feraug.data.listing import image_files, subfolders
from feraug.data.readers.options import ReaderOptions
from feraug.errors import DataError

NAME = "ckplus"
FILE_PATTERN = re.compile(r"^(S\d{3})_\d{3}_\d+\.\w+$")
CK_CLASSES = {"anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise", "neutral"}


def detect(path: Path) -> bool:
    """True for a folder of CK+ class folders whose files follow the CK+ naming."""
    if not path.is_dir():
        return False
    dirs = subfolders(path)
    if not dirs or not {d.name.lower() for d in dirs} <= CK_CLASSES:
        return False
    sample = image_files(dirs[0])[:5]
    return bool(sample) and all(FILE_PATTERN.match(p.name) for p in sample)


def subject_of(path: Path) -> str:
    """Subject id (``S010``) from a CK+ file name."""
    m = FILE_PATTERN.match(path.name)
    if m is None:
        raise DataError(f"{path}: not a CK+ file name (expected like S010_004_00000017.png)")
    return m.group(1)


def read(path: Path, size: int, options: ReaderOptions) -> FaceDataset:
    """Read all class folders (split ``""``: assign splits with k-fold afterwards)."""
    return read_class_folders([("", path)], size=size, class_map=options.class_map, fmt=NAME,
                              root=path, subject_of=subject_of)
