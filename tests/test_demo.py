"""``feraug demo`` end to end (quick mode) and the report helpers it is built on."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from feraug.data.procedural import make_procedural_faces
from feraug.report import (
    confusion_table,
    dataset_table,
    fmt_mean_ci,
    markdown_table,
    mean_ci,
    per_class_table,
    save_sample_grid,
    save_training_curves,
    write_report,
)


def test_quick_demo_writes_report_figures_and_manifest(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = run_cli("demo", "--out", out, "--quick", "--seed", 3, "--json")
    assert res.code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["quick"] is True and summary["seed"] == 3
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert set(summary["test_recall"]) == {"angry", "disgust", "fear", "happy", "sad",
                                           "surprise", "neutral"}
    for name in ("report.md", "manifest.json", "samples.png", "curves.png",
                 "test/confusion.png", "test/metrics.json", "train/best.pt"):
        assert (out / name).is_file(), name
    for png in ("samples.png", "curves.png", "test/confusion.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "not real data" in report
    assert "![samples](samples.png)" in report and "(test/confusion.png)" in report
    assert "| disgust |" in report  # per-class table
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "demo" and manifest["seed"] == 3
    assert manifest["data_fingerprint"] == summary["data_fingerprint"]
    # the data can be read back by the normal FER2013-folder reader
    assert {p.name for p in (out / "data").iterdir()} == {"Training", "PublicTest", "PrivateTest"}


def test_demo_prints_where_the_report_is(run_cli, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import feraug.demo

    calls = []

    def fake_run_demo(out_dir: Path, quick: bool = False, seed: int = 0) -> dict:
        calls.append((out_dir, quick, seed))
        return {"test_accuracy": 0.5, "test_macro_f1": 0.25, "epochs": 1,
                "test_recall": {"happy": 1.0, "sad": 0.0},
                "report": str(out_dir / "report.md")}

    monkeypatch.setattr(feraug.demo, "run_demo", fake_run_demo)
    out = tmp_path / "plain"
    res = run_cli("demo", "--out", out, "--seed", 4)
    assert res.code == 0, res.stderr
    assert calls == [(out, False, 4)]
    assert f"report: {out / 'report.md'}" in res.stdout
    assert "macro-F1 0.2500" in res.stdout and "sad" in res.stdout


def test_demo_refuses_a_non_empty_folder(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    res = run_cli("demo", "--out", out, "--quick")
    assert res.code == 2
    assert "not empty" in res.stderr and str(out) in res.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_demo_help(run_cli) -> None:
    res = run_cli("demo", "--help")
    assert res.code == 0
    for flag in ("--out", "--quick", "--seed", "--json"):
        assert flag in res.stdout


# ----------------------------------------------------------------------------- report helpers


def test_markdown_table_and_mean_ci() -> None:
    table = markdown_table(["method", "acc"], [["a|b", 0.5], ["none", None]])
    lines = table.splitlines()
    assert lines[0] == "| method | acc |"
    assert lines[1] == "| :--- | ---: |"
    assert lines[2] == "| a\\|b | 0.500 |"
    assert lines[3] == "| none | — |"
    with pytest.raises(ValueError):
        markdown_table(["a", "b"], [[1]])
    mean, half = mean_ci([0.70, 0.72, 0.74])
    assert mean == pytest.approx(0.72)
    assert half == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-4)
    assert fmt_mean_ci([0.70, 0.72, 0.74]) == "0.720 ± 0.050"
    assert fmt_mean_ci([0.7]) == "0.700"
    assert fmt_mean_ci([]) == "—"


def test_report_tables_figures_and_file(tmp_path: Path) -> None:
    ds = make_procedural_faces({"happy": 12, "sad": 10, "surprise": 8}, n_identities=5)
    table = dataset_table(ds)
    assert "| **total** |" in table and "| happy |" in table
    metrics = {
        "classes": ["happy", "sad"],
        "per_class": {"happy": {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 2},
                      "sad": {"precision": 0.5, "recall": 1.0, "f1": 0.667, "support": 1}},
        "confusion_matrix": [[1, 1], [0, 1]],
    }
    assert "| sad | 0.500 | 1.000 | 0.667 | 1 |" in per_class_table(metrics)
    assert "| **happy** | 1 | 1 |" in confusion_table(metrics)
    grid = save_sample_grid(ds, tmp_path / "grid.png", per_class=4)
    curves = save_training_curves(
        [{"epoch": 1, "train_loss": 1.2, "val_accuracy": 0.4, "val_macro_f1": 0.3, "lr": 1e-3},
         {"epoch": 2, "train_loss": 0.9, "val_accuracy": 0.5, "val_macro_f1": 0.4, "lr": 5e-4}],
        tmp_path / "curves.png")
    assert grid.stat().st_size > 1000 and curves.stat().st_size > 1000
    path = write_report(tmp_path, "Title", [("Data", table), ("Empty", "")], intro="Hello.")
    text = path.read_text()
    assert text.startswith("# Title\n\nHello.\n")
    assert "## Data\n\n| class |" in text and "## Empty" in text
