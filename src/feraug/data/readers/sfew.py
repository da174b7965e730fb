"""SFEW 2.0 as distributed: ``Train/<Class>/`` and ``Val/<Class>/`` with capitalised class
folders (Angry, Disgust, ...). Its test labels were never released, so published work tests
on ``Val``: here ``Val`` is the test split and a validation split is carved out of ``Train``
(stratified, with the split seed). Files are named ``<Film>_<clip>_<frame>.png``; the film is
the subject, so intervals resample whole films (Train and Val come from different films)."""

from __future__ import annotations

from pathlib import Path

from feraug.data.classfolders import read_class_folders
from feraug.data.dataset import FaceDataset
from feraug.data.listing import subfolders
from feraug.data.readers.options import ReaderOptions

NAME = "sfew"
#: SFEW's own split folders and class folders, exactly as the database ships them.
SPLITS = {"Train": "train", "Val": "test"}
CLASSES = frozenset({"Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"})


def detect(path: Path) -> bool:
    """True for a folder holding exactly ``Train`` and ``Val``, each with SFEW's class folders."""
    if not path.is_dir():
        return False
    dirs = {d.name: d for d in subfolders(path)}
    if set(dirs) != set(SPLITS):
        return False
    return all({c.name for c in subfolders(d)} <= CLASSES and subfolders(d)
               for d in dirs.values())


def film_of(path: Path) -> str:
    """The film a frame comes from (the file name up to its first underscore)."""
    return path.name.split("_", 1)[0]


def read(path: Path, size: int, options: ReaderOptions) -> FaceDataset:
    """Read Train (train) and Val (test); the loader carves validation out of train."""
    parts = [(SPLITS[name], path / name) for name in ("Train", "Val")]
    return read_class_folders(parts, size=size, class_map=options.class_map, fmt=NAME,
                              root=path, subject_of=film_of)
