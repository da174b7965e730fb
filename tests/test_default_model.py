"""The classifier bundled as ``feraug/assets/default_model.pt``: it exists in the package, is
small, is the FER2013 model its model card describes, and `feraug predict PHOTO` uses it
with no other argument."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import torch
from test_predict import face_photo

from feraug.emotions import FER2013_CLASSES
from feraug.predict import predict
from feraug.predict.model import default_model_path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_default_model_is_bundled_small_and_trained_on_fer2013_and_sfew() -> None:
    path = default_model_path()
    assert path.stat().st_size < 25 * 2**20
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state["classes"] == list(FER2013_CLASSES)
    assert state["image_size"] == 48
    # FER2013 plus SFEW 2.0's Train split, as feraug loads them (docs/model_card.md)
    assert state["data_fingerprint"] == "ddf5cdadcdfb6595"
    assert state["config"]["extra_train"] and "jaffe" not in str(state["config"]).lower()
    assert not {"optimizer", "scheduler", "rng"} & set(state)  # inference weights only
    card = (DOCS / "model_card.md").read_text()
    assert "TBD" not in card and state["model_name"] in card


def test_predict_uses_the_default_model_without_arguments(run_cli, tmp_path: Path) -> None:
    faces = predict(face_photo())[0].faces
    assert len(faces) == 1
    probs = faces[0].probabilities
    assert list(probs) == list(FER2013_CLASSES)
    assert abs(sum(probs.values()) - 1) < 1e-4

    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), face_photo())
    result = run_cli("predict", photo, "--json")
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["model"] == "default"
    assert doc["images"][0]["faces"][0]["emotion"] in FER2013_CLASSES
