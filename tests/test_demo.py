"""``feraug demo`` end to end (quick mode) and the report helpers it is built on."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from feraug.data.procedural import make_procedural_faces
from feraug.reporting.figures import sample_grid_tensor, save_sample_grid, save_training_curves
from feraug.reporting.markdown import (
    confusion_table,
    dataset_table,
    fmt_mean_ci,
    markdown_table,
    per_class_table,
    write_report,
)
from feraug.reporting.stats import mean_ci


def test_quick_demo_runs_the_bundled_config_through_the_experiment_runner(
        run_cli, tmp_path: Path) -> None:
    """`feraug demo --quick`: the bundled config, run by the experiment runner: a guide,
    a guided generator, a synthetic set, the judge's score, two arms x two seeds, a report."""
    out = tmp_path / "demo"
    res = run_cli("demo", "--out", out, "--quick", "--seed", 3, "--json")
    assert res.code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["quick"] is True and summary["seed"] == 3
    assert summary["runs_done"] == summary["runs_total"] == 4
    assert set(summary["arms"]) == {"real", "gan-balance"}
    for arm in ("real", "gan-balance"):
        assert set(summary["test_recall"][arm]) == {"angry", "disgust", "fear", "happy", "sad",
                                                    "surprise", "neutral"}
        assert 0.0 <= summary["arms"][arm]["accuracy"] <= 1.0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "experiment" and manifest["status"] == "complete"
    assert manifest["config"]["seeds"] == [3, 4] and manifest["config"]["data"]["seed"] == 3
    assert manifest["data_fingerprint"] == summary["data_fingerprint"]
    for name in ("report.md", "report.html", "results.json", "summary.json",
                 "classifiers/guide/best.pt", "judge/best.pt",
                 "generators/cyclegan-disgust/checkpoint.pt",
                 "synthetic/disgust-balance/manifest.json",
                 "scores/cyclegan-disgust/score.json", "real/seed3/test/metrics.json",
                 "gan-balance/seed4/test/metrics.json", "figures/samples_real.png",
                 "figures/samples_disgust-balance.png"):
        assert (out / name).is_file(), name
    # the generator was guided by the demo's own guide, and judged by another classifier
    gen = json.loads((out / "generators" / "cyclegan-disgust" / "manifest.json").read_text())
    assert gen["config"]["guide"] == str(out / "classifiers" / "guide" / "best.pt")
    score = json.loads((out / "scores" / "cyclegan-disgust" / "score.json").read_text())
    assert score["guide_sha256"] and score["judge"]["sha256"] != score["guide_sha256"]
    gan = summary["gan"]
    assert (gan["source"], gan["target"]) == ("neutral", "disgust")
    assert gan["synthetic_kept"] > 0 and gan["judge_recall_real"] is not None
    assert gan["checkpoint"] == str(out / "generators" / "cyclegan-disgust" / "checkpoint.pt")
    assert [r["name"] for r in summary["results"]] == ["real", "gan-balance"]
    assert summary["results"][0]["test_recall"] == summary["test_recall"]["real"]
    assert json.loads((out / "summary.json").read_text())["gan"] == gan
    report = (out / "report.md").read_text()
    assert "not real data" in report and "## Generators, judged independently" in report
    assert "samples_disgust-balance.png" in report and "| disgust |" in report
    # the data can be read back by the normal FER2013-folder reader
    assert {p.name for p in (out / "data").iterdir()} == {"Training", "PublicTest",
                                                          "PrivateTest"}
    check_synthetic_faces_train_only(out, manifest)


def check_synthetic_faces_train_only(out: Path, manifest: dict) -> None:
    """The synthetic set was made from real train faces and joins the train split only."""
    from feraug.data.synthetic import split_fingerprint, with_synthetic
    from feraug.experiment.config import parse_experiment_config
    from feraug.experiment.data import load_real_data

    folder = out / "synthetic" / "disgust-balance"
    synth = json.loads((folder / "manifest.json").read_text())
    kept = synth["totals"]["kept"]
    assert synth["emotions"] == ["disgust"]
    assert len(list((folder / "disgust").glob("*.png"))) == kept
    real = load_real_data(parse_experiment_config(manifest["config"]).data)
    assert synth["real"]["split_fingerprint"] == split_fingerprint(real)
    train_sources = {real.source_ids[i] for i in real.indices("train").tolist()}
    assert {f["source"] for f in synth["files"]} <= train_sources
    both = with_synthetic(real, [folder])
    assert int(both.synthetic.sum()) == kept
    for split in ("val", "test"):
        assert both.class_counts(split) == real.class_counts(split)
    results = json.loads((out / "results.json").read_text())
    counts = {(r["arm"], r["seed"]): r["synthetic_train_images"] for r in results["runs"]}
    assert counts[("real", 3)] == 0 and counts[("gan-balance", 3)] == kept


def _tensors(obj: object, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor inside a loaded checkpoint, by its path in the nested structure."""
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    items = obj.items() if isinstance(obj, dict) else (
        enumerate(obj) if isinstance(obj, list | tuple) else ())
    found: dict[str, torch.Tensor] = {}
    for key, value in items:
        found.update(_tensors(value, f"{prefix}/{key}"))
    return found


def _numbers(obj: object) -> object:
    """A JSON document without its timings, file hashes, cache flags and paths (the two runs
    write to different folders)."""
    skip = ("seconds", "sha256", "cache")
    if isinstance(obj, dict):
        return {k: _numbers(v) for k, v in obj.items() if not any(s in k for s in skip)}
    if isinstance(obj, list):
        return [_numbers(v) for v in obj]
    return "(a path)" if isinstance(obj, str) and "/" in obj else obj


def test_quick_demo_is_reproducible(run_cli, tmp_path: Path) -> None:
    """Two runs of the same demo give the same weights at every stage and the same numbers
    (the second takes the reverse test's real arm from the cache the first filled)."""
    outs = [tmp_path / "first", tmp_path / "second"]
    for out in outs:
        res = run_cli("demo", "--out", out, "--quick", "--seed", 5)
        assert res.code == 0, res.stderr
    for name in ("classifiers/guide/last.pt", "generators/cyclegan-disgust/checkpoint.pt",
                 "judge/last.pt", "real/seed6/last.pt", "gan-balance/seed5/last.pt"):
        first, second = (_tensors(torch.load(o / name, map_location="cpu",
                                             weights_only=True)) for o in outs)
        assert first.keys() == second.keys() and first, name
        assert all(torch.equal(first[k], second[k]) for k in first), name
    for name in ("results.json", "scores/cyclegan-disgust/score.json"):
        first, second = (_numbers(json.loads((o / name).read_text())) for o in outs)
        assert first == second, name


def test_quick_demo_without_gan(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "plain"
    res = run_cli("demo", "--out", out, "--quick", "--no-gan", "--json")
    assert res.code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["gan"] is None and list(summary["arms"]) == ["real"]
    for absent in ("synthetic", "generators", "judge", "classifiers"):
        assert not (out / absent).exists(), absent
    report = (out / "report.md").read_text()
    assert "gan-balance" not in report and "| disgust |" in report


def test_demo_prints_where_the_report_is(run_cli, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import feraug.demo

    calls = []

    def fake_run_demo(out_dir: Path, quick: bool = False, seed: int = 0,
                      gan: bool = True, log=None) -> dict:
        calls.append((out_dir, quick, seed, gan))
        arms = {"real": {"accuracy": 0.5, "accuracy_ci95": 0.1, "macro_f1": 0.25,
                         "macro_f1_ci95": 0.05},
                "gan-balance": {"accuracy": 0.75, "accuracy_ci95": None, "macro_f1": 0.625,
                                "macro_f1_ci95": None}}
        if not gan:
            arms.pop("gan-balance")
        return {"arms": arms,
                "test_recall": {a: {"happy": 1.0, "sad": 0.5} for a in arms},
                "gan": {"model": "cyclegan", "source": "happy", "target": "sad", "steps": 3,
                        "synthetic_kept": 7, "judge_agreement": 0.5,
                        "judge_recall_real": 0.25} if gan else None,
                "report": str(out_dir / "report.md")}

    monkeypatch.setattr(feraug.demo, "run_demo", fake_run_demo)
    out = tmp_path / "plain"
    res = run_cli("demo", "--out", out, "--seed", 4)
    assert res.code == 0, res.stderr
    assert calls == [(out, False, 4, True)]
    assert f"report: {out / 'report.md'}" in res.stdout and "report.html" in res.stdout
    assert "macro-F1 0.2500 ± 0.0500" in res.stdout and "macro-F1 0.6250" in res.stdout
    assert "sad" in res.stdout and "7 synthetic images" in res.stdout
    res = run_cli("demo", "--out", out, "--no-gan")
    assert res.code == 0, res.stderr
    assert calls[-1] == (out, False, 0, False)
    assert "gan-balance" not in res.stdout and "macro-F1 0.2500" in res.stdout


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
    sad_only = ds.select((ds.labels == ds.classes.index("sad")).nonzero().flatten())
    cells, names = sample_grid_tensor(sad_only, per_class=4)
    assert names == ["sad"] and cells.shape[0] == 4  # no empty rows for absent classes
    curves = save_training_curves(
        [{"epoch": 1, "train_loss": 1.2, "val_accuracy": 0.4, "val_macro_f1": 0.3, "lr": 1e-3},
         {"epoch": 2, "train_loss": 0.9, "val_accuracy": 0.5, "val_macro_f1": 0.4, "lr": 5e-4}],
        tmp_path / "curves.png")
    assert grid.stat().st_size > 1000 and curves.stat().st_size > 1000
    path = write_report(tmp_path, "Title", [("Data", table), ("Empty", "")], intro="Hello.")
    text = path.read_text()
    assert text.startswith("# Title\n\nHello.\n")
    assert "## Data\n\n| class |" in text and "## Empty" in text
