"""The original FER2013 CSV release: header ``emotion,pixels,Usage``, 48x48 pixels per row."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from feraug.data.dataset import FaceDataset
from feraug.data.images import resize_gray
from feraug.data.readers.options import ReaderOptions
from feraug.emotions import FER2013_CLASSES
from feraug.errors import DataError

NAME = "fer2013-csv"
HEADER = ["emotion", "pixels", "Usage"]
USAGE_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SIDE = 48


def detect(path: Path) -> bool:
    """True for a ``.csv`` file."""
    return path.is_file() and path.suffix.lower() == ".csv"


def _parse_row(path: Path, line_no: int, row: list[str]) -> tuple[int, np.ndarray, str]:
    where = f"{path}, row {line_no}"
    if len(row) != 3:
        raise DataError(f"{where}: expected 3 columns (emotion,pixels,Usage), got {len(row)}")
    label_text, pixels_text, usage = row
    try:
        label = int(label_text)
    except ValueError:
        raise DataError(f"{where}: emotion {label_text!r} is not an integer 0-6") from None
    if not 0 <= label < len(FER2013_CLASSES):
        raise DataError(f"{where}: unknown label {label} (FER2013 labels are 0-6)")
    if usage not in USAGE_SPLITS:
        raise DataError(f"{where}: unknown Usage {usage!r} (expected {', '.join(USAGE_SPLITS)})")
    try:
        values = np.array(pixels_text.split(), dtype=np.int64)
    except (ValueError, OverflowError):
        raise DataError(f"{where}: pixels must be space-separated integers") from None
    if values.size != SIDE * SIDE:
        raise DataError(f"{where}: pixel row has {values.size} values, expected {SIDE * SIDE}")
    if values.min() < 0 or values.max() > 255:
        raise DataError(f"{where}: pixel values must be in 0-255")
    return label, values.astype(np.uint8).reshape(SIDE, SIDE), USAGE_SPLITS[usage]


def read(path: Path, size: int, options: ReaderOptions) -> FaceDataset:
    """Parse the CSV; every problem names the file and row."""
    labels: list[int] = []
    images: list[np.ndarray] = []
    split: list[str] = []
    ids: list[str] = []
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"{path}: cannot open ({exc.strerror or exc})") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: file is empty")
            if [h.strip() for h in header] != HEADER:
                raise DataError(f"{path}: wrong CSV header {','.join(header)!r}, "
                                f"expected {','.join(HEADER)!r}")
            for line_no, row in enumerate(reader, start=2):
                if not row:
                    continue
                label, img, usage = _parse_row(path, line_no, row)
                labels.append(label)
                images.append(resize_gray(img, size))
                split.append(usage)
                ids.append(f"row {line_no}")
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{path}, row {reader.line_num + 1}: not a readable UTF-8 CSV "
                            f"({exc})") from None
    if not images:
        raise DataError(f"{path}: no data rows")
    present = sorted(set(labels))
    missing = [FER2013_CLASSES[i] for i in range(len(FER2013_CLASSES)) if i not in present]
    if missing:
        raise DataError(f"{path}: class(es) {', '.join(missing)} have no rows (empty class)")
    return FaceDataset(
        images=torch.from_numpy(np.stack(images)).unsqueeze(1),
        labels=torch.tensor(labels, dtype=torch.long),
        classes=FER2013_CLASSES,
        split=split,
        source_ids=ids,
        format=NAME,
        root=str(path),
    )
