"""Shared pytest fixtures.

- every test runs with ``FERAUG_CACHE`` pointing at a session temporary folder (never
  ``~/.cache``) and ``FERAUG_QUIET=1``;
- ``fer_slice``: a small FER2013-style folder tree (8 drawn 48 px JPEG faces per class per
  split) that the tests write themselves, so the suite needs no data set; ``fer_csv``: the same
  images as an original-style FER2013 CSV;
- ``fer_real_root`` / ``fer_real_slice``: the real FER2013 folders (``FERAUG_FER2013``, default
  ``../shared/data/fer2013``) or a copy of a slice of them; tests using them are skipped, with
  the reason in the summary, where that data is absent;
- ``make_ckplus`` / ``make_jaffe``: writers of tiny synthetic CK+ and JAFFE trees;
- ``run_cli``: runs the ``feraug`` entry point in-process and captures its exit code and output;
- ``ckpt``: a tiny untrained zhu-cnn classifier checkpoint (7 FER2013 classes, 48 px, crop 44);
- ``one_thread``: torch limited to one thread for the test (tiny networks run fastest so).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FER_ROOT = Path(os.environ.get("FERAUG_FER2013", REPO.parent / "shared" / "data" / "fer2013"))
FER_SPLIT_FOLDERS = ("Training", "PublicTest", "PrivateTest")
#: FER2013 label order: the CSV ``emotion`` column value is the index.
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_PER_CLASS = 8

CK_FOLDERS = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
JAFFE_CODES = ("AN", "DI", "FE", "HA", "NE", "SA", "SU")
JAFFE_SUBJECTS = ("KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM")


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's decode-cache folder (what ``FERAUG_CACHE`` points at)."""
    return tmp_path_factory.mktemp("feraug-cache")


@pytest.fixture(autouse=True)
def isolated_env(cache_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep every test away from ``~/.cache`` and progress bars."""
    monkeypatch.setenv("FERAUG_CACHE", str(cache_root))
    monkeypatch.setenv("FERAUG_QUIET", "1")
    return cache_root


def drawn_face(rng: np.random.Generator, side: int, label: int) -> np.ndarray:
    """A small deterministic grayscale test image: noise plus a shape that depends on ``label``."""
    img = rng.integers(0, 256, size=(side, side), dtype=np.uint8)
    cv2.circle(img, (side // 2, side // 2), 3 + label % (side // 4), 255, -1)
    return img


def make_fer_slice(dest: Path, per_class: int = FER_PER_CLASS, seed: int = 0) -> Path:
    """Write a FER2013-style tree ``dest/{Training,PublicTest,PrivateTest}/<class>/`` of
    ``per_class`` drawn 48 px grayscale JPEG faces named like the original ids."""
    rng = np.random.default_rng(seed)
    number = 0
    for split in FER_SPLIT_FOLDERS:
        for label, cls in enumerate(FER_LABELS):
            out = dest / split / cls
            out.mkdir(parents=True)
            for _ in range(per_class):
                number += 1
                file = out / f"{split}_{10000 + number}.jpg"
                assert cv2.imwrite(str(file), drawn_face(rng, 48, label))
    return dest


def real_fer_root() -> Path:
    """The real FER2013 folders; skips the calling test (reason in the summary) without them."""
    if not (FER_ROOT / "Training").is_dir():
        pytest.skip(f"real FER2013 folders not found at {FER_ROOT} (set FERAUG_FER2013; CI has "
                    "them at ../shared/data/fer2013)")
    return FER_ROOT


def copy_fer_slice(dest: Path, per_class: int = FER_PER_CLASS) -> Path:
    """Copy the first ``per_class`` images of every class of every split of the real FER2013
    folders to ``dest`` (skips the test when they are absent)."""
    root = real_fer_root()
    for split in FER_SPLIT_FOLDERS:
        for cls in FER_LABELS:
            src = root / split / cls
            out = dest / split / cls
            out.mkdir(parents=True)
            for name in sorted(p.name for p in src.iterdir())[:per_class]:
                shutil.copyfile(src / name, out / name)
    return dest


@pytest.fixture
def fer_slice(tmp_path: Path) -> Path:
    """``Training/PublicTest/PrivateTest/<class>/`` with 8 drawn JPEG faces per class per split."""
    return make_fer_slice(tmp_path / "fer_slice")


@pytest.fixture
def fer_real_root() -> Path:
    """The real FER2013 folders (skipped when absent)."""
    return real_fer_root()


@pytest.fixture
def fer_real_slice(tmp_path: Path) -> Path:
    """A copy of 8 real FER2013 images per class per split (skipped when absent)."""
    return copy_fer_slice(tmp_path / "fer_real_slice")


def write_fer_csv(path: Path, rows: Iterable[tuple[int | str, str, str]],
                  header: str = "emotion,pixels,Usage") -> Path:
    """Write a FER2013-style CSV from ``(emotion, pixels text, Usage)`` rows."""
    lines = [header, *(f"{label},{pixels},{usage}" for label, pixels, usage in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fer_csv_rows(fer_root: Path) -> list[tuple[int, str, str]]:
    """Rows for :func:`write_fer_csv` from a FER2013 folder tree, in the folder reader's order
    (split folders Training, PublicTest, PrivateTest; class folders and files by name)."""
    rows = []
    for split in FER_SPLIT_FOLDERS:
        for cls_dir in sorted(p for p in (fer_root / split).iterdir() if p.is_dir()):
            for file in sorted(cls_dir.iterdir()):
                img = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
                assert img is not None and img.shape == (48, 48), file
                pixels = " ".join(str(v) for v in img.ravel().tolist())
                rows.append((FER_LABELS.index(cls_dir.name), pixels, split))
    return rows


@pytest.fixture
def fer_csv(fer_slice: Path, tmp_path: Path) -> Path:
    """An original-style ``fer2013.csv`` holding exactly the images of ``fer_slice``."""
    return write_fer_csv(tmp_path / "fer2013.csv", fer_csv_rows(fer_slice))


@pytest.fixture
def make_ckplus(tmp_path: Path) -> Callable[..., Path]:
    """Factory writing a synthetic CK+ tree ``<class>/S0xx_00y_0000001z.png``.

    Subject ``i`` has images of a deterministic subset of the classes (subject 0 has all),
    ``per_class`` images each; returns the root folder.
    """

    def make(name: str = "ckplus", subjects: int = 10, per_class: int = 1,
             classes: tuple[str, ...] = CK_FOLDERS, side: int = 40, seed: int = 0) -> Path:
        root = tmp_path / name
        rng = np.random.default_rng(seed)
        for s in range(subjects):
            chosen = classes if s == 0 else [c for c in classes if rng.random() < 0.7]
            for c_idx, cls in enumerate(classes):
                if cls not in chosen:
                    continue
                (root / cls).mkdir(parents=True, exist_ok=True)
                for k in range(per_class):
                    file = root / cls / f"S{10 + s:03d}_{c_idx + 1:03d}_{17 + k:08d}.png"
                    assert cv2.imwrite(str(file), drawn_face(rng, side, c_idx))
        return root

    return make


@pytest.fixture
def make_jaffe(tmp_path: Path) -> Callable[..., Path]:
    """Factory writing a flat synthetic JAFFE folder ``KA.AN1.39.tiff`` (one image per subject
    and expression code); returns the folder."""

    def make(name: str = "jaffe", subjects: tuple[str, ...] = JAFFE_SUBJECTS,
             codes: tuple[str, ...] = JAFFE_CODES, side: int = 64, seed: int = 0) -> Path:
        root = tmp_path / name
        root.mkdir(parents=True)
        rng = np.random.default_rng(seed)
        number = 1
        for subject in subjects:
            for c_idx, code in enumerate(codes):
                file = root / f"{subject}.{code}{c_idx % 3 + 1}.{number}.tiff"
                assert cv2.imwrite(str(file), drawn_face(rng, side, c_idx))
                number += 1
        return root

    return make


@dataclass
class CliResult:
    """Exit code and captured output of one in-process CLI run."""

    code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str],
            monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run ``feraug ARGS...`` through the console-script entry point ``feraug.cli.main:main``
    in-process. An exception escaping ``main()`` (what a user would see as a traceback) is not
    caught, so it fails the test."""
    from feraug.cli.main import main

    def run(*args: object) -> CliResult:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["feraug", *(str(a) for a in args)])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code=code, stdout=out, stderr=err)

    return run


#: Image size and crop of the ``ckpt`` fixture's classifier.
CKPT_SIZE, CKPT_CROP = 48, 44


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained zhu-cnn checkpoint (7 FER2013 classes, 48 px, crop 44, flip TTA)."""
    from feraug.emotions import FER2013_CLASSES
    from feraug.models import build_classifier
    from feraug.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = build_classifier("zhu-cnn", len(FER2013_CLASSES), CKPT_CROP)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, {"model_name": "zhu-cnn", "classes": list(FER2013_CLASSES),
                           "image_size": CKPT_SIZE, "crop_size": CKPT_CROP, "tta": "flip",
                           "model": model.state_dict(), "config": {}, "step": 0})
    return path


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Run the test with one torch thread (tiny networks run fastest so; CI is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
