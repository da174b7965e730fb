"""``predict(images)``: detect faces, crop them as training images look, classify them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from feraug.classifier.infer import TTA_MODES, check_tta, predict_proba
from feraug.data.images import to_gray
from feraug.errors import DataError
from feraug.io import prepare_output_dir
from feraug.models.checkpoint import LoadedClassifier
from feraug.predict.align import EyeFinder, eye_finder_name, get_eye_finder, levelled_crop
from feraug.predict.annotate import write_annotated
from feraug.predict.crop import MARGIN, face_crop, whole_image
from feraug.predict.detect import Detector, detector_name, get_detector
from feraug.predict.model import ModelSpec, resolve_model
from feraug.predict.results import FacePrediction, ImagePrediction
from feraug.predict.sources import (
    ImageInput,
    check_array,
    describe_unreadable,
    expand_paths,
    read_color,
)
from feraug.progress import progress_bar

#: Images decoded and detected before one batched forward pass.
CHUNK = 32


def resolve_tta(tta: bool | str | None, loaded: LoadedClassifier) -> str:
    """None = the checkpoint's own TTA; True = it, or ``flip`` if it has none; False = none;
    a string names the mode."""
    if tta is None:
        return loaded.tta if loaded.tta in TTA_MODES else "none"
    if tta is True:
        return loaded.tta if loaded.tta not in (None, "none") else "flip"
    if tta is False:
        return "none"
    return check_tta(str(tta))


def _inputs(images: ImageInput | Sequence[ImageInput]) -> list[tuple[str, Path | np.ndarray]]:
    """(name, path or array) per image; folders expand in place, keeping the caller's order."""
    if isinstance(images, (str, Path, np.ndarray)):
        images = [images]
    result: list[tuple[str, Path | np.ndarray]] = []
    for i, item in enumerate(images):
        if isinstance(item, np.ndarray):
            result.append((f"array[{i}]", item))
        else:
            result.extend((str(p), p) for p in expand_paths([item]))
    return result


def _decode(name: str, item: Path | np.ndarray) -> np.ndarray:
    if isinstance(item, np.ndarray):
        return check_array(item, name)
    reason = describe_unreadable(item)
    if reason:
        raise DataError(reason)
    return read_color(item)


def prepare_faces(name: str, image: np.ndarray, detector: Detector | None, detector_name: str,
                  size: int, margin: float, eyes: EyeFinder | None = None,
                  ) -> tuple[ImagePrediction, list[np.ndarray]]:
    """The result shell for one image (boxes, note) and the face crops to classify; with
    ``eyes``, each face is levelled by its eyes before it is cut (``feraug.predict.align``)."""
    gray = to_gray(image)
    h, w = gray.shape
    pred = ImagePrediction(source=name, width=w, height=h,
                           detector=None if detector is None else detector_name,
                           aligner=eye_finder_name(eyes))
    if detector is None:
        pred.faces = [FacePrediction((0, 0, w, h), "", {})]
        levelled = levelled_crop(gray, (0, 0, w, h), size, eyes, 0.0, square=False) \
            if eyes is not None else None
        return pred, [whole_image(gray, size) if levelled is None else levelled]
    boxes = detector(image)
    if not boxes:
        pred.note = (f"no face found (detector {detector_name}); use --no-detect / "
                     "detect=False for images that are already face crops")
        return pred, []
    pred.faces = [FacePrediction(tuple(int(v) for v in b), "", {}) for b in boxes]
    crops = []
    for b in pred.faces:
        levelled = levelled_crop(gray, b.box, size, eyes, margin) if eyes is not None else None
        crops.append(face_crop(gray, b.box, size, margin) if levelled is None else levelled)
    return pred, crops


def classify_faces(loaded: LoadedClassifier, tta: str,
              pending: list[tuple[ImagePrediction, list[np.ndarray]]]) -> None:
    crops = [c for _, cs in pending for c in cs]
    if not crops:
        return
    batch = torch.from_numpy(np.stack(crops)).unsqueeze(1)
    probs = predict_proba(loaded.model, batch, loaded.crop_size, tta).tolist()
    row = 0
    for pred, cs in pending:
        for face in pred.faces[: len(cs)]:
            face.probabilities = {c: float(p) for c, p in zip(loaded.classes, probs[row],
                                                                strict=True)}
            face.emotion = max(face.probabilities, key=face.probabilities.__getitem__)
            row += 1


def iter_predictions(images: ImageInput | Sequence[ImageInput], model: ModelSpec = None,
                     detect: bool = True, tta: bool | str | None = None,
                     detector: str | Detector = "auto", margin: float = MARGIN,
                     device: str = "cpu", align: str | EyeFinder | None = None,
                     ) -> Iterator[tuple[ImagePrediction, np.ndarray | None]]:
    """Like :func:`predict`, one result at a time, each with its decoded BGR image (None for
    an input that could not be read)."""
    loaded = resolve_model(model, device)
    mode = resolve_tta(tta, loaded)
    det = get_detector(detector) if detect else None
    eyes = get_eye_finder(align)
    det_name = detector_name(det) if det is not None else ""
    items = _inputs(images)
    for start in range(0, len(items), CHUNK):
        pending: list[tuple[ImagePrediction, list[np.ndarray]]] = []
        decoded: list[np.ndarray | None] = []
        for name, item in items[start : start + CHUNK]:
            try:
                image = _decode(name, item)
                pred, crops = prepare_faces(name, image, det, det_name, loaded.image_size,
                                            margin, eyes)
            except (DataError, cv2.error) as exc:
                msg = str(exc) if isinstance(exc, DataError) else f"{name}: {exc}"
                pending.append((ImagePrediction(source=name, error=msg), []))
                decoded.append(None)
                continue
            pending.append((pred, crops))
            decoded.append(image)
        classify_faces(loaded, mode, pending)
        for (pred, _), image in zip(pending, decoded, strict=True):
            yield pred, image


def predict(images: ImageInput | Sequence[ImageInput], model: ModelSpec = None,
            detect: bool = True, tta: bool | str | None = None,
            detector: str | Detector = "auto", *, out: str | Path | None = None,
            margin: float = MARGIN, device: str = "cpu", progress: bool = False,
            align: str | EyeFinder | None = None) -> list[ImagePrediction]:
    """Predict the emotion of every face in ``images``.

    ``images``: one or a list of file paths (folders are walked for image files) or numpy
    arrays (2-D gray, or ``H x W x 3`` in OpenCV's BGR order). ``model``: a checkpoint path,
    a loaded classifier, or None for the default model bundled with feraug. ``detect=False``
    classifies each whole image as one face (for pre-cropped data). ``tta``: None = the
    checkpoint's test-time augmentation, True/False, or ``"none"``/``"flip"``/``"tencrop"``.
    ``detector``: a name registered in :data:`feraug.predict.detect.DETECTORS` (default
    ``auto``: the best installed detector, Haar when no other is) or a callable.
    ``out``: a new (or empty) folder to write annotated PNG copies into. ``progress``: show a
    progress bar on stderr. ``align``: level each face by its eyes before classifying it
    (``"eyes"``: dlib's landmarks when installed, else OpenCV's eye cascade; ``"dlib"``,
    ``"haar"``, a callable of :mod:`feraug.predict.align`, or None / ``"none"``: no).

    Returns one :class:`ImagePrediction` per image, in input order. An image without a face
    has no faces and a ``note``; an unreadable one has an ``error`` naming the file, and the
    others are still processed. Each face has ``box`` (x, y, w, h), ``emotion`` and
    ``probabilities`` (emotion -> probability, summing to 1).
    """
    loaded = resolve_model(model, device)
    out_dir = prepare_output_dir(Path(out)) if out is not None else None
    used: set[str] = set()
    results = []
    stream = iter_predictions(images, loaded, detect, tta, detector, margin, device, align)
    total = len(images) if isinstance(images, Sequence) and not isinstance(images, str) else None
    for pred, image in progress_bar(stream, total=total, desc="predicting", enabled=progress,
                                    leave=False):
        if out_dir is not None and image is not None:
            pred.annotated = str(write_annotated(image, pred, out_dir, used))
        results.append(pred)
    return results
