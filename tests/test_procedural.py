"""Procedural faces: determinism, counts, subject-disjoint splits, learnable expressions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from feraug.data.load import load_dataset
from feraug.data.procedural import (
    DEFAULT_COUNTS,
    make_procedural_faces,
    save_image_folder,
)
from feraug.emotions import FER2013_CLASSES
from feraug.errors import DataError

SMALL = {"angry": 30, "disgust": 12, "fear": 25, "happy": 60, "sad": 40, "surprise": 30,
         "neutral": 45}


@pytest.fixture(scope="module")
def small() -> object:
    return make_procedural_faces(SMALL, n_identities=10, seed=1)


def test_deterministic_for_a_seed(small) -> None:
    again = make_procedural_faces(SMALL, n_identities=10, seed=1)
    assert torch.equal(small.images, again.images)
    assert small.split == again.split and small.subjects == again.subjects
    assert small.fingerprint() == again.fingerprint()
    other = make_procedural_faces(SMALL, n_identities=10, seed=2)
    assert other.fingerprint() != small.fingerprint()


def test_shape_classes_and_counts(small) -> None:
    assert small.images.dtype == torch.uint8
    assert tuple(small.images.shape) == (sum(SMALL.values()), 1, 48, 48)
    assert small.classes == FER2013_CLASSES
    assert small.class_counts() == SMALL
    assert small.format == "procedural"
    assert not bool(small.synthetic.any())
    assert int(small.images.float().std()) > 20  # not blank images


def test_default_counts_are_imbalanced() -> None:
    assert set(DEFAULT_COUNTS) == set(FER2013_CLASSES)
    assert min(DEFAULT_COUNTS, key=DEFAULT_COUNTS.get) == "disgust"
    assert max(DEFAULT_COUNTS, key=DEFAULT_COUNTS.get) == "happy"
    assert DEFAULT_COUNTS["happy"] >= 5 * DEFAULT_COUNTS["disgust"]


def test_splits_are_subject_disjoint_and_cover_every_class(small) -> None:
    by_split = {s: {small.subjects[i] for i in small.indices(s).tolist()}
                for s in ("train", "val", "test")}
    assert all(by_split.values())
    assert not by_split["train"] & by_split["val"]
    assert not by_split["train"] & by_split["test"]
    assert not by_split["val"] & by_split["test"]
    assert len(set(small.subjects)) == 10
    assert all(n > 0 for n in small.class_counts("train").values())


def test_subset_of_classes_and_sizes() -> None:
    ds = make_procedural_faces({"Happiness": 10, "sad": 10}, size=64, n_identities=5)
    assert ds.classes == ("happy", "sad")
    assert ds.size == 64


@pytest.mark.parametrize("counts, kw", [
    ({"happy": -1}, {}),
    ({"contempt": 5}, {}),
    ({"happy": 10}, {"n_identities": 3}),
])
def test_bad_arguments_are_data_errors(counts, kw) -> None:
    with pytest.raises(DataError):
        make_procedural_faces(counts, **kw)


def _mouth_minus_cheek(ds, cls: str) -> np.ndarray:
    """Mean intensity of the mouth region minus a cheek patch, per image of ``cls``."""
    x = ds.images[ds.labels == ds.classes.index(cls), 0].float().numpy()
    mouth = x[:, 30:38, 16:31].mean(axis=(1, 2))
    cheek = x[:, 26:28, 13:15].mean(axis=(1, 2))
    return mouth - cheek


def test_expressions_are_visibly_different(small) -> None:
    # an open smile with teeth darkens the mouth region far more than a closed frown
    happy, sad = _mouth_minus_cheek(small, "happy"), _mouth_minus_cheek(small, "sad")
    assert happy.mean() < sad.mean() - 5
    # surprise opens the mouth wide: more contrast around the mouth than neutral
    x, y = small.images[:, 0, 30:40, 16:32].float(), small.labels
    spread = x.flatten(1).std(dim=1)
    assert spread[y == small.classes.index("surprise")].mean() > \
        spread[y == small.classes.index("neutral")].mean() + 5
    # every pair of class-mean faces differs
    means = torch.stack([small.images[y == c].float().mean(0) for c in range(small.num_classes)])
    between = (means[:, None] - means[None]).abs().mean(dim=(2, 3, 4))
    assert bool((between + torch.eye(small.num_classes) * 99 > 0.5).all())


def test_image_folder_round_trip(small, tmp_path: Path) -> None:
    root = save_image_folder(small, tmp_path / "faces")
    assert {p.name for p in root.iterdir()} == {"Training", "PublicTest", "PrivateTest"}
    back = load_dataset(root, size=48)
    assert back.classes == small.classes
    for split in ("train", "val", "test"):
        assert back.class_counts(split) == small.class_counts(split)
    # PNG is lossless: the same multiset of images comes back
    key = lambda d: sorted(bytes(im.numpy().tobytes()) for im in d.images)  # noqa: E731
    assert key(back) == key(small)


def test_image_folder_needs_splits(small, tmp_path: Path) -> None:
    unsplit = small.with_split([""] * len(small))
    with pytest.raises(DataError, match="split"):
        save_image_folder(unsplit, tmp_path / "x")
