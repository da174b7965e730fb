"""`feraug synth` on the command line, with a fake generator and a tiny on-disk data set."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import typer
from test_synth import CLASSES, FakeGenerator, make_real
from typer.testing import CliRunner

from feraug.cli import synth_cmd
from feraug.errors import ConfigError, FeraugError

FOLDERS = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test app."""

    synth_cmd.register(app)
    return app


@pytest.fixture
def fer_tree(tmp_path: Path) -> Path:
    """``make_real()`` written as FER2013 usage folders (16 px PNGs)."""
    real = make_real()
    root = tmp_path / "fer"
    for i, (split, label) in enumerate(zip(real.split, real.labels.tolist(), strict=True)):
        folder = root / FOLDERS[split] / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(folder / f"{i:03d}.png"), real.images[i, 0].numpy())
    return root


@pytest.fixture
def generator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ckpt = tmp_path / "gen.pt"
    ckpt.write_bytes(b"fake generator")
    monkeypatch.setattr(synth_cmd, "load_generator_checkpoint",
                        lambda path, device="cpu": FakeGenerator())
    return ckpt


def test_help_lists_plan_options() -> None:
    result = CliRunner().invoke(make_app(), ["synth", "--help"])
    assert result.exit_code == 0
    for word in ("--generator", "--multiply", "--balance", "--filter-model", "--tau",
                 "--delta", "--emotions", "memorisation"):
        assert word in result.output


def test_cli_multiply_json(fer_tree: Path, generator: Path, tmp_path: Path) -> None:
    out = tmp_path / "synth"
    result = CliRunner().invoke(make_app(), [
        "synth", "--generator", str(generator), "--data", str(fer_tree), "--out", str(out),
        "--emotions", "disgust,Anger", "--multiply", "1.5", "--seed", "4", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert {e: c["kept"] for e, c in shown["counts"].items()} == {"angry": 9, "disgust": 3}
    assert shown["generator"]["checkpoint"] == str(generator)
    assert shown["real"]["train_counts"]["happy"] == 10 and "files" not in shown
    assert json.loads((out / "manifest.json").read_text())["plan"]["k"] == 1.5
    assert len(list((out / "angry").glob("angry_4_*.png"))) == 9


def test_cli_table_and_refusals(fer_tree: Path, generator: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    runner, app = CliRunner(), make_app()
    out = tmp_path / "balanced"
    result = runner.invoke(app, ["synth", "-g", str(generator), "-d", str(fer_tree),
                                 "-o", str(out), "--delta", "0"])
    assert result.exit_code == 0, result.output
    assert "kept" in result.output and "disgust" in result.output
    again = runner.invoke(app, ["synth", "-g", str(generator), "-d", str(fer_tree),
                                "-o", str(out)])
    assert isinstance(again.exception, FeraugError) and "not empty" in str(again.exception)
    both = runner.invoke(app, ["synth", "-g", str(generator), "-d", str(fer_tree), "-o",
                               str(tmp_path / "b"), "--balance", "--multiply", "2"])
    assert isinstance(both.exception, ConfigError)

    def never(path: Path, device: str = "cpu") -> None:
        raise AssertionError("the refusal must come before loading the generator")

    monkeypatch.setattr(synth_cmd, "load_generator_checkpoint", never)
    for bad in (fer_tree / "PrivateTest" / "extra", fer_tree / "synth",
                tmp_path / "elsewhere" / "val" / "s"):
        r = runner.invoke(app, ["synth", "-g", str(generator), "-d", str(fer_tree),
                                "-o", str(bad)])
        assert isinstance(r.exception, FeraugError), r.output
        assert not bad.exists()
