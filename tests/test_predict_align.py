"""Levelling faces by their eyes before they are classified (``feraug.predict.align``)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import CKPT_CROP as CROP
from conftest import CKPT_SIZE as SIZE

from feraug.classifier.infer import predict_proba
from feraug.errors import ConfigError, FeraugError
from feraug.models.checkpoint import load_classifier
from feraug.predict import DETECTORS, get_detector, predict
from feraug.predict import align as align_mod
from feraug.predict.align import (
    eye_finder_name,
    get_eye_finder,
    levelled_crop,
    tilt_degrees,
)
from feraug.predict.crop import face_crop

SHARED_JAFFE = Path(os.environ.get("FERAUG_JAFFE", Path(__file__).resolve().parents[2]
                                   / "shared" / "data" / "jaffe"))


def two_eyes(tilt: float, size: int = 200) -> tuple[np.ndarray, tuple]:
    """A gray square with two white dots 60 px apart about its centre, the line through
    them tilted by ``tilt`` degrees (image coordinates), and the dots' centres."""
    img = np.full((size, size), 60, np.uint8)
    c, r = size / 2, 30.0
    dx, dy = r * np.cos(np.radians(tilt)), r * np.sin(np.radians(tilt))
    eyes = ((c - dx, c - dy), (c + dx, c + dy))
    for x, y in eyes:
        cv2.circle(img, (round(x), round(y)), 6, 255, -1)
    return img, eyes


def finder_at(eyes):
    def find(gray, box):
        return eyes
    find.finder_name = "fixed"
    return find


def white_dots(crop: np.ndarray) -> list[tuple[float, float]]:
    """Centres of the two brightest blobs of a crop."""
    _, mask = cv2.threshold(crop, 160, 255, cv2.THRESH_BINARY)
    n, _, stats, centres = cv2.connectedComponentsWithStats(mask)
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:2] + 1
    return sorted((float(centres[i][0]), float(centres[i][1])) for i in order)


@pytest.mark.parametrize("tilt", [-25.0, 12.0, 30.0])
def test_levelled_crop_puts_the_eyes_on_one_row(tilt: float) -> None:
    img, eyes = two_eyes(tilt)
    assert tilt_degrees(eyes) == pytest.approx(tilt)
    box = (50, 50, 100, 100)
    crop = levelled_crop(img, box, 96, finder_at(eyes), margin=0.1)
    assert crop is not None and crop.shape == (96, 96) and crop.dtype == np.uint8
    (lx, ly), (rx, ry) = white_dots(crop)
    assert abs(ly - ry) < 1.5 < abs(rx - lx)
    # unlevelled, the same crop keeps the tilt: the test would see it
    (ax, ay), (bx, by) = white_dots(face_crop(img, box, 96, 0.1))
    assert abs(ay - by) > 5


def test_levelled_crop_of_an_upright_face_is_the_plain_crop() -> None:
    img, eyes = two_eyes(0.0)
    box = (40, 50, 120, 100)
    got = levelled_crop(img, box, 48, finder_at(eyes))
    want = face_crop(img, box, 48)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 2


def test_implausible_eyes_are_not_used() -> None:
    img, eyes = two_eyes(60.0)
    assert levelled_crop(img, (50, 50, 100, 100), 48, finder_at(eyes)) is None  # > 45 degrees
    close = ((100.0, 100.0), (105.0, 101.0))
    assert levelled_crop(img, (50, 50, 100, 100), 48, finder_at(close)) is None
    assert levelled_crop(img, (50, 50, 100, 100), 48, finder_at(None)) is None


def test_eye_finder_registry_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_eye_finder(None) is None and get_eye_finder("none") is None
    assert eye_finder_name(None) is None
    with pytest.raises(ConfigError, match="unknown --align 'nose'.*none, eyes, dlib, haar"):
        get_eye_finder("nose")
    haar = get_eye_finder("haar")
    assert eye_finder_name(haar) == "haar"
    assert haar(np.full((120, 120), 128, np.uint8), (10, 10, 100, 100)) is None  # blank
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(align_mod.importlib.util, "find_spec", lambda name, *a:
                        None if name == "face_recognition_models" else real_find_spec(name, *a))
    with pytest.raises(FeraugError, match=r"face_recognition_models.*feraug\[align\]"):
        align_mod.five_point_model_path()
    # without the landmark model, "eyes" is OpenCV's cascade, which always works
    assert eye_finder_name(get_eye_finder("eyes")) == "haar"


def test_predict_classifies_the_levelled_crop(ckpt: Path, monkeypatch: pytest.MonkeyPatch,
                                              ) -> None:
    img, eyes = two_eyes(20.0, 300)
    box = (90, 90, 120, 120)
    monkeypatch.setitem(DETECTORS, "fixed", lambda: (lambda image: [box]))
    loaded = load_classifier(ckpt)
    finder = finder_at(eyes)
    res = predict(img, model=loaded, detector="fixed", tta="none", align=finder)[0]
    assert res.aligner == "fixed" and res.to_dict()["aligner"] == "fixed"
    crop = torch.from_numpy(levelled_crop(img, box, SIZE, finder))[None, None]
    want = predict_proba(loaded.model, crop, CROP, "none")[0]
    assert list(res.faces[0].probabilities.values()) == pytest.approx(want.tolist(), abs=1e-6)
    assert res.faces[0].box == box  # boxes stay in the photo's own coordinates
    plain = predict(img, model=loaded, detector="fixed", tta="none")[0]
    assert plain.aligner is None and "aligner" not in plain.to_dict()
    # --no-detect levels the whole image; a face whose eyes are not found is read as before
    whole = predict(img, model=loaded, detect=False, tta="none", align=finder_at(None))[0]
    unaligned = predict(img, model=loaded, detect=False, tta="none")[0]
    assert whole.faces[0].probabilities == pytest.approx(unaligned.faces[0].probabilities)


def test_cli_predict_align_option(ckpt: Path, tmp_path: Path, run_cli) -> None:
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), two_eyes(15.0)[0])
    r = run_cli("predict", photo, "--model", ckpt, "--no-detect", "--align", "haar", "--json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["aligner"] == "haar"
    r = run_cli("predict", photo, "--model", ckpt, "--align", "nose")
    assert r.code == 2
    assert r.stderr.strip().splitlines() == [
        "error: unknown --align 'nose' (known: none, eyes, dlib, haar)"]


@pytest.mark.skipif(not SHARED_JAFFE.is_dir(), reason=f"needs JAFFE at {SHARED_JAFFE} "
                    "(../shared/data/jaffe or FERAUG_JAFFE); CI has it")
@pytest.mark.parametrize("name", ["haar", "dlib"])
def test_eye_finders_measure_the_tilt_of_real_faces(name: str) -> None:
    if name == "dlib" and importlib.util.find_spec("face_recognition_models") is None:
        pytest.skip("dlib's landmark model needs face_recognition_models (feraug[align])")
    finder = get_eye_finder(name)
    detect = get_detector("auto")
    files = sorted(SHARED_JAFFE.glob("*.tiff"))[::20]
    errors, missed = [], 0
    for i, path in enumerate(files):
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        h, w = gray.shape
        angle = 20.0 if i % 2 else -20.0  # anticlockwise on screen: the tilt is -angle
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        tilted = cv2.warpAffine(gray, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
        boxes = detect(tilted)
        eyes = finder(tilted, max(boxes, key=lambda b: b[2] * b[3])) if boxes else None
        if eyes is None:
            missed += 1
            continue
        errors.append(abs(tilt_degrees(eyes) + angle))
    assert missed <= len(files) // 4
    assert np.median(errors) < 3.0
