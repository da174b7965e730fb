"""Reading ``<split folder>/<class folder>/<image>`` trees into a FaceDataset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from feraug.data.dataset import FaceDataset
from feraug.data.decode import decode_files
from feraug.data.listing import image_files, require_dir, subfolders
from feraug.emotions import canonical, sort_classes
from feraug.errors import DataError


def class_of_folder(folder: Path, class_map: dict[str, str] | None) -> str:
    """Canonical emotion of a class folder, via ``class_map`` first, then synonyms."""
    if class_map is not None:
        if folder.name in class_map:
            return canonical(class_map[folder.name], source=f"class map for {folder}")
        raise DataError(f"{folder}: folder {folder.name!r} is not in the class map "
                        f"(mapped: {', '.join(sorted(class_map))})")
    return canonical(folder.name, source=str(folder))


def read_class_folders(
    parts: list[tuple[str, Path]],
    size: int,
    class_map: dict[str, str] | None,
    fmt: str,
    root: Path,
    subject_of: Callable[[Path], str] | None = None,
) -> FaceDataset:
    """Read several ``(split, folder)`` pairs, each folder holding one sub-folder per class.

    Raises DataError for a class folder with no images or an unknown class name.
    """
    entries: list[tuple[str, str, Path]] = []
    for split, folder in parts:
        require_dir(folder)
        classes = subfolders(folder)
        if not classes:
            raise DataError(f"{folder}: no class folders inside")
        for cls_dir in classes:
            emotion = class_of_folder(cls_dir, class_map)
            files = image_files(cls_dir)
            if not files:
                raise DataError(f"{cls_dir}: class folder is empty (no images)")
            entries.extend((split, emotion, f) for f in files)
    classes_sorted = sort_classes({e for _, e, _ in entries})
    index = {c: i for i, c in enumerate(classes_sorted)}
    paths = [f for _, _, f in entries]
    images = decode_files(paths, size, desc=f"reading {root.name}")
    return FaceDataset(
        images=images,
        labels=torch.tensor([index[e] for _, e, _ in entries], dtype=torch.long),
        classes=classes_sorted,
        split=[s for s, _, _ in entries],
        source_ids=[f.relative_to(root).as_posix() for f in paths],
        subjects=None if subject_of is None else [subject_of(f) for f in paths],
        format=fmt,
        root=str(root),
    )
