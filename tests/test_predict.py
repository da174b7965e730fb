"""feraug.predict and `feraug predict`: detection, training-identical crops, results,
annotated copies, unreadable files, the default model, the CLI. Images are drawn here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import CKPT_CROP as CROP
from conftest import CKPT_SIZE as SIZE
from typer.testing import CliRunner

from feraug.classifier.infer import predict_proba
from feraug.cli.main import app
from feraug.data.images import read_gray, to_gray
from feraug.emotions import FER2013_CLASSES
from feraug.errors import CheckpointError, ConfigError, FeraugError
from feraug.models.checkpoint import load_classifier
from feraug.predict import DETECTORS, get_detector, predict
from feraug.predict import model as model_mod
from feraug.predict.annotate import annotate
from feraug.predict.api import resolve_tta
from feraug.predict.crop import expand_box, face_crop


def draw_face(size: int = 200) -> np.ndarray:
    """A schematic face (oval, brows, dark eyes, nose, mouth) that OpenCV's Haar cascade finds."""
    img = np.full((size, size), 40, np.uint8)
    c, s = size // 2, size / 200
    cv2.ellipse(img, (c, c + int(5 * s)), (int(62 * s), int(80 * s)), 0, 0, 360, 190, -1)
    for dx in (-1, 1):
        cv2.line(img, (c + dx * int(15 * s), c - int(32 * s)),
                 (c + dx * int(45 * s), c - int(35 * s)), 70, max(1, int(5 * s)))
        cv2.ellipse(img, (c + dx * int(28 * s), c - int(15 * s)), (int(14 * s), int(7 * s)),
                    0, 0, 360, 40, -1)
    cv2.line(img, (c, c - int(10 * s)), (c - int(6 * s), c + int(22 * s)), 120,
             max(1, int(3 * s)))
    cv2.ellipse(img, (c, c + int(45 * s)), (int(25 * s), int(8 * s)), 0, 0, 360, 60, -1)
    return cv2.GaussianBlur(img, (0, 0), 2 * s)


def face_photo() -> np.ndarray:
    """400 x 400 BGR picture with one drawn face in the middle (face square 100..300)."""
    canvas = np.full((400, 400), 40, np.uint8)
    canvas[100:300, 100:300] = draw_face(200)
    return cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)




@pytest.fixture()
def photos(tmp_path: Path) -> dict[str, Path]:
    """A folder with a face, a blank image, noise, a corrupt and an empty file."""
    d = tmp_path / "photos"
    d.mkdir()
    rng = np.random.default_rng(0)
    files = {"face": d / "face.png", "blank": d / "blank.jpg", "noise": d / "noise.png",
             "corrupt": d / "corrupt.jpg", "empty": d / "empty.png"}
    cv2.imwrite(str(files["face"]), face_photo())
    cv2.imwrite(str(files["blank"]), np.full((120, 160, 3), 128, np.uint8))
    cv2.imwrite(str(files["noise"]), rng.integers(0, 256, (150, 200, 3), dtype=np.uint8))
    files["corrupt"].write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG" * 10)
    files["empty"].write_bytes(b"")
    return files


def check_probs(face, classes=FER2013_CLASSES) -> None:
    assert list(face.probabilities) == list(classes)
    assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert all(0.0 <= p <= 1.0 for p in face.probabilities.values())
    assert face.emotion == max(face.probabilities, key=face.probabilities.get)


def test_haar_finds_drawn_faces_and_nothing_in_blank_or_noise() -> None:
    detect = get_detector("haar")
    boxes = detect(face_photo())
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    assert 90 <= x <= 140 and 90 <= y <= 140 and 130 <= w <= 220 and w == h
    two = np.full((300, 600), 40, np.uint8)
    two[50:250, 30:230] = draw_face(200)
    two[50:250, 370:570] = draw_face(200)
    found = detect(two)
    assert len(found) == 2 and found[0][0] < 200 < found[1][0]  # left to right
    assert detect(np.full((200, 200), 128, np.uint8)) == []
    noise = np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    assert detect(noise) == []


def test_predict_mixed_inputs_with_annotated_copies(ckpt: Path, photos: dict[str, Path],
                                                    tmp_path: Path) -> None:
    arr = face_photo()
    order = [photos["face"], photos["blank"], photos["corrupt"], arr, photos["empty"],
             tmp_path / "missing.png"]
    out = tmp_path / "annotated"
    res = predict(order, model=ckpt, out=out)
    assert [r.source for r in res] == [str(photos["face"]), str(photos["blank"]),
                                       str(photos["corrupt"]), "array[3]",
                                       str(photos["empty"]), str(tmp_path / "missing.png")]
    face, blank, corrupt, array, empty, missing = res
    for r in (face, array):
        assert r.ok and len(r.faces) == 1 and (r.width, r.height) == (400, 400)
        check_probs(r.faces[0])
    assert face.faces[0].box == array.faces[0].box
    assert face.faces[0].probabilities == pytest.approx(array.faces[0].probabilities)
    assert blank.ok and blank.faces == [] and "no face" in blank.note
    for r, reason in ((corrupt, "could not be decoded"), (empty, "empty file"),
                      (missing, "does not exist")):
        assert not r.ok and r.faces == [] and r.source in r.error and reason in r.error
        assert r.annotated is None
    written = sorted(p.name for p in out.iterdir())
    assert written == ["array_3.png", "blank.png", "face.png"]
    img = cv2.imread(str(out / "face.png"))
    assert img.shape == (400, 400, 3) and not np.array_equal(img, face_photo())
    assert face.annotated == str(out / "face.png")
    d = face.to_dict()
    json.dumps(d)
    assert d["faces"][0]["box"] == list(face.faces[0].box) and "error" not in d


def test_crops_are_prepared_exactly_as_in_training(ckpt: Path, photos: dict[str, Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    boxes = [(10, 20, 60, 60), (200, 150, 120, 100)]
    monkeypatch.setitem(DETECTORS, "fixed", lambda: (lambda image: list(boxes)))
    loaded = load_classifier(ckpt)
    res = predict([photos["face"]], model=loaded, detector="fixed", tta="none")[0]
    assert [f.box for f in res.faces] == boxes
    gray = to_gray(cv2.imread(str(photos["face"])))
    crops = torch.from_numpy(np.stack([face_crop(gray, b, SIZE) for b in boxes])).unsqueeze(1)
    expected = predict_proba(loaded.model, crops, CROP, "none")
    for face, row in zip(res.faces, expected, strict=True):
        check_probs(face)
        assert list(face.probabilities.values()) == pytest.approx(row.tolist(), abs=1e-6)
    # --no-detect: the whole file, read exactly like a training image
    whole = predict(photos["face"], model=loaded, detect=False, tta="flip")[0]
    assert [f.box for f in whole.faces] == [(0, 0, 400, 400)]
    u8 = torch.from_numpy(read_gray(photos["face"], SIZE))[None, None]
    want = predict_proba(loaded.model, u8, CROP, "flip")[0]
    assert list(whole.faces[0].probabilities.values()) == pytest.approx(want.tolist(), abs=1e-6)


def test_expand_box_margin_and_clamping() -> None:
    assert expand_box((100, 100, 100, 100), 400, 400, 0.1) == (90, 90, 120, 120)
    assert expand_box((100, 100, 80, 100), 400, 400, 0.0) == (90, 100, 100, 100)  # square
    assert expand_box((0, 0, 50, 50), 60, 60, 0.2) == (0, 0, 60, 60)  # clamped
    gray = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    assert face_crop(gray, (95, 95, 20, 20), SIZE).shape == (SIZE, SIZE)


def test_tta_resolution(ckpt: Path) -> None:
    loaded = load_classifier(ckpt)
    assert resolve_tta(None, loaded) == "flip"
    assert resolve_tta(False, loaded) == "none"
    assert resolve_tta(True, loaded) == "flip"
    assert resolve_tta("tencrop", loaded) == "tencrop"
    with pytest.raises(ConfigError, match="tta"):
        resolve_tta("mirror", loaded)


def test_detector_registry_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="unknown detector 'nope'"):
        get_detector("nope")
    for mod in ("dlib", "mtcnn", "facenet_pytorch"):
        monkeypatch.setitem(sys.modules, mod, None)  # import fails as if not installed
    with pytest.raises(FeraugError, match=r"pip install 'feraug\[detect\]'"):
        get_detector("dlib")
    with pytest.raises(FeraugError, match="pip install mtcnn"):
        get_detector("mtcnn")


def test_default_model_missing_says_how_to_pass_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import feraug.bundled

    monkeypatch.setattr(feraug.bundled, "DEFAULT_MODEL", "no_such_model.pt")
    model_mod._default.cache_clear()
    try:
        with pytest.raises(CheckpointError, match="--model"):
            predict(face_photo())
    finally:
        model_mod._default.cache_clear()


def test_out_folder_is_never_overwritten(ckpt: Path, photos: dict[str, Path],
                                         tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(FeraugError, match="not empty"):
        predict(photos["face"], model=ckpt, out=out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_annotate_without_faces_writes_the_note() -> None:
    from feraug.predict.results import ImagePrediction

    img = np.full((100, 200), 128, np.uint8)
    out = annotate(img, ImagePrediction("x", note="no face found (detector haar)"))
    assert out.shape == (100, 200, 3) and out.std() > 0


def test_cli_predict_json_table_and_exit_codes(ckpt: Path, photos: dict[str, Path],
                                               tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli_out"
    r = runner.invoke(app, ["predict", str(photos["face"].parent), "--model", str(ckpt),
                            "--out", str(out), "--json", "--no-tta", "--detector", "haar"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["tta"] == "none" and doc["detector"] == "haar"
    by_name = {Path(i["source"]).name: i for i in doc["images"]}
    assert sorted(by_name) == ["blank.jpg", "corrupt.jpg", "empty.png", "face.png",
                               "noise.png"]
    assert len(by_name["face.png"]["faces"]) == 1 and "note" in by_name["noise.png"]
    assert "corrupt.jpg" in by_name["corrupt.jpg"]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["blank.png", "face.png", "noise.png"]
    r = runner.invoke(app, ["predict", str(photos["face"]), "--model", str(ckpt),
                            "--no-detect"])
    assert r.exit_code == 0 and "face.png" in r.stdout and "1 face(s)" in r.stdout
    r = runner.invoke(app, ["predict", str(photos["corrupt"]), str(photos["empty"]),
                            "--model", str(ckpt)])
    assert r.exit_code == 1 and "2 unreadable" in r.stdout


def test_feraug_predict_is_callable_and_submodules_stay_importable(ckpt: Path) -> None:
    import feraug.predict as fp
    import feraug.predict.detect as detect_mod

    res = fp(face_photo(), model=ckpt)
    assert len(res) == 1 and len(res[0].faces) == 1
    assert detect_mod.get_detector is get_detector
