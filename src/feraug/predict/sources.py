"""Inputs to prediction: image files (folders walked) and in-memory arrays."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from feraug.data.images import decode_file
from feraug.data.listing import image_files
from feraug.errors import DataError

ImageInput = str | Path | np.ndarray


def read_color(path: str | Path) -> np.ndarray:
    """Decode an image file to 8-bit BGR (EXIF orientation applied).

    Raises :class:`DataError` naming the file when it is missing, empty or not decodable.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file does not exist" if not path.exists()
                        else f"{path}: not a file")
    return decode_file(path, cv2.IMREAD_COLOR)


def check_array(image: np.ndarray, name: str) -> np.ndarray:
    """Validate an in-memory image: 2-D gray or ``H x W x 1/3/4`` (colour in BGR order)."""
    ok_shape = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))
    if not ok_shape or image.shape[0] == 0 or image.shape[1] == 0:
        raise DataError(f"{name}: expected an H x W (gray) or H x W x 3 (BGR) image array, "
                        f"got shape {tuple(image.shape)}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.dtype != np.uint8:
        image = cv2.normalize(image.astype(np.float32), None, 0, 255,
                              cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)


def expand_paths(paths: list[str | Path]) -> list[Path]:
    """Files as given, and every image file under each folder (recursively, sorted).

    Missing paths and folders without images are kept as they are, so that prediction
    reports them by name.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = image_files(p, recursive=True)
            out.extend(found if found else [p])
        else:
            out.append(p)
    return out


def describe_unreadable(path: Path) -> str | None:
    """Why ``path`` cannot be an image before even reading it (folders without images)."""
    if path.is_dir():
        return f"{path}: folder holds no image files"
    return None

