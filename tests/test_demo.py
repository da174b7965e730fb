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
                 "test/confusion.png", "test/metrics.json", "train/best.pt",
                 "generated.png", "gan/checkpoint.pt", "synthetic/manifest.json",
                 "train_synthetic/best.pt", "test_synthetic/metrics.json",
                 "test_synthetic/confusion.png"):
        assert (out / name).is_file(), name
    for png in ("samples.png", "curves.png", "test/confusion.png", "generated.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "not real data" in report
    assert "![samples](samples.png)" in report and "(test/confusion.png)" in report
    assert "| disgust |" in report  # per-class table
    assert "![generated faces](generated.png)" in report
    assert "| recall disgust (target) |" in report and "feraug experiment" in report
    assert "noise by design" in report  # quick mode says plainly what its samples are
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "demo" and manifest["seed"] == 3
    assert manifest["data_fingerprint"] == summary["data_fingerprint"]
    # the data can be read back by the normal FER2013-folder reader
    assert {p.name for p in (out / "data").iterdir()} == {"Training", "PublicTest", "PrivateTest"}
    # every stage is timed, wall-clock and CPU
    stages = {"data", "training", "evaluation", "gan_training", "synthesis",
              "training_synthetic", "evaluation_synthetic"}
    assert stages <= set(summary["seconds"]) and stages <= set(summary["cpu_seconds"])
    check_generator_step(out, summary, seed=3)


def check_generator_step(out: Path, summary: dict, seed: int) -> None:
    """The quick demo's generator step: a synthetic set with its manifest, made from real
    train faces, added to the train split only, and both result rows in the summary."""
    from feraug.data.synthetic import split_fingerprint, with_synthetic
    from feraug.demo import demo_plan

    gan = summary["gan"]
    assert gan["model"] == "cyclegan" and (gan["source"], gan["target"]) == ("neutral",
                                                                            "disgust")
    kept = gan["synthetic_kept"]
    assert kept > 0
    # both result rows, the second with the synthetic images added to training
    real_row, aug_row = summary["results"]
    assert (real_row["name"], aug_row["name"]) == ("real only", "real + synthetic")
    assert real_row["synthetic_images"] == 0 and aug_row["synthetic_images"] == kept
    assert aug_row["train_images"] == real_row["train_images"] + kept
    assert real_row["test_support"] == aug_row["test_support"]  # the same test split
    assert real_row["test_accuracy"] == summary["test_accuracy"]
    for row in (real_row, aug_row):
        assert 0.0 <= row["test_macro_f1"] <= 1.0 and "disgust" in row["test_recall"]
    # the synthetic folder: only the target emotion, files and manifest agree
    synth = json.loads((out / "synthetic" / "manifest.json").read_text())
    assert synth["totals"]["kept"] == kept and synth["emotions"] == ["disgust"]
    assert [p.name for p in (out / "synthetic").iterdir() if p.is_dir()] == ["disgust"]
    assert len(list((out / "synthetic" / "disgust").glob("*.png"))) == kept
    assert all(f["source"] for f in synth["files"])  # each made from a real train face
    # rebuild the demo's data: the synthetic faces land in the train split only
    plan = demo_plan(quick=True)
    real = make_procedural_faces(plan["counts"], size=48, n_identities=plan["n_identities"],
                                 seed=seed)
    assert synth["real"]["split_fingerprint"] == split_fingerprint(real)
    train_sources = {real.source_ids[i] for i in real.indices("train").tolist()}
    assert {f["source"] for f in synth["files"]} <= train_sources
    both = with_synthetic(real, [out / "synthetic"])
    assert int(both.synthetic.sum()) == kept
    assert {both.split[i] for i in both.synthetic.nonzero().flatten().tolist()} == {"train"}
    for split in ("val", "test"):
        assert both.class_counts(split) == real.class_counts(split)
        assert not bool(both.synthetic[both.indices(split)].any())
    trained = json.loads((out / "train_synthetic" / "manifest.json").read_text())
    assert trained["data_summary"]["synthetic"] == kept
    assert trained["config"]["synthetic"] == [str(out / "synthetic")]


def test_quick_demo_without_gan(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "plain"
    res = run_cli("demo", "--out", out, "--quick", "--no-gan", "--json")
    assert res.code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["gan"] is None and [r["name"] for r in summary["results"]] == ["real only"]
    assert not (out / "synthetic").exists() and not (out / "generated.png").exists()
    assert "gan_training" not in summary["seconds"]
    report = (out / "report.md").read_text()
    assert "real + synthetic" not in report and "| disgust |" in report


def test_demo_prints_where_the_report_is(run_cli, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import feraug.demo

    calls = []

    def fake_run_demo(out_dir: Path, quick: bool = False, seed: int = 0,
                      gan: bool = True) -> dict:
        calls.append((out_dir, quick, seed, gan))
        rows = [{"name": "real only", "test_accuracy": 0.5, "test_macro_f1": 0.25,
                 "test_recall": {"happy": 1.0, "sad": 0.0}},
                {"name": "real + synthetic", "test_accuracy": 0.75, "test_macro_f1": 0.625,
                 "test_recall": {"happy": 1.0, "sad": 0.5}}][: 2 if gan else 1]
        return {"test_accuracy": 0.5, "test_macro_f1": 0.25, "epochs": 1,
                "test_recall": {"happy": 1.0, "sad": 0.0}, "results": rows,
                "gan": {"model": "cyclegan", "source": "happy", "target": "sad", "steps": 3,
                        "synthetic_kept": 7} if gan else None,
                "report": str(out_dir / "report.md")}

    monkeypatch.setattr(feraug.demo, "run_demo", fake_run_demo)
    out = tmp_path / "plain"
    res = run_cli("demo", "--out", out, "--seed", 4)
    assert res.code == 0, res.stderr
    assert calls == [(out, False, 4, True)]
    assert f"report: {out / 'report.md'}" in res.stdout
    assert "macro-F1 0.2500" in res.stdout and "macro-F1 0.6250" in res.stdout
    assert "sad" in res.stdout and "7 synthetic images" in res.stdout
    res = run_cli("demo", "--out", out, "--no-gan")
    assert res.code == 0, res.stderr
    assert calls[-1] == (out, False, 0, False)
    assert "real + synthetic" not in res.stdout and "macro-F1 0.2500" in res.stdout


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
    for flag in ("--out", "--quick", "--seed", "--json", "--no-gan"):
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
