"""Decoding image files into grayscale uint8 arrays of a fixed size (OpenCV)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from feraug.errors import DataError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".pgm", ".webp"})


def is_image_file(path: Path) -> bool:
    """True for file names with a known image suffix (hidden files excluded)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def resize_gray(img: np.ndarray, size: int) -> np.ndarray:
    """Resize a 2-D uint8 image to ``size`` x ``size`` (area interpolation when shrinking)."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    shrink = img.shape[0] > size or img.shape[1] > size
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def to_gray(img: np.ndarray) -> np.ndarray:
    """Convert a decoded image (gray, BGR or BGRA, any depth) to 2-D uint8 grayscale."""
    if img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if img.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        img = cv2.cvtColor(img, code) if img.shape[2] in (3, 4) else img[..., 0]
    return img


def read_gray(path: Path, size: int) -> np.ndarray:
    """Read one image file as a ``size`` x ``size`` uint8 grayscale array.

    Raises :class:`DataError` naming the file when it cannot be read or decoded.
    """
    # ANYDEPTH | ANYCOLOR keeps 16-bit and colour files readable and, unlike UNCHANGED,
    # applies the EXIF orientation, as prediction does: a photo is upright in both
    return resize_gray(to_gray(decode_file(path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)),
                       size)


#: Largest image decoded (width x height). Faces need far fewer; a small file can declare a
#: huge canvas (a 389 KB PNG of 20,000 x 20,000 decodes to 400 megapixels, 3 GB in colour).
MAX_PIXELS = 50_000_000


def _declared_pixels(data: np.ndarray) -> int | None:
    """Width x height from the file's header, without decoding it (None when Pillow does not
    know the format; OpenCV's own limit then applies)."""
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data.tobytes())) as im:
                return im.size[0] * im.size[1]
    except Image.DecompressionBombError:  # Pillow's own, higher limit: certainly too many
        return MAX_PIXELS + 1
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def decode_file(path: Path, flags: int) -> np.ndarray:
    """Decode one image file with OpenCV ``flags``.

    Raises :class:`DataError` naming the file when it cannot be read, is empty, declares more
    than :data:`MAX_PIXELS` pixels, or cannot be decoded.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if data.size == 0:
        raise DataError(f"{path}: empty file, not an image")
    pixels = _declared_pixels(data)
    if pixels is not None and pixels > MAX_PIXELS:
        raise DataError(f"{path}: declares more pixels than feraug decodes "
                        f"({MAX_PIXELS // 1_000_000} megapixels); downscale it first")
    img = cv2.imdecode(data, flags)
    if img is None:
        raise DataError(f"{path}: corrupt or unsupported image (could not be decoded)")
    return img
