"""Face detectors: a registry of ``name -> factory``; a detector maps an image to face boxes.

A detector is any callable taking a decoded image (2-D grayscale or 3-channel BGR uint8, as
OpenCV reads it) and returning boxes ``(x, y, w, h)`` in pixels. ``haar`` is OpenCV's
frontal-face Haar cascade that opencv-python-headless ships under
``cv2.data.haarcascades`` (nothing is downloaded). ``dlib`` (HOG, model inside the dlib
wheel) and ``mtcnn`` (weights inside facenet-pytorch or mtcnn) are used only when that package
is installed. ``auto``, the default, is the best installed one of those, with Haar as a
second look on images where it finds no face, and Haar alone when neither is installed
(``benchmarks/detectors.py`` measured the order; docs/results.md has the numbers). Every
detector carries the name :func:`detector_name` reports. Adding a detector is one
:func:`register_detector` call.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from feraug.errors import ConfigError, FeraugError

Box = tuple[int, int, int, int]
Detector = Callable[[np.ndarray], list[Box]]
DetectorFactory = Callable[[], Detector]

#: Images are shrunk to at most this many pixels on their longer side for Haar detection.
HAAR_MAX_SIDE = 1280


def _gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _rgb(image: np.ndarray) -> np.ndarray:
    code = cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(image, code)


def _sorted(boxes: list[Box]) -> list[Box]:
    """Left-to-right, then top-to-bottom, so face numbering is stable."""
    return sorted(boxes, key=lambda b: (b[0], b[1]))


def haar_detector(cascade: str = "haarcascade_frontalface_default.xml",
                  scale_factor: float = 1.1, min_neighbors: int = 5,
                  min_size: int = 24) -> Detector:
    """OpenCV's Haar cascade face detector (from the cascade files that OpenCV ships)."""
    path = Path(cv2.data.haarcascades) / cascade
    classifier = cv2.CascadeClassifier(str(path))
    if classifier.empty():
        raise FeraugError(f"{path}: OpenCV Haar cascade missing or unreadable "
                          "(reinstall opencv-python-headless)")

    def detect(image: np.ndarray) -> list[Box]:
        gray = _gray(image)
        scale = min(1.0, HAAR_MAX_SIDE / max(gray.shape))
        if scale < 1.0:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        found = classifier.detectMultiScale(gray, scaleFactor=scale_factor,
                                            minNeighbors=min_neighbors,
                                            minSize=(min_size, min_size))
        return _sorted([tuple(int(round(v / scale)) for v in box) for box in found])

    return detect


def dlib_detector() -> Detector:
    """dlib's HOG frontal face detector (needs ``pip install dlib-bin`` or ``dlib``)."""
    try:
        import dlib  # type: ignore[import-not-found]
    except ImportError:
        raise FeraugError("detector 'dlib' needs the dlib package: pip install 'feraug[detect]' "
                          "(dlib-bin), or use --detector haar") from None
    hog = dlib.get_frontal_face_detector()

    def detect(image: np.ndarray) -> list[Box]:
        gray = _gray(image)
        h, w = gray.shape
        boxes = []
        for r in hog(gray, 1):  # clip to the image: a face at the edge keeps its right edge
            x0, y0 = max(0, r.left()), max(0, r.top())
            x1, y1 = min(w, r.right() + 1), min(h, r.bottom() + 1)
            if x1 > x0 and y1 > y0:
                boxes.append((x0, y0, x1 - x0, y1 - y0))
        return _sorted(boxes)

    return detect


def mtcnn_detector(min_confidence: float = 0.9) -> Detector:
    """MTCNN, from the ``mtcnn`` package or else ``facenet-pytorch`` (whichever is installed)."""
    try:
        from mtcnn import MTCNN  # type: ignore[import-not-found]
    except ImportError:
        MTCNN = None
    if MTCNN is not None:
        net = MTCNN()

        def detect(image: np.ndarray) -> list[Box]:
            found = net.detect_faces(_rgb(image))
            return _sorted([tuple(int(v) for v in f["box"]) for f in found
                            if f.get("confidence", 1.0) >= min_confidence])

        return detect
    try:
        from facenet_pytorch import MTCNN as TorchMTCNN  # type: ignore[import-not-found]
    except ImportError:
        raise FeraugError("detector 'mtcnn' needs the mtcnn or facenet-pytorch package: "
                          "pip install mtcnn (or use --detector haar)") from None
    tnet = TorchMTCNN(keep_all=True, device="cpu")

    def detect_torch(image: np.ndarray) -> list[Box]:
        boxes, probs = tnet.detect(_rgb(image))
        if boxes is None:
            return []
        return _sorted([(int(x1), int(y1), int(x2 - x1), int(y2 - y1))
                        for (x1, y1, x2, y2), p in zip(boxes, probs, strict=True)
                        if p >= min_confidence])

    return detect_torch


#: Learned detectors ``auto`` tries, best first: on JAFFE tilted by 30 degrees dlib and MTCNN
#: find every face and Haar almost none; dlib is faster and misses fewer covered faces.
AUTO_ORDER = ("dlib", "mtcnn")


def _named(name: str, detect: Detector) -> Detector:
    detect.detector_name = name  # type: ignore[attr-defined]
    return detect


def detector_name(detect: Detector) -> str:
    """The name a detector reports (``dlib+haar``, ``haar``, a registry key, a function name)."""
    return getattr(detect, "detector_name", None) or getattr(detect, "__name__", "custom")


def auto_detector() -> Detector:
    """The best installed learned detector, falling back to Haar on images where it finds no
    face; Haar alone when no learned detector is installed."""
    haar = haar_detector()
    for name in AUTO_ORDER:
        try:
            primary = DETECTORS[name]()
        except FeraugError:
            continue

        def detect(image: np.ndarray, primary: Detector = primary) -> list[Box]:
            return primary(image) or haar(image)

        return _named(f"{name}+haar", detect)
    return _named("haar", haar)


DETECTORS: dict[str, DetectorFactory] = {
    "auto": auto_detector,
    "haar": haar_detector,
    "dlib": dlib_detector,
    "mtcnn": mtcnn_detector,
}


def register_detector(name: str, factory: DetectorFactory) -> None:
    """Make a detector available as ``name`` (``factory()`` returns the detector callable)."""
    DETECTORS[name] = factory


def get_detector(name: str | Detector) -> Detector:
    """Build the detector registered as ``name`` (a callable is returned unchanged)."""
    if callable(name):
        return name
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise ConfigError(f"unknown detector {name!r} (known: {', '.join(DETECTORS)})") from None
    detect = factory()
    if getattr(detect, "detector_name", None) is None:
        try:
            detect = _named(name, detect)
        except AttributeError:  # a callable object that takes no attributes
            pass
    return detect
