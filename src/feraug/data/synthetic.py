"""Synthetic face sets written by ``feraug synth``: reading them, and adding them to a real
data set as extra *training* images flagged ``synthetic``.

A synthetic set is a folder ``<emotion>/<emotion>_<seed>_<index>.png`` plus ``manifest.json``
(see :mod:`feraug.synth.build`). Its images never enter validation or test.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from feraug.data.dataset import FaceDataset, concat
from feraug.data.decode import decode_files
from feraug.data.listing import image_files, subfolders
from feraug.emotions import canonical
from feraug.errors import DataError

MANIFEST = "manifest.json"
FORMAT = "feraug-synthetic-v1"


def split_fingerprint(ds: FaceDataset) -> str:
    """Fingerprint of which image is in which split with which label, independent of image
    size and of where the data set lives (it hashes ``source_ids``, not pixels)."""
    return ds.content_fingerprint(with_splits=True)


def read_manifest(path: str | Path) -> dict:
    """The manifest of a synthetic set; DataError naming the folder when absent or invalid."""
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"{folder}: synthetic set folder does not exist")
    file = folder / MANIFEST
    if not file.is_file():
        raise DataError(f"{folder}: not a feraug synthetic set (no {MANIFEST}; "
                        "make one with `feraug synth`)")
    try:
        manifest = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{file}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{file}: not a feraug synthetic set manifest (format != {FORMAT})")
    return manifest


def load_synthetic(path: str | Path, classes: tuple[str, ...], size: int) -> FaceDataset:
    """Read a synthetic set as a :class:`FaceDataset` whose labels index ``classes`` (the real
    data set's classes), every image in split ``train`` and flagged ``synthetic``.

    Raises DataError when the manifest is missing, a folder is not an emotion of ``classes``,
    or the set holds no images.
    """
    folder = Path(path)
    read_manifest(folder)
    paths: list[Path] = []
    labels: list[int] = []
    for emotion_dir in subfolders(folder):
        emotion = canonical(emotion_dir.name, source=str(emotion_dir))
        if emotion not in classes:
            raise DataError(f"{emotion_dir}: emotion {emotion!r} is not a class of the real "
                            f"data set (classes: {', '.join(classes)})")
        files = image_files(emotion_dir)
        paths.extend(files)
        labels.extend([classes.index(emotion)] * len(files))
    if not paths:
        raise DataError(f"{folder}: synthetic set holds no images")
    n = len(paths)
    return FaceDataset(
        images=decode_files(paths, size, desc=f"reading {folder.name}"),
        labels=torch.tensor(labels, dtype=torch.long),
        classes=tuple(classes),
        split=["train"] * n,
        source_ids=[f"synthetic:{folder.name}/{p.relative_to(folder).as_posix()}" for p in paths],
        synthetic=torch.ones(n, dtype=torch.bool),
        format="synthetic",
        root=str(folder),
    )


def kept_nothing(path: str | Path) -> bool:
    """True for a synthetic set whose plan kept no face (its manifest says so)."""
    return (read_manifest(path).get("totals") or {}).get("kept") == 0


def with_synthetic(real: FaceDataset, synthetic_dirs: list[str | Path],
                   strict: bool = True) -> FaceDataset:
    """``real`` plus the images of each synthetic set, added to the train split only.

    With ``strict`` (the default) a set built from a different data set or different splits
    (its manifest's split fingerprint differs) is refused: its translator sources and filters
    could have seen images that are validation/test here.
    """
    if not synthetic_dirs:
        return real
    want = split_fingerprint(real)
    parts = [real]
    for d in synthetic_dirs:
        manifest = read_manifest(d)
        built_from = manifest.get("real", {}).get("split_fingerprint")
        if strict and built_from != want:
            raise DataError(f"{d}: synthetic set was built from a different data set or split "
                            f"(split fingerprint {built_from}, this data set {want}); rebuild it "
                            "with `feraug synth` on the same data, folds and fold")
        if kept_nothing(d):
            continue  # a plan that kept nothing (e.g. every draft a near-copy): no faces to add
        synth = load_synthetic(d, real.classes, real.size)
        if real.subjects is not None:  # keep subject ids so concat does not drop them
            synth.subjects = list(synth.source_ids)
        parts.append(synth)
    return concat(parts)
