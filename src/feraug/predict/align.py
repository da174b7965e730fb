"""Levelling a face by its eyes before it is cropped.

The classifiers train on FER2013, whose faces are upright; a tilted head in a photo costs
accuracy (on JAFFE tilted by 30 degrees the default model falls from 0.526 to 0.385:
docs/results.md, "Levelling tilted faces by their eyes"). An *eye finder* maps a grayscale
image and a face box to the two eye centres; :func:`levelled_crop` then rotates the face
about its box centre so that the eyes lie on a horizontal line, and cuts the same square
crop :func:`feraug.predict.crop.face_crop` would cut from an upright face.

``dlib`` uses dlib's five-point landmark model, which the ``face_recognition_models``
package ships (CC0; ``pip install 'feraug[align]'``; nothing is downloaded at run time);
``haar`` uses OpenCV's eye cascade, which opencv-python-headless ships, and always works;
``eyes`` is the first of those that is installed. A face whose eyes are not found, or whose
eyes give an implausible tilt, is cropped unrotated.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from feraug.data.images import resize_gray
from feraug.errors import ConfigError, FeraugError
from feraug.predict.crop import MARGIN, Box

Point = tuple[float, float]
EyeFinder = Callable[[np.ndarray, Box], tuple[Point, Point] | None]

#: Landmarks are looked for on a face region at least this many pixels wide: both models
#: lose the eyes on faces as small as FER2013's 48 px.
LANDMARK_SIDE = 160
#: A tilt larger than this is taken for a landmark error, not a head pose, and not corrected.
MAX_TILT = 45.0
FIVE_POINT_MODEL = "shape_predictor_5_face_landmarks.dat"


def _upscaled(gray: np.ndarray, box: Box) -> tuple[np.ndarray, float, int, int]:
    """The box's region of ``gray`` (clamped), scaled up to :data:`LANDMARK_SIDE` when it is
    smaller, with the scale and the region's origin to map points back."""
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    region = gray[y0 : min(gray.shape[0], y + h), x0 : min(gray.shape[1], x + w)]
    scale = max(1.0, LANDMARK_SIDE / max(1, min(region.shape)))
    if scale > 1.0:
        region = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(region), scale, x0, y0


def _ordered(a: Point, b: Point) -> tuple[Point, Point]:
    """The two eyes, the one further left in the image first."""
    return (a, b) if a[0] <= b[0] else (b, a)


def five_point_model_path() -> Path:
    """Where ``face_recognition_models`` keeps dlib's five-point model (found without
    importing the package, whose ``__init__`` needs setuptools)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FeraugError("eye finder 'dlib' needs the face_recognition_models package: "
                          "pip install 'feraug[align]', or use --align haar")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / FIVE_POINT_MODEL
    if not path.is_file():
        raise FeraugError(f"{path}: dlib's five-point landmark model is missing "
                          "(reinstall face_recognition_models)")
    return path


def dlib_eyes() -> EyeFinder:
    """Eye centres from dlib's five-point landmarks (two corners per eye, then the nose)."""
    try:
        import dlib  # type: ignore[import-not-found]
    except ImportError:
        raise FeraugError("eye finder 'dlib' needs the dlib package: pip install "
                          "'feraug[align]', or use --align haar") from None
    predictor = dlib.shape_predictor(str(five_point_model_path()))

    def find(gray: np.ndarray, box: Box) -> tuple[Point, Point] | None:
        region, scale, x0, y0 = _upscaled(gray, box)
        h, w = region.shape
        shape = predictor(region, dlib.rectangle(0, 0, w - 1, h - 1))
        pts = [(shape.part(i).x / scale + x0, shape.part(i).y / scale + y0) for i in range(4)]
        first = ((pts[0][0] + pts[1][0]) / 2, (pts[0][1] + pts[1][1]) / 2)
        second = ((pts[2][0] + pts[3][0]) / 2, (pts[2][1] + pts[3][1]) / 2)
        return _ordered(first, second)

    return find


def haar_eyes(cascade: str = "haarcascade_eye.xml") -> EyeFinder:
    """Eye centres from OpenCV's eye cascade: the largest detection in each half of the upper
    part of the face; None unless both halves have one."""
    path = Path(cv2.data.haarcascades) / cascade
    classifier = cv2.CascadeClassifier(str(path))
    if classifier.empty():
        raise FeraugError(f"{path}: OpenCV eye cascade missing or unreadable "
                          "(reinstall opencv-python-headless)")

    def find(gray: np.ndarray, box: Box) -> tuple[Point, Point] | None:
        region, scale, x0, y0 = _upscaled(gray, box)
        upper = cv2.equalizeHist(region[: int(region.shape[0] * 0.6)])
        side = max(8, region.shape[1] // 10)
        found = classifier.detectMultiScale(upper, scaleFactor=1.1, minNeighbors=3,
                                            minSize=(side, side))
        half = region.shape[1] / 2
        halves: list[list] = [[], []]
        for ex, ey, ew, eh in found:
            halves[int(ex + ew / 2 >= half)].append((ew * eh, ex + ew / 2, ey + eh / 2))
        if not all(halves):
            return None
        (_, ax, ay), (_, bx, by) = (max(h) for h in halves)
        return ((ax / scale + x0, ay / scale + y0), (bx / scale + x0, by / scale + y0))

    return find


def auto_eyes() -> EyeFinder:
    """dlib's landmarks when installed, else OpenCV's eye cascade."""
    try:
        finder = dlib_eyes()
        finder.finder_name = "dlib"  # type: ignore[attr-defined]
    except FeraugError:
        finder = haar_eyes()
        finder.finder_name = "haar"  # type: ignore[attr-defined]
    return finder


EYE_FINDERS: dict[str, Callable[[], EyeFinder]] = {
    "eyes": auto_eyes,
    "dlib": dlib_eyes,
    "haar": haar_eyes,
}


def get_eye_finder(name: str | EyeFinder | None) -> EyeFinder | None:
    """The eye finder registered as ``name``; None (or ``"none"``) for no levelling; a
    callable is returned unchanged."""
    if name is None or name == "none":
        return None
    if callable(name):
        return name
    try:
        factory = EYE_FINDERS[name]
    except KeyError:
        known = ", ".join(["none", *EYE_FINDERS])
        raise ConfigError(f"unknown --align {name!r} (known: {known})") from None
    finder = factory()
    if getattr(finder, "finder_name", None) is None:
        finder.finder_name = name  # type: ignore[attr-defined]
    return finder


def eye_finder_name(finder: EyeFinder | None) -> str | None:
    """The name an eye finder reports (None when faces are not levelled)."""
    if finder is None:
        return None
    return getattr(finder, "finder_name", None) or getattr(finder, "__name__", "custom")


def tilt_degrees(eyes: tuple[Point, Point]) -> float:
    """The angle of the line from the left to the right eye (positive: the right eye lower,
    in image coordinates, whose y axis points down)."""
    (lx, ly), (rx, ry) = eyes
    return math.degrees(math.atan2(ry - ly, rx - lx))


def levelled_crop(gray: np.ndarray, box: Box, size: int, finder: EyeFinder,
                  margin: float = MARGIN, square: bool = True) -> np.ndarray | None:
    """The ``size`` x ``size`` crop :func:`~feraug.predict.crop.face_crop` cuts around
    ``box``, with the face first rotated about the box centre so that its eyes are level.
    None (crop it unrotated) when the eyes are not found or their tilt is implausible (over
    :data:`MAX_TILT` degrees, or eyes closer than a fifth of the box width). Pixels the
    rotation brings in from outside the image repeat its border. ``square=False`` keeps the
    box's own shape and stretches it to ``size`` (as a whole pre-cropped image is read)."""
    eyes = finder(gray, box)
    x, y, w, h = box
    if eyes is None or math.dist(*eyes) < 0.2 * w:
        return None
    angle = tilt_degrees(eyes)
    if abs(angle) > MAX_TILT:
        return None
    out_w = out_h = max(w, h) * (1.0 + 2.0 * margin)
    if not square:
        out_w, out_h = w * (1.0 + 2.0 * margin), h * (1.0 + 2.0 * margin)
    centre = (x + w / 2.0, y + h / 2.0)
    matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
    # shift so the output's origin is the crop's corner: only the crop is warped
    matrix[0, 2] -= centre[0] - out_w / 2.0
    matrix[1, 2] -= centre[1] - out_h / 2.0
    shape = (max(1, int(round(out_w))), max(1, int(round(out_h))))
    crop = cv2.warpAffine(gray, matrix, shape, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return resize_gray(crop, size)
