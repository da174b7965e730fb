"""The reverse test of `feraug gan score`: what a classifier trained on a generator's faces
learns about real faces, beside one trained on as many real faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from feraug.classifier.config import build_train_config
from feraug.classifier.trainer import fit
from feraug.data.procedural import make_procedural_faces, save_image_folder
from feraug.engine.generator_loop import train_generator
from feraug.gan import build_generator
from feraug.scoring.reverse import (
    above_chance_ratio,
    one_vs_rest_auc,
    per_class_counts,
    reverse_score,
    training_set,
)
from feraug.scoring.score import real_train_sample

COUNTS = {"angry": 10, "disgust": 6, "fear": 10, "happy": 12, "sad": 10, "surprise": 10,
          "neutral": 12}


@pytest.fixture(scope="module")
def faces() -> object:
    return make_procedural_faces(COUNTS, size=48, n_identities=8, seed=3)


def test_training_sets_differ_only_where_the_generator_makes_faces(faces) -> None:
    train = faces.subset("train")
    counts = train.class_counts()
    made = torch.full((9, 1, 48, 48), 7, dtype=torch.uint8)
    generated = training_set(train, {"disgust": made}, n=8, seed=0)
    real = training_set(train, {}, n=8, seed=0)
    want = {c: min(8, counts[c]) for c in train.classes}
    assert per_class_counts(train, 8) == want
    for name, ds in (("generated", generated), ("real", real)):
        assert ds.class_counts() == want, name
    k = train.classes.index("disgust")
    gen_disgust = generated.images[generated.labels == k]
    assert gen_disgust.eq(7).all() and len(gen_disgust) == want["disgust"]
    assert generated.synthetic[generated.labels == k].all()
    assert not generated.synthetic[generated.labels != k].any() and not real.synthetic.any()
    # every other class: the same real faces in both sets
    others = generated.labels != k
    assert torch.equal(generated.images[others], real.images[real.labels != k])
    assert torch.equal(real.images[real.labels == k],
                       real_train_sample(train, k, want["disgust"], 0))


def test_auc_and_the_above_chance_ratio_by_hand() -> None:
    labels = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.4, 0.35, 0.8])  # positives above negatives in 3 of 4 pairs
    auc = one_vs_rest_auc(labels, np.stack([1 - p1, p1], 1), ("a", "b"))
    assert auc == {"a": pytest.approx(0.75), "b": pytest.approx(0.75)}
    assert one_vs_rest_auc(np.array([1, 1]), np.ones((2, 2)) / 2, ("a", "b")) == \
        {"a": None, "b": None}
    assert above_chance_ratio(0.7, 0.9) == pytest.approx(0.5)
    assert above_chance_ratio(0.4, 0.9) == pytest.approx(-0.25)  # worse than chance
    assert above_chance_ratio(0.7, 0.5) is None and above_chance_ratio(None, 0.9) is None


def test_faces_identical_to_the_real_sample_teach_exactly_as_much(faces, one_thread) -> None:
    train = faces.subset("train")
    k = train.classes.index("surprise")
    same = real_train_sample(train, k, 8, 0)
    result = reverse_score(train, faces.subset("val"), faces.subset("test"),
                           {"surprise": same}, n=8, epochs=1, device="cpu")
    row = result["emotions"]["surprise"]
    # the two training sets are equal, training is deterministic: equal recall
    assert row["recall_generated"] == pytest.approx(row["recall_real"])
    assert row["f1_generated"] == pytest.approx(row["f1_real"])
    assert row["auc_generated"] == pytest.approx(row["auc_real"])
    assert result["accuracy"]["generated"] == pytest.approx(result["accuracy"]["real"])
    if row["auc_real"] > 0.5:
        assert row["ratio"] == pytest.approx(1.0) and result["mean_ratio"] == pytest.approx(1.0)
    assert result["per_class_train"]["surprise"] == min(8, train.class_counts()["surprise"])


def test_cli_score_with_the_reverse_test(faces, tmp_path: Path, run_cli, one_thread) -> None:
    data = save_image_folder(faces, tmp_path / "data")
    cfg = build_train_config({"data": str(data), "model": "zhu-cnn"},
                             {"out": str(tmp_path / "judge"), "epochs": 1, "max_steps": 2,
                              "batch_size": 16, "seed": 1, "device": "cpu"}, source="test")
    judge = fit(cfg, dataset=faces).best_checkpoint
    model = build_generator("cyclegan", {"steps": 2, "batch_size": 2, "ngf": 4, "n_blocks": 1,
                                         "ndf": 4, "pool_size": 2}, faces.classes, faces.size)
    ckpt = train_generator(model, faces, tmp_path / "gan", device="cpu", sample_every=0,
                           checkpoint_every=0, progress=False).checkpoint
    res = run_cli("gan", "score", ckpt, "--data", data, "--judge", judge, "-n", 6,
                  "--inception", "off", "--device", "cpu", "--split", "val",
                  "--reverse-epochs", 1, "--out", tmp_path / "score")
    assert res.code == 0, res.stderr
    assert "reverse: AUC taught by generated / real" in res.stdout
    assert "mean reverse ratio" in res.stdout
    scored = json.loads((tmp_path / "score" / "score.json").read_text())
    reverse = scored["reverse"]
    assert set(reverse["emotions"]) == set(model.emotions())
    assert reverse["epochs"] == 1 and reverse["model"] == "zhu-cnn"
    for name in ("generated", "real"):
        assert (tmp_path / "score" / "reverse" / name / "last.pt").is_file()
    assert reverse["real_from_cache"] is None
    # a second score of the same data and settings reads the real classifier from the cache
    again = run_cli("gan", "score", ckpt, "--data", data, "--judge", judge, "-n", 6,
                    "--inception", "off", "--device", "cpu", "--split", "val",
                    "--reverse-epochs", 1, "--out", tmp_path / "score2", "--json")
    assert again.code == 0, again.stderr
    second = json.loads(again.stdout)["reverse"]
    assert second["real_from_cache"] and second["accuracy"]["real"] == reverse["accuracy"]["real"]
    assert not (tmp_path / "score2" / "reverse" / "real").exists()
    assert (tmp_path / "score2" / "reverse" / "generated" / "last.pt").is_file()
