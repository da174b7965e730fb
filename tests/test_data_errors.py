"""Every kind of bad input gives one clear line naming the file (and CSV row): from the library
as a DataError, from ``feraug data info`` as ``error: ...`` on stderr with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from feraug.data.load import load_dataset
from feraug.errors import DataError


@dataclass
class Case:
    """A bad input: what to load, which file the message must name, and what it must say."""

    path: Path
    named: Path
    fragment: str
    row: int | None = None
    class_map: dict[str, str] | None = None
    cli_args: list[str] = field(default_factory=list)


def first_image(fer_slice: Path, split: str = "Training", cls: str = "happy") -> Path:
    return sorted((fer_slice / split / cls).iterdir())[0]


def edit_csv_line(csv_path: Path, index: int, edit: Callable[[str], str]) -> None:
    lines = csv_path.read_text().splitlines()
    lines[index] = edit(lines[index])
    csv_path.write_text("\n".join(lines) + "\n")


def corrupt_image(request: pytest.FixtureRequest) -> Case:
    root = request.getfixturevalue("fer_slice")
    bad = first_image(root)
    bad.write_bytes(bytes(range(256)) * 3)
    return Case(root, bad, "corrupt or unsupported image")


def truncated_image(request: pytest.FixtureRequest) -> Case:
    root = request.getfixturevalue("fer_slice")
    bad = first_image(root, "PrivateTest", "fear")
    bad.write_bytes(bad.read_bytes()[:300])
    return Case(root, bad, "could not be decoded")


def empty_image(request: pytest.FixtureRequest) -> Case:
    root = request.getfixturevalue("fer_slice")
    bad = first_image(root, "PublicTest", "sad")
    bad.write_bytes(b"")
    return Case(root, bad, "empty file")


def csv_wrong_header(request: pytest.FixtureRequest) -> Case:
    csv_path = request.getfixturevalue("fer_csv")
    edit_csv_line(csv_path, 0, lambda _: "label,pixels,Usage")
    return Case(csv_path, csv_path, "wrong CSV header")


def csv_short_row(request: pytest.FixtureRequest) -> Case:
    csv_path = request.getfixturevalue("fer_csv")
    edit_csv_line(csv_path, 2, lambda line: line.rsplit(" ", 1)[0] + ",Training")
    return Case(csv_path, csv_path, "pixel row has 2303 values, expected 2304", row=3)


def csv_label_9(request: pytest.FixtureRequest) -> Case:
    csv_path = request.getfixturevalue("fer_csv")
    edit_csv_line(csv_path, 1, lambda line: "9" + line[line.index(","):])
    return Case(csv_path, csv_path, "unknown label 9", row=2)


def csv_empty(request: pytest.FixtureRequest) -> Case:
    csv_path = request.getfixturevalue("tmp_path") / "empty.csv"
    csv_path.write_bytes(b"")
    return Case(csv_path, csv_path, "file is empty")


def csv_binary(request: pytest.FixtureRequest) -> Case:
    csv_path = request.getfixturevalue("tmp_path") / "binary.csv"
    csv_path.write_bytes(bytes(range(128, 256)) * 4)
    return Case(csv_path, csv_path, "not a readable UTF-8 CSV", row=1)


def unknown_class_folder(request: pytest.FixtureRequest) -> Case:
    root = request.getfixturevalue("fer_slice")
    folder = root / "Training" / "bored"
    folder.mkdir()
    first_image(root).rename(folder / "x.jpg")
    return Case(root, folder, "unknown emotion label 'bored'")


def empty_class_folder(request: pytest.FixtureRequest) -> Case:
    root = request.getfixturevalue("fer_slice")
    folder = root / "PublicTest" / "disgust"
    for file in folder.iterdir():
        file.unlink()
    return Case(root, folder, "class folder is empty")


def missing_path(request: pytest.FixtureRequest) -> Case:
    path = request.getfixturevalue("tmp_path") / "no-such-data"
    return Case(path, path, "path does not exist")


def unrecognised_folder(request: pytest.FixtureRequest) -> Case:
    path = request.getfixturevalue("tmp_path") / "notes"
    path.mkdir()
    (path / "readme.txt").write_text("hello")
    return Case(path, path, "not a recognised data set")


def jaffe_unknown_code(request: pytest.FixtureRequest) -> Case:
    root = request.getfixturevalue("make_jaffe")()
    bad = root / "KA.XX1.99.tiff"
    (root / "KA.AN1.1.tiff").rename(bad)
    return Case(root, bad, "unknown JAFFE expression code 'XX'")


def class_not_in_map(request: pytest.FixtureRequest) -> Case:
    root = request.getfixturevalue("make_ckplus")(classes=("happy", "sadness"))
    return Case(root, root / "sadness", "not in the class map", class_map={"happy": "happy"},
                cli_args=["--class-map", "happy=happy"])


def too_few_subjects(request: pytest.FixtureRequest) -> Case:
    root = request.getfixturevalue("make_jaffe")(subjects=("KA", "KL"))
    return Case(root, root, "cannot make 5 subject-disjoint folds from 2 subjects")


def broken_link(request: pytest.FixtureRequest) -> Case:
    root = request.getfixturevalue("fer_slice")
    link = root / "Training" / "happy" / "gone.jpg"
    link.symlink_to(root / "no-such-file.jpg")
    return Case(root, link, "cannot read file")


CASES = [corrupt_image, truncated_image, empty_image, csv_wrong_header, csv_short_row,
         csv_label_9, csv_empty, csv_binary, unknown_class_folder, empty_class_folder,
         missing_path, unrecognised_folder, jaffe_unknown_code, class_not_in_map,
         too_few_subjects, broken_link]


def expected_prefix(case: Case) -> str:
    return f"{case.named}, row {case.row}: " if case.row is not None else f"{case.named}: "


@pytest.mark.parametrize("make_case", CASES, ids=lambda f: f.__name__)
def test_library_raises_one_line_data_error(make_case, request: pytest.FixtureRequest) -> None:
    case = make_case(request)
    with pytest.raises(DataError) as info:
        load_dataset(case.path, class_map=case.class_map)
    message = str(info.value)
    assert message.startswith(expected_prefix(case)), message
    assert case.fragment in message
    assert "\n" not in message


@pytest.mark.parametrize("make_case", CASES, ids=lambda f: f.__name__)
def test_cli_prints_one_error_line(make_case, request: pytest.FixtureRequest, run_cli) -> None:
    case = make_case(request)
    result = run_cli("data", "info", case.path, *case.cli_args)
    assert result.code == 2
    assert result.stdout == ""
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: " + expected_prefix(case)), result.stderr
    assert case.fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_errors_are_not_cached(fer_slice: Path, run_cli) -> None:
    bad = first_image(fer_slice)
    good_bytes = bad.read_bytes()
    bad.write_bytes(b"garbage")
    assert run_cli("data", "info", fer_slice).code == 2
    bad.write_bytes(good_bytes)
    assert run_cli("data", "info", fer_slice, "--json").code == 0


def test_console_script_subprocess_error(fer_csv: Path) -> None:
    """The real entry point in a fresh interpreter: exit 2, one line, no traceback."""
    edit_csv_line(fer_csv, 4, lambda line: "9" + line[line.index(","):])
    proc = subprocess.run([sys.executable, "-m", "feraug", "data", "info", str(fer_csv)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [f"error: {fer_csv}, row 5: unknown label 9 "
                                        "(FER2013 labels are 0-6)"]


@pytest.mark.parametrize("link", ["..", "self"])
def test_symlink_loops_are_one_error_line(link: str, fer_slice: Path, run_cli) -> None:
    """A link back to a folder above it, or a link to itself, inside a data set."""
    name = "self" if link == "self" else "loop"
    os.symlink(link, fer_slice / "Training" / "happy" / name)
    res = run_cli("data", "info", fer_slice)
    assert res.code != 0 and len(res.stderr.strip().splitlines()) == 1
    assert "happy" in res.stderr


def test_non_utf8_file_names_load(fer_slice: Path, run_cli) -> None:
    """A file name that is not valid UTF-8 (e.g. Latin-1 from an old archive) still loads."""
    folder = fer_slice / "Training" / "happy"
    first = sorted(folder.iterdir())[0]
    os.rename(first, os.fsencode(folder) + b"/caf\xe9.jpg")
    res = run_cli("data", "info", fer_slice, "--json")
    assert res.code == 0, res.stderr


def test_a_cache_that_cannot_be_written_does_not_break_loading(
        fer_slice: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full cache disk (torch reports RuntimeError) or a read-only one (OSError)."""
    import torch

    def full_disk(*args: object, **kwargs: object) -> None:
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", full_disk)
    assert len(load_dataset(fer_slice)) == 168
    monkeypatch.setenv("FERAUG_CACHE", "/proc/feraug-cache-cannot-exist")
    assert len(load_dataset(fer_slice)) == 168


def test_training_readers_apply_exif_orientation_like_predict(tmp_path: Path) -> None:
    """A phone photo stored sideways with an EXIF rotation tag is upright for training too."""
    import cv2
    import numpy as np
    from PIL import Image

    from feraug.data.images import decode_file, read_gray, resize_gray, to_gray

    pixels = np.zeros((40, 60), dtype=np.uint8)
    pixels[:, :20] = 255  # a bright left band: rotation moves it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    upright = resize_gray(to_gray(decode_file(path, cv2.IMREAD_COLOR)), 48)
    stored = resize_gray(to_gray(decode_file(path, cv2.IMREAD_UNCHANGED)), 48)
    assert np.abs(upright.astype(int) - stored.astype(int)).mean() > 50  # the tag matters
    assert np.abs(read_gray(path, 48).astype(int) - upright.astype(int)).max() <= 2


def test_an_image_declaring_too_many_pixels_is_refused_before_decoding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small file may declare a huge canvas; it is refused from its header, never decoded."""
    import struct
    import zlib

    import cv2

    from feraug.data.images import MAX_PIXELS, read_gray

    side = 8000  # 64 megapixels > MAX_PIXELS, about 64 KB compressed
    assert side * side > MAX_PIXELS
    packer, row = zlib.compressobj(9), b"\x00" + bytes(side)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    png = tmp_path / "canvas.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side,
                                                                        8, 0, 0, 0, 0))
                    + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    def no_decoding(*args: object) -> None:
        raise AssertionError("the canvas was decoded")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    with pytest.raises(DataError, match="canvas.png: declares more pixels than feraug decodes"):
        read_gray(png, 48)
