"""Scoring a checkpoint on the split it was trained on: data_seed, checkpoint_data_spec and
the commands (evaluate, adjust, compare) that rebuild it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from feraug.classifier.config import build_train_config
from feraug.classifier.setup import checkpoint_data_spec, split_seed


def test_split_seed_is_data_seed_or_the_training_seed() -> None:
    assert split_seed(build_train_config({"data": "x", "seed": 3})) == 3  # as before data_seed
    assert split_seed(build_train_config({"data": "x", "seed": 3, "data_seed": 0})) == 0
    assert split_seed({"seed": 5}) == 5 and split_seed({}) == 0


def test_checkpoint_data_spec_only_for_the_training_data(tmp_path: Path) -> None:
    data = tmp_path / "ck"
    meta = {"config": {"data": str(data), "class_map": {"a": "happy"}, "folds": 4, "fold": 2,
                       "seed": 7, "data_seed": None}}
    spec = checkpoint_data_spec(meta, data)
    assert spec is not None and spec.split_key() == {
        "class_map": {"a": "happy"}, "folds": 4, "fold": 2, "seed": 7, "train_fraction": 1.0,
        "subsample_seed": 0}
    assert checkpoint_data_spec(meta, tmp_path / "ck" / ".." / "ck").seed == 7  # same folder
    assert checkpoint_data_spec(meta, tmp_path / "other") is None  # transfer: defaults
    assert checkpoint_data_spec({"config": {}}, data) is None


def test_compare_refuses_models_trained_on_different_splits(ckpt: Path, make_ckplus,
                                                            tmp_path: Path, run_cli) -> None:
    data = make_ckplus(subjects=10, per_class=1, side=48)
    state = torch.load(ckpt, weights_only=True)
    paths = []
    for seed in (1, 2):
        path = tmp_path / f"s{seed}.pt"
        torch.save({**state, "config": {"data": str(data), "folds": 5, "fold": 0,
                                        "seed": seed}}, path)
        paths.append(path)
    res = run_cli("compare", *paths, data)
    assert res.code == 2 and "different splits" in res.stderr and "seed: 1 vs 2" in res.stderr
    assert res.stderr.count("error:") == 1


@pytest.mark.filterwarnings("ignore:The least populated class:UserWarning")  # tiny CK+ set
def test_scoring_on_a_differently_split_copy_of_the_training_data_is_refused(
        make_ckplus, tmp_path: Path) -> None:
    from feraug.classifier.ensemble import assemble_ensemble
    from feraug.classifier.evaluate import evaluate_classifier
    from feraug.classifier.trainer import fit
    from feraug.data.load import load_dataset
    from feraug.errors import CheckpointError, DataError
    from feraug.models.checkpoint import load_classifier

    data = make_ckplus(subjects=10, per_class=1, side=48)
    runs = {}
    for seed in (1, 2):
        ds = load_dataset(data, folds=5, fold=0, seed=seed)
        cfg = build_train_config({"data": str(data), "out": str(tmp_path / f"s{seed}"),
                                  "max_steps": 1, "batch_size": 8, "device": "cpu",
                                  "seed": seed})
        runs[seed] = (ds, fit(cfg, dataset=ds).best_checkpoint)
    ds1, ckpt1 = runs[1]
    ds2, ckpt2 = runs[2]
    assert ds1.content_fingerprint(with_splits=True) != ds2.content_fingerprint(with_splits=True)
    model = load_classifier(ckpt1)
    assert evaluate_classifier(model, ds1)["num_images"] == len(ds1.indices("test"))
    with pytest.raises(DataError, match="split differently"):
        evaluate_classifier(model, ds2)
    other = make_ckplus(name="other", subjects=6, per_class=1, side=48)
    evaluate_classifier(model, load_dataset(other))  # another data set: transfer is fine
    with pytest.raises(CheckpointError, match="another split"):
        assemble_ensemble([ckpt1, ckpt2], tmp_path / "ens.pt")
