"""Readers, format detection, the decode cache, fingerprints and k-fold splits."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import FER_LABELS, FER_PER_CLASS, drawn_face, fer_csv_rows, write_fer_csv

from feraug.data.load import load_dataset
from feraug.data.readers import READERS, detect_format
from feraug.errors import DataError

N_SPLIT = FER_PER_CLASS * len(FER_LABELS)  # images per split in the FER slice


def totals(ds) -> dict[str, int]:
    """Images per split."""
    return {name: spec["total"] for name, spec in ds.summary()["splits"].items()}


def fail_if_read(*args, **kwargs):
    raise AssertionError("the reader ran although the data set should come from the cache")


# --- FER2013 -------------------------------------------------------------------------------

def test_fer_folders_usage_form(fer_slice: Path) -> None:
    ds = load_dataset(fer_slice)
    assert ds.format == "fer2013-folders"
    assert ds.classes == FER_LABELS
    assert ds.images.dtype == torch.uint8 and tuple(ds.images.shape) == (3 * N_SPLIT, 1, 48, 48)
    assert totals(ds) == {"train": N_SPLIT, "val": N_SPLIT, "test": N_SPLIT}
    for split in ("train", "val", "test"):
        assert set(ds.class_counts(split).values()) == {FER_PER_CLASS}
    folder_split = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
    for i in (0, 100, len(ds) - 1):
        source = ds.source_ids[i]
        split_folder, cls, _ = Path(source).parts
        assert ds.split[i] == folder_split[split_folder]
        assert ds.classes[ds.labels[i]] == cls
        expected = cv2.imread(str(fer_slice / source), cv2.IMREAD_GRAYSCALE)
        assert np.array_equal(ds.images[i, 0].numpy(), expected)


def test_fer_folders_kaggle_form_carves_val(fer_slice: Path) -> None:
    (fer_slice / "Training").rename(fer_slice / "train")
    (fer_slice / "PrivateTest").rename(fer_slice / "test")
    shutil.rmtree(fer_slice / "PublicTest")
    ds = load_dataset(fer_slice)
    assert ds.format == "fer2013-folders"
    counts = totals(ds)
    assert counts["test"] == N_SPLIT
    assert counts["train"] + counts["val"] == N_SPLIT
    assert 0 < counts["val"] < N_SPLIT // 4
    val_ids = [s for s, sp in zip(ds.source_ids, ds.split, strict=True) if sp == "val"]
    assert all(s.startswith("train" + os.sep) for s in val_ids)
    again = load_dataset(fer_slice)
    assert again.split == ds.split  # the carve-out is deterministic for a seed


def test_fer_csv_matches_folders(fer_slice: Path, fer_csv: Path) -> None:
    from_csv = load_dataset(fer_csv)
    from_folders = load_dataset(fer_slice)
    assert from_csv.format == "fer2013-csv"
    assert from_csv.classes == FER_LABELS
    assert totals(from_csv) == {"train": N_SPLIT, "val": N_SPLIT, "test": N_SPLIT}
    # The fixture writes rows in the folder reader's order, so everything lines up.
    assert torch.equal(from_csv.images, from_folders.images)
    assert torch.equal(from_csv.labels, from_folders.labels)
    assert from_csv.split == from_folders.split
    assert from_csv.source_ids[0] == "row 2"


def test_real_fer_csv_matches_folders(fer_real_slice: Path, tmp_path: Path) -> None:
    """Real FER2013 JPEGs (skipped without the data): a CSV written from them loads to the
    same tensors, labels and splits as the folders."""
    csv = write_fer_csv(tmp_path / "real.csv", fer_csv_rows(fer_real_slice))
    from_csv, from_folders = load_dataset(csv), load_dataset(fer_real_slice)
    assert totals(from_folders) == {"train": N_SPLIT, "val": N_SPLIT, "test": N_SPLIT}
    assert torch.equal(from_csv.images, from_folders.images)
    assert torch.equal(from_csv.labels, from_folders.labels)


def test_fer_csv_resizes_and_accepts_bom(fer_csv: Path) -> None:
    fer_csv.write_bytes(b"\xef\xbb\xbf" + fer_csv.read_bytes())  # saved by a spreadsheet
    ds = load_dataset(fer_csv, size=32)
    assert tuple(ds.images.shape[1:]) == (1, 32, 32)
    assert len(ds) == 3 * N_SPLIT


# --- CK+, JAFFE, ImageFolder -------------------------------------------------------------------

def test_ckplus(make_ckplus) -> None:
    root = make_ckplus()
    ds = load_dataset(root)
    assert ds.format == "ckplus"
    assert ds.classes == ("angry", "disgust", "fear", "happy", "sad", "surprise", "contempt")
    assert ds.subjects is not None and len(set(ds.subjects)) == 10
    first = ds.source_ids.index(os.path.join("anger", "S010_001_00000017.png"))
    assert ds.subjects[first] == "S010" and ds.classes[ds.labels[first]] == "angry"
    assert ds.images.shape[-1] == 48  # 40 px drawn, resized up
    assert set(ds.split) == {"train", "val", "test"}


def test_jaffe(make_jaffe) -> None:
    root = make_jaffe()
    ds = load_dataset(root)
    assert ds.format == "jaffe"
    assert ds.classes == FER_LABELS
    assert len(ds) == 70 and len(set(ds.subjects)) == 10
    i = ds.source_ids.index("KA.AN1.1.tiff")
    assert ds.subjects[i] == "KA" and ds.classes[ds.labels[i]] == "angry"
    assert set(ds.class_counts().values()) == {10}


def write_images(folder: Path, count: int, label: int, side: int = 30) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(label)
    for k in range(count):
        assert cv2.imwrite(str(folder / f"img{k:02d}.png"), drawn_face(rng, side, label))


def test_imagefolder_flat_with_class_map(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    for label, (name, count) in enumerate({"a": 6, "b": 7, "c": 5}.items()):
        write_images(root / name, count, label)
    with pytest.raises(DataError, match="unknown emotion label 'a'"):
        load_dataset(root)  # without the map the folder names mean nothing
    ds = load_dataset(root, class_map={"a": "happy", "b": "sad", "c": "neutral"})
    assert ds.format == "imagefolder"
    assert ds.classes == ("happy", "sad", "neutral")
    assert ds.class_counts() == {"happy": 6, "sad": 7, "neutral": 5}
    assert ds.subjects is None
    assert set(ds.split) == {"train", "val", "test"}


def test_imagefolder_split_folders_keep_val(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    for split, count in (("train", 5), ("val", 2), ("test", 3)):
        for label, name in enumerate(("x", "y")):
            write_images(root / split / name, count, label)
    ds = load_dataset(root, class_map={"x": "fear", "y": "surprise"})
    assert ds.format == "imagefolder"  # not the Kaggle FER form, which has no val folder
    assert totals(ds) == {"train": 10, "val": 4, "test": 6}


def test_sfew_val_is_the_test_split_and_films_are_subjects(tmp_path: Path) -> None:
    """SFEW 2.0 as distributed (Train/ and Val/ with capitalised class folders): Val is the
    test split (its test labels were never released), validation comes out of Train, and
    the film in each file name is the subject."""
    root = tmp_path / "sfew"
    rng = np.random.default_rng(0)
    films = {"Train": tuple(f"Film{i}" for i in range(12)), "Val": ("Airheads", "Rango")}
    for split, names in films.items():
        for label, cls in enumerate(("Angry", "Happy", "Neutral")):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for k in range(12 if split == "Train" else 4):
                name = f"{names[k % len(names)]}_{1000 + k:09d}_{k:08d}.png"
                assert cv2.imwrite(str(folder / name), drawn_face(rng, 36, label))
    ds = load_dataset(root)
    assert ds.format == "sfew" and ds.classes == ("angry", "happy", "neutral")
    counts = totals(ds)
    assert counts["test"] == 12 and counts["train"] + counts["val"] == 36 and counts["val"] > 0
    test_films = {ds.subjects[i] for i in ds.indices("test").tolist()}
    assert test_films == {"Airheads", "Rango"}
    train_films = {ds.subjects[i] for i in ds.indices("train").tolist()}
    val_films = {ds.subjects[i] for i in ds.indices("val").tolist()}
    assert train_films <= set(films["Train"]) and not train_films & val_films  # whole films
    generic = tmp_path / "mine"  # Train/Val with emotion folders, but not SFEW's file names
    for split in ("Train", "Val"):
        write_images(generic / split / "Happy", 3, 0)
    assert detect_format(generic) != "sfew"
    (root / "Test").mkdir()  # not SFEW's two-folder layout any more: the generic reader
    assert detect_format(root) != "sfew"


# --- detection and --format ----------------------------------------------------------------

def test_auto_detection(fer_slice: Path, fer_csv: Path, make_ckplus, make_jaffe,
                        tmp_path: Path) -> None:
    write_images(tmp_path / "generic" / "happy", 2, 0)
    expected = {
        fer_slice: "fer2013-folders",
        fer_csv: "fer2013-csv",
        make_ckplus(): "ckplus",
        make_jaffe(): "jaffe",
        tmp_path / "generic": "imagefolder",
    }
    for path, name in expected.items():
        assert detect_format(path) == name, path
    assert list(READERS)[-1] == "imagefolder"  # the generic fallback is tried last


def test_format_override(make_ckplus, fer_slice: Path) -> None:
    root = make_ckplus()
    ds = load_dataset(root, format="imagefolder")
    assert ds.format == "imagefolder" and ds.subjects is None  # CK+ file names not parsed
    assert len(ds) == len(load_dataset(root))
    with pytest.raises(DataError, match="does not look like format 'jaffe'"):
        load_dataset(fer_slice, format="jaffe")


# --- the decode cache ------------------------------------------------------------------------

@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("FERAUG_CACHE", str(cache))
    return cache


def test_cache_roundtrip(fer_slice: Path, own_cache: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_dataset(fer_slice)
    files = list(own_cache.glob("*.pt"))
    assert len(files) == 1 and files[0].name.startswith("fer2013-folders-48-")
    monkeypatch.setattr(READERS["fer2013-folders"], "read", fail_if_read)
    second = load_dataset(fer_slice)
    assert torch.equal(first.images, second.images)
    assert torch.equal(first.labels, second.labels)
    assert first.split == second.split and first.source_ids == second.source_ids
    assert first.fingerprint() == second.fingerprint()
    # Another spelling of the same folder hits the same cache entry but reports its own root.
    other = Path(os.path.relpath(fer_slice))
    assert load_dataset(other).root == str(other)


def test_cache_invalidated_by_changed_file(make_ckplus, own_cache: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_ckplus()
    before = load_dataset(root)
    target = root / "happy" / "S010_005_00000017.png"
    new_pixels = np.full((40, 40), 7, dtype=np.uint8)
    assert cv2.imwrite(str(target), new_pixels)
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    calls = []
    real_read = READERS["ckplus"].read
    monkeypatch.setattr(READERS["ckplus"], "read",
                        lambda *a, **k: calls.append(1) or real_read(*a, **k))
    after = load_dataset(root)
    assert calls == [1]
    assert len(list(own_cache.glob("*.pt"))) == 2
    i = after.source_ids.index(str(target.relative_to(root)))
    assert torch.all(after.images[i] == 7) and not torch.equal(before.images[i], after.images[i])


def test_no_cache_and_damaged_cache(fer_csv: Path, own_cache: Path) -> None:
    load_dataset(fer_csv, use_cache=False)
    assert not own_cache.exists() or not any(own_cache.iterdir())
    first = load_dataset(fer_csv)
    (entry,) = own_cache.glob("*.pt")
    entry.write_bytes(b"not a torch file")
    again = load_dataset(fer_csv)  # rebuilt, never trusted
    assert torch.equal(first.images, again.images)
    assert entry.stat().st_size > 1000


# --- fingerprint ---------------------------------------------------------------------------

def test_fingerprint_changes_with_one_pixel(make_ckplus) -> None:
    root = make_ckplus(side=48)  # no resizing: exactly one stored pixel changes
    ds = load_dataset(root, use_cache=False)
    assert load_dataset(root, use_cache=False).fingerprint() == ds.fingerprint()
    target = root / "fear" / "S010_004_00000017.png"
    img = cv2.imread(str(target), cv2.IMREAD_GRAYSCALE)
    img[5, 5] ^= 1
    assert cv2.imwrite(str(target), img)  # PNG is lossless: exactly one pixel differs
    changed = load_dataset(root, use_cache=False)
    assert changed.fingerprint() != ds.fingerprint()
    i = changed.source_ids.index(str(target.relative_to(root)))
    assert (changed.images != ds.images).nonzero().tolist() == [[i, 0, 5, 5]]


def test_fingerprint_csv_single_pixel(fer_csv: Path) -> None:
    ds = load_dataset(fer_csv, use_cache=False)
    lines = fer_csv.read_text().splitlines()
    label, pixels, usage = lines[1].split(",")
    values = pixels.split()
    values[0] = str((int(values[0]) + 1) % 256)
    lines[1] = f"{label},{' '.join(values)},{usage}"
    fer_csv.write_text("\n".join(lines) + "\n")
    changed = load_dataset(fer_csv, use_cache=False)
    diff = (changed.images != ds.images).nonzero().tolist()
    assert diff == [[0, 0, 0, 0]]
    assert changed.fingerprint() != ds.fingerprint()


# --- subject-disjoint k-fold ---------------------------------------------------------------

@pytest.mark.parametrize("kind", ["ckplus", "jaffe"])
def test_subject_disjoint_folds(kind: str, make_ckplus, make_jaffe) -> None:
    root = make_ckplus() if kind == "ckplus" else make_jaffe()
    tests: list[set[str]] = []
    for fold in range(5):
        ds = load_dataset(root, folds=5, fold=fold)
        assert ds.format == kind
        by_split: dict[str, set[str]] = {}
        for subject, split in zip(ds.subjects, ds.split, strict=True):
            by_split.setdefault(split, set()).add(subject)
        assert set(by_split) == {"train", "val", "test"}
        assert all(by_split.values()), "every split holds someone"
        assert not by_split["train"] & by_split["val"]
        assert not by_split["train"] & by_split["test"]
        assert not by_split["val"] & by_split["test"]
        tests.append({s for s, sp in zip(ds.source_ids, ds.split, strict=True) if sp == "test"})
    # Every image is in exactly one test fold.
    assert sum(len(t) for t in tests) == len(ds)
    assert set().union(*tests) == set(ds.source_ids)


def test_fold_of_previous_is_val(make_jaffe) -> None:
    root = make_jaffe()
    split_of = {f: load_dataset(root, fold=f).split for f in (0, 1)}
    val0 = [i for i, s in enumerate(split_of[0]) if s == "val"]
    test1 = [i for i, s in enumerate(split_of[1]) if s == "test"]
    assert val0 == test1  # fold k's val is fold k+1's test


def test_too_few_subjects_for_folds(make_jaffe) -> None:
    root = make_jaffe(subjects=("KA", "KL", "KM"))
    with pytest.raises(DataError, match="^" + re.escape(f"{root}: cannot make 5 subject-disj")):
        load_dataset(root)
    assert set(load_dataset(root, folds=3).split) == {"train", "val", "test"}
