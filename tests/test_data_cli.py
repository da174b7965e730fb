"""``feraug data info`` / ``cache-dir`` / ``formats``: help, table and JSON output, options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import FER_LABELS

from feraug.cli.data_cmd import FORMAT_NAMES, parse_class_map, render_summary
from feraug.data.load import load_dataset
from feraug.data.readers import READERS
from feraug.errors import ConfigError


def test_help_for_every_command(run_cli) -> None:
    top = run_cli("--help")
    assert top.code == 0 and "data" in top.stdout
    group = run_cli("data", "--help")
    assert group.code == 0
    for command in ("info", "cache-dir", "formats"):
        assert command in group.stdout
    info = run_cli("data", "info", "--help")
    assert info.code == 0
    for option in ("--format", "--size", "--json", "--no-cache", "--class-map", "--folds",
                   "--fold", "--seed", *FORMAT_NAMES):
        assert option in info.stdout, option
    for command in ("cache-dir", "formats"):
        result = run_cli("data", command, "--help")
        assert result.code == 0 and "Usage" in result.stdout


def test_format_names_match_registry() -> None:
    assert FORMAT_NAMES == tuple(READERS)


def test_info_table(fer_slice: Path, run_cli) -> None:
    result = run_cli("data", "info", fer_slice)
    assert result.code == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "fer2013-folders" in out and "48x48" in out
    assert load_dataset(fer_slice).fingerprint() in out
    assert "Subjects:" in out and "unknown" in out
    lines = out.splitlines()
    for cls in FER_LABELS:
        (row,) = [line for line in lines if f" {cls} " in line]
        assert [c for c in row.replace("│", " ").split() if c.isdigit()] == ["8", "8", "8", "24"]
    (total,) = [line for line in lines if " total " in line]
    assert "56" in total and "168" in total


def test_info_json_is_exactly_the_summary(fer_slice: Path, run_cli) -> None:
    result = run_cli("data", "info", fer_slice, "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == load_dataset(fer_slice).summary()


def test_info_json_subprocess(make_jaffe) -> None:
    """The real console entry point: stdout holds the JSON summary and nothing else."""
    root = make_jaffe()
    proc = subprocess.run(
        [sys.executable, "-m", "feraug", "data", "info", str(root), "--json", "--fold", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == load_dataset(root, fold=2).summary()


def test_info_real_fer2013_counts(fer_real_root: Path, run_cli, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The full shared FER2013 folders: 28,709 / 3,589 / 3,589. Decoding 35,887 images would be
    slow, so only the decoder is replaced (listing, labels and splits are the real ones)."""
    from feraug.data import classfolders

    def blank(paths: list[Path], size: int, desc: str = "") -> torch.Tensor:
        return torch.zeros(len(paths), 1, size, size, dtype=torch.uint8)

    monkeypatch.setattr(classfolders, "decode_files", blank)
    result = run_cli("data", "info", fer_real_root, "--json", "--no-cache")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["format"] == "fer2013-folders"
    assert {s: v["total"] for s, v in summary["splits"].items()} == {
        "train": 28709, "val": 3589, "test": 3589}
    assert summary["splits"]["train"]["disgust"] == 436
    render_summary(summary)
    table = capsys.readouterr().out
    assert "28,709" in table and "3,589" in table and "35,887" in table


def test_info_class_map(make_ckplus, run_cli) -> None:
    root = make_ckplus(classes=("happy", "sadness"), per_class=2)
    (root / "happy").rename(root / "a")
    (root / "sadness").rename(root / "b")
    count = sum(1 for _ in root.glob("*/*.png"))
    result = run_cli("data", "info", root, "--json", "--class-map", "a=happy, b=Sadness")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["format"] == "imagefolder"
    assert summary["classes"] == ["happy", "sad"]
    assert summary["num_images"] == count
    assert summary["splits"]["train"]["total"] > 0


@pytest.mark.parametrize(("text", "fragment"), [
    ("a", "'a' is not FOLDER=EMOTION"),
    ("a=happy,a=sad", "mapped twice"),
    ("a=bored", "unknown emotion label 'bored'"),
    (" , ", "no FOLDER=EMOTION pairs"),
])
def test_bad_class_map(text: str, fragment: str, fer_slice: Path, run_cli) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_class_map(text)
    result = run_cli("data", "info", fer_slice, "--class-map", text)
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: --class-map: ") and result.stderr.count("\n") == 1


def test_parse_class_map_canonicalises() -> None:
    assert parse_class_map("x=Anger,y=joy") == {"x": "angry", "y": "happy"}
    assert parse_class_map(None) is None


def test_format_option(make_ckplus, fer_slice: Path, run_cli) -> None:
    root = make_ckplus()
    auto = json.loads(run_cli("data", "info", root, "--json").stdout)
    forced = json.loads(run_cli("data", "info", root, "--json", "--format", "imagefolder").stdout)
    assert auto["format"] == "ckplus" and auto["subjects"] == 10
    assert forced["format"] == "imagefolder" and forced["subjects"] is None
    assert forced["num_images"] == auto["num_images"]
    unknown = run_cli("data", "info", root, "--format", "affectnet")
    assert unknown.code == 2
    assert unknown.stderr.startswith("error: --format: unknown data format 'affectnet'")
    mismatch = run_cli("data", "info", fer_slice, "-f", "ckplus")
    assert mismatch.code == 2
    assert mismatch.stderr == f"error: {fer_slice}: does not look like format 'ckplus'\n"


def test_folds_and_size(make_jaffe, run_cli) -> None:
    root = make_jaffe()
    fold0 = json.loads(run_cli("data", "info", root, "--json").stdout)
    fold3 = json.loads(run_cli("data", "info", root, "--json", "--folds", "5", "--fold", "3",
                               "--size", "32").stdout)
    assert fold3["image_size"] == [32, 32] and fold0["image_size"] == [48, 48]
    assert fold0["splits"]["test"]["total"] == 14  # 2 of 10 subjects, 7 images each
    assert fold0["fingerprint"] != fold3["fingerprint"]
    ten = json.loads(run_cli("data", "info", root, "--json", "--folds", "10").stdout)
    assert ten["splits"]["test"]["total"] == 7  # one subject per fold
    out_of_range = run_cli("data", "info", root, "--folds", "5", "--fold", "5")
    assert out_of_range.code == 2
    assert out_of_range.stderr == "error: --fold: 5 is out of range for --folds 5 (use 0..4)\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--size", "0"], "--size: 0 is outside 8-1024 pixels"),
    (["--folds", "1"], "--folds: need at least 2 folds, got 1"),
    (["--fold", "-1"], "--fold: -1 is out of range for --folds 5 (use 0..4)"),
])
def test_bad_numbers(args: list[str], message: str, fer_slice: Path, run_cli) -> None:
    result = run_cli("data", "info", fer_slice, *args)
    assert result.code == 2 and result.stdout == ""
    assert result.stderr == f"error: {message}\n"


@pytest.mark.parametrize("args", [["data", "info"], ["data", "info", ".", "--bogus"],
                                  ["data", "nope"]])
def test_usage_errors_exit_nonzero(args: list[str], run_cli) -> None:
    result = run_cli(*args)
    assert result.code == 2
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_no_cache_writes_nothing(fer_csv: Path, tmp_path: Path, run_cli,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("FERAUG_CACHE", str(cache))
    assert run_cli("data", "info", fer_csv, "--no-cache").code == 0
    assert not cache.exists()
    assert run_cli("data", "info", fer_csv).code == 0
    assert len(list(cache.glob("fer2013-csv-48-*.pt"))) == 1


def test_cache_dir_and_formats(run_cli, cache_root: Path) -> None:
    result = run_cli("data", "cache-dir")
    assert result.code == 0 and result.stdout == f"{cache_root}\n"
    listed = run_cli("data", "formats").stdout.splitlines()
    assert [line.split()[0] for line in listed] == list(READERS)



def test_installed_console_script_uses_main() -> None:
    """`feraug` must run main() (which turns FeraugError into one line), not the bare app."""
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="feraug")
    assert script.value == "feraug.cli.main:main"


@pytest.mark.parametrize("command,extra", [(("experiment", "run"), "feraug[cluster]"),
                                           (("predict",), "feraug[detect]")])
def test_help_shows_pip_extras_literally(run_cli, command, extra, monkeypatch) -> None:
    # the help renderer reads square brackets as markup; an extra's name must survive it
    monkeypatch.setenv("COLUMNS", "400")
    result = run_cli(*command, "--help")
    assert result.code == 0
    assert extra in result.stdout
