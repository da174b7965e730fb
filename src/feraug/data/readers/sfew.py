"""SFEW 2.0 as distributed: ``Train/<Class>/`` and ``Val/<Class>/`` with capitalised class
folders (Angry, Disgust, ...). Its test labels were never released, so published work tests
on ``Val``: here ``Val`` is the test split and a validation split is carved out of ``Train``
(stratified, whole films, with the split seed). Files are named ``<Film>_<clip>_<frame>.png``;
the film is the subject, so validation shares no film with train and intervals resample whole
films (Train and Val come from different films)."""

from __future__ import annotations

import re
from pathlib import Path

from feraug.data.classfolders import read_class_folders
from feraug.data.dataset import FaceDataset
from feraug.data.listing import subfolders
from feraug.data.readers.options import ReaderOptions

NAME = "sfew"
#: SFEW's own split folders and class folders, exactly as the database ships them.
SPLITS = {"Train": "train", "Val": "test"}
CLASSES = frozenset({"Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"})
#: SFEW's file names: ``<Film>_<clip>_<frame>.png``.
FILE_PATTERN = re.compile(r"^.+_\d+_\d+\.(png|jpe?g)$", re.IGNORECASE)


def detect(path: Path) -> bool:
    """True for a folder holding exactly ``Train`` and ``Val``, each with SFEW's class folders."""
    if not path.is_dir():
        return False
    dirs = {d.name: d for d in subfolders(path)}
    if set(dirs) != set(SPLITS):
        return False
    for split in dirs.values():
        classes = subfolders(split)
        if not classes or not {c.name for c in classes} <= CLASSES:
            return False
        sample = [f for c in classes[:2] for f in sorted(c.iterdir())[:5] if f.is_file()]
        if not sample or not all(FILE_PATTERN.match(f.name) for f in sample):
            return False
    return True


def film_of(path: Path) -> str:
    """The film a frame comes from (the file name before its clip and frame numbers)."""
    return path.name.rsplit("_", 2)[0]


def read(path: Path, size: int, options: ReaderOptions) -> FaceDataset:
    """Read Train (train) and Val (test); the loader carves validation out of train."""
    parts = [(SPLITS[name], path / name) for name in ("Train", "Val")]
    return read_class_folders(parts, size=size, class_map=options.class_map, fmt=NAME,
                              root=path, subject_of=film_of)
