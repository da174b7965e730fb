"""JAFFE: one flat folder of files such as ``KA.AN1.39.tiff`` (subject KA, expression AN)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from feraug.data.dataset import FaceDataset
from feraug.data.decode import decode_files
from feraug.data.listing import image_files, require_dir
from feraug.data.readers.options import ReaderOptions
from feraug.emotions import JAFFE_CODES, sort_classes
from feraug.errors import DataError

NAME = "jaffe"
FILE_PATTERN = re.compile(r"^([A-Z]{2})\.([A-Z]{2})\d*\.\d+\.\w+$")


def detect(path: Path) -> bool:
    """True for a flat folder whose image names follow the JAFFE pattern."""
    if not path.is_dir():
        return False
    files = image_files(path)
    return bool(files) and all(FILE_PATTERN.match(p.name) for p in files[:10])


def parse_name(path: Path) -> tuple[str, str]:
    """``(subject, canonical emotion)`` from a JAFFE file name."""
    m = FILE_PATTERN.match(path.name)
    if m is None:
        raise DataError(f"{path}: not a JAFFE file name (expected like KA.AN1.39.tiff)")
    subject, code = m.groups()
    if code not in JAFFE_CODES:
        raise DataError(f"{path}: unknown JAFFE expression code {code!r} "
                        f"(known: {', '.join(JAFFE_CODES)})")
    return subject, JAFFE_CODES[code]


def read(path: Path, size: int, options: ReaderOptions) -> FaceDataset:
    """Read the folder; splits are assigned afterwards by subject-disjoint k-fold."""
    require_dir(path)
    files = image_files(path)
    if not files:
        raise DataError(f"{path}: no images")
    parsed = [parse_name(f) for f in files]
    classes = sort_classes({e for _, e in parsed})
    index = {c: i for i, c in enumerate(classes)}
    return FaceDataset(
        images=decode_files(files, size, desc="reading JAFFE"),
        labels=torch.tensor([index[e] for _, e in parsed], dtype=torch.long),
        classes=classes,
        split=[""] * len(files),
        source_ids=[f.name for f in files],
        subjects=[s for s, _ in parsed],
        format=NAME,
        root=str(path),
    )
