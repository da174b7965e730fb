"""Cutting faces out of a photo the way training images look: a square around the detected
box with a margin, grayscale, resized to the model's image size."""

from __future__ import annotations

import numpy as np

from feraug.data.images import resize_gray

Box = tuple[int, int, int, int]

#: Fraction of the box side added on every side (the square grows by 20% overall): Haar
#: boxes stop at the eyebrows and the chin, FER2013 faces show a little more.
MARGIN = 0.1


def expand_box(box: Box, width: int, height: int, margin: float = MARGIN) -> Box:
    """A square around ``box`` grown by ``margin`` of its side on every side, clamped to the
    image (so near an edge it may be cut short, and is then stretched when resized)."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    x0 = max(0, int(round(cx - side / 2.0)))
    y0 = max(0, int(round(cy - side / 2.0)))
    x1 = min(width, int(round(cx + side / 2.0)))
    y1 = min(height, int(round(cy + side / 2.0)))
    return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


def face_crop(gray: np.ndarray, box: Box, size: int, margin: float = MARGIN) -> np.ndarray:
    """The ``size`` x ``size`` uint8 crop for one face box of a 2-D grayscale image."""
    x, y, w, h = expand_box(box, gray.shape[1], gray.shape[0], margin)
    return resize_gray(np.ascontiguousarray(gray[y : y + h, x : x + w]), size)


def whole_image(gray: np.ndarray, size: int) -> np.ndarray:
    """The whole image as one face (for pre-cropped faces), exactly as training reads files."""
    return resize_gray(gray, size)

