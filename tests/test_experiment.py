"""``feraug experiment``: a tiny experiment end to end (procedural faces, a class-weighted arm
and an arm with a synthetic folder), resuming/skipping on rerun, refusal of foreign folders
and changed configs, the dry run, and the aggregate maths on hand-made numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import pytest
import typer
import yaml
from browser import find_chromium, render
from typer.testing import CliRunner

from feraug.cli.experiment_cmd import register
from feraug.errors import ConfigError, FeraugError
from feraug.experiment.aggregate import csv_rows, summarise, verdict
from feraug.experiment.config import load_experiment_config, parse_experiment_config
from feraug.reporting.stats import ci_summary, paired_delta

T_975_DF2 = 4.302652729911275  # Student t quantile, 97.5%, 2 degrees of freedom
COUNTS = {"angry": 10, "disgust": 5, "fear": 10, "happy": 14, "sad": 10, "surprise": 10,
          "neutral": 12}


def tiny_config(out: Path, synthetic: Path | None = None, **base: object) -> dict:
    """A config mapping: 2 seeds, real + class-weighted (+ a synthetic arm), 2 steps each."""
    arms: list[dict] = [{"name": "real"}, {"name": "class-weighted", "class_weighted_loss": True}]
    if synthetic is not None:
        arms.append({"name": "syn", "synthetic": [str(synthetic)]})
    return {"title": "tiny experiment",
            "data": {"path": "procedural", "n_per_class": COUNTS, "n_identities": 10},
            "base": {"model": "zhu-cnn", "epochs": 1, "max_steps": 2, "batch_size": 16,
                     "device": "cpu", **base},
            "seeds": [0, 1], "arms": arms, "out": str(out), "tsne_points": 120}


def write_synthetic_set(cfg_values: dict, folder: Path) -> int:
    """A stand-in for a `feraug synth` folder: mirrored real *train* disgust faces plus a
    manifest whose split fingerprint matches the experiment's data. Returns the image count."""
    from feraug.data.synthetic import FORMAT, split_fingerprint
    from feraug.experiment.data import load_real_data

    real = load_real_data(parse_experiment_config(cfg_values).data)
    train = real.indices("train")
    d = real.classes.index("disgust")
    picks = train[real.labels[train] == d][:6]
    (folder / "disgust").mkdir(parents=True)
    for i, idx in enumerate(picks.tolist()):
        cv2.imwrite(str(folder / "disgust" / f"disgust_0_{i}.png"),
                    real.images[idx, 0].flip(-1).numpy())
    (folder / "manifest.json").write_text(json.dumps(
        {"format": FORMAT, "real": {"split_fingerprint": split_fingerprint(real)}}))
    return len(picks)


def cli_app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _main() -> None:
        """feraug (test app)."""

    return app


# ----------------------------------------------------------------------------- maths


def test_mean_and_t_interval_for_three_seeds() -> None:
    s = ci_summary([0.5, 0.6, 0.7])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.6)
    assert s["sd"] == pytest.approx(0.1)
    assert s["ci95"] == pytest.approx(T_975_DF2 * 0.1 / math.sqrt(3))  # 0.2484
    assert s["low"] == pytest.approx(0.6 - s["ci95"])
    assert s["high"] == pytest.approx(0.6 + s["ci95"])
    one = ci_summary([0.42])
    assert one["mean"] == 0.42 and one["ci95"] is None and one["low"] is None


def test_paired_difference_uses_common_seeds_only() -> None:
    base = {0: 0.50, 1: 0.60, 2: 0.70, 3: 0.10}
    better = {0: 0.55, 1: 0.66, 2: 0.74}  # +0.05, +0.06, +0.04 -> clearly above zero
    d = paired_delta(better, base)
    assert d["seeds"] == [0, 1, 2] and d["n"] == 3
    assert d["mean"] == pytest.approx(0.05)
    assert d["ci95"] == pytest.approx(T_975_DF2 * 0.01 / math.sqrt(3))
    assert d["excludes_zero"] is True
    noisy = paired_delta({0: 0.6, 1: 0.6, 2: 0.9}, base)  # +0.1, 0.0, +0.2
    assert noisy["mean"] == pytest.approx(0.1) and noisy["excludes_zero"] is False
    assert "includes zero" in verdict("noisy", "real", noisy)
    assert "excludes zero" in verdict("better", "real", d) and "better than" in verdict(
        "better", "real", d)
    single = paired_delta({0: 0.7}, base)
    assert single["excludes_zero"] is None and "no conclusion" in verdict("x", "real", single)


def test_summarise_hand_made_records() -> None:
    def rec(arm: str, seed: int, acc: float, f1: float, r_happy: float) -> dict:
        return {"arm": arm, "seed": seed, "accuracy": acc, "macro_f1": f1,
                "classes": ["happy", "sad"],
                "per_class": {"happy": {"recall": r_happy}, "sad": {"recall": 1 - r_happy}}}

    records = [rec("real", s, 0.5 + 0.1 * s, 0.4, 0.5) for s in range(3)]
    records += [rec("cw", s, 0.55 + 0.1 * s, 0.45 + 0.01 * s, 0.6) for s in range(2)]
    res = summarise(records, ["real", "cw"], "real", expected_seeds=[0, 1, 2])
    assert res["classes"] == ["happy", "sad"]
    assert res["arms"]["real"]["accuracy"]["ci95"] == pytest.approx(T_975_DF2 * 0.1 / 3 ** 0.5)
    assert "delta_vs_baseline" not in res["arms"]["real"]
    delta = res["arms"]["cw"]["delta_vs_baseline"]
    assert delta["accuracy"]["seeds"] == [0, 1]
    assert delta["accuracy"]["mean"] == pytest.approx(0.05)
    assert delta["recall"]["happy"]["mean"] == pytest.approx(0.1)
    assert res["missing_runs"] == [{"arm": "cw", "seed": 2}]
    header, rows = csv_rows(res)
    assert header[:3] == ["arm", "n_seeds", "accuracy_mean"] and len(rows) == 2
    assert rows[0][header.index("delta_accuracy_mean")] == ""  # baseline: no delta
    json.dumps(res, allow_nan=False)  # strict JSON: NaN became None


# ----------------------------------------------------------------------------- config


def test_config_errors_name_the_problem(tmp_path: Path) -> None:
    good = tiny_config(tmp_path / "x")
    cfg = parse_experiment_config(good)
    assert cfg.baseline == "real" and cfg.runs() == [("real", 0), ("real", 1),
                                                     ("class-weighted", 0), ("class-weighted", 1)]
    tc = cfg.train_config("class-weighted", 1, tmp_path / "r")
    assert tc.class_weighted_loss and tc.seed == 1 and tc.max_steps == 2
    bad_cases = [
        ({"arms": [{"name": "a"}, {"name": "a"}]}, "unique"),
        ({"arms": [{"name": "bad/name"}]}, "arm name"),
        ({"arms": [{"name": "a", "seed": 3}]}, "cannot be set per arm"),
        ({"arms": [{"name": "a", "lr": -1}]}, "arm 'a'"),
        ({"arms": [{"name": "a", "no_such_option": 1}]}, "no_such_option"),
        ({"seeds": [1, 1]}, "distinct"),
        ({"baseline": "nope"}, "baseline"),
        ({"base": {"out": "elsewhere"}}, "cannot be set in `base`"),
    ]
    for change, words in bad_cases:
        with pytest.raises(ConfigError, match=words):
            parse_experiment_config({**good, **change}, source="exp.yaml")


def test_dry_run_lists_every_arm_and_seed(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path / "unused")))
    out = tmp_path / "planned"
    res = CliRunner().invoke(cli_app(), ["experiment", "run", str(path), "--out", str(out),
                                         "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert [(r["arm"], r["seed"], r["status"]) for r in plan["runs"]] == [
        ("real", 0, "todo"), ("real", 1, "todo"), ("class-weighted", 0, "todo"),
        ("class-weighted", 1, "todo")]
    assert plan["runs"][2]["run_dir"] == str(out / "class-weighted" / "seed0")
    assert plan["problems"] == [] and not out.exists()  # nothing written
    text = CliRunner().invoke(cli_app(), ["experiment", "run", str(path), "--dry-run"])
    assert text.exit_code == 0 and "4 run(s)" in text.stdout


def test_shipped_configs_validate() -> None:
    root = Path(__file__).resolve().parents[1] / "configs"
    demo = load_experiment_config(root / "experiment_demo.yaml")
    assert demo.data.is_procedural and len(demo.runs()) >= 6
    fer = load_experiment_config(root / "experiment_fer2013.yaml")
    assert [a.name for a in fer.arms] == ["real", "class-weighted", "balanced",
                                          "logit-adjusted", "gan-balance"]
    assert fer.seeds == [0, 1, 2] and fer.arm("gan-balance").synthetic
    assert fer.arm("logit-adjusted").train["logit_adjust_tau"] == 1.0


# ----------------------------------------------------------------------------- end to end


def test_tiny_experiment_end_to_end_and_resume(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import feraug.experiment.runner as runner

    out = tmp_path / "exp"
    values = tiny_config(out, synthetic=tmp_path / "syn")
    n_syn = write_synthetic_set(values, tmp_path / "syn")
    assert n_syn > 0
    cfg = parse_experiment_config(values)
    summary = runner.run_experiment(cfg)
    assert summary["runs_done"] == summary["runs_total"] == 6

    results = json.loads((out / "results.json").read_text())
    for arm in ("real", "class-weighted", "syn"):
        for key in ("mean", "ci95", "low", "high", "n", "values"):
            assert key in results["arms"][arm]["accuracy"], (arm, key)
        assert set(results["arms"][arm]["recall"]) == set(COUNTS)
    delta = results["arms"]["syn"]["delta_vs_baseline"]["accuracy"]
    assert delta["seeds"] == [0, 1] and isinstance(delta["excludes_zero"], bool)
    assert [r["synthetic_train_images"] for r in results["runs"]] == [0, 0, 0, 0, n_syn, n_syn]
    assert (out / "results.csv").read_text().startswith("arm,n_seeds,")
    for png in ("figures/metrics.png", "figures/tsne.png", "real/seed0/test/confusion.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page
    assert page.count("data:image/png;base64,") >= 3 and 'src="figures/' not in page
    assert "tiny experiment" in page
    report = (out / "report.md").read_text()
    for words in ("| `class-weighted` | 2 |", "Δ accuracy vs real", "not real data",
                  "![t-SNE](figures/tsne.png)", "(class-weighted/seed0/test/confusion.png)",
                  "**syn** vs real, test accuracy", "| disgust |", "git commit",
                  "data fingerprint"):
        assert words in report, words
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "experiment" and manifest["status"] == "complete"
    assert manifest["seeds"] == [0, 1] and manifest["data_fingerprint"]

    calls: list[tuple[str, bool]] = []
    import feraug.experiment.runs as runs

    real_fit = runs.fit

    def counting_fit(config, dataset=None, resume=False, **kw):
        calls.append((config.out, resume))
        return real_fit(config, dataset=dataset, resume=resume, **kw)

    monkeypatch.setattr(runs, "fit", counting_fit)
    marker = out / "real" / "seed1" / "best.pt"
    before = marker.stat().st_mtime_ns
    runner.run_experiment(cfg)  # everything finished: nothing retrained
    assert calls == [] and marker.stat().st_mtime_ns == before

    (out / "class-weighted" / "seed1" / "test" / "metrics.json").unlink()  # half-done run
    runner.run_experiment(cfg)
    assert calls == [(str(out / "class-weighted" / "seed1"), True)]

    # re-aggregating from the folder alone (CLI), without reloading the data
    res = CliRunner().invoke(cli_app(), ["experiment", "report", str(out), "--no-tsne",
                                         "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["runs_done"] == 6

    # a changed training setting is refused, not mixed into the old runs
    changed = parse_experiment_config(tiny_config(out, synthetic=tmp_path / "syn", lr=0.5))
    with pytest.raises(ConfigError, match="different configuration"):
        runner.run_experiment(changed)


def test_refuses_foreign_output_folder(tmp_path: Path) -> None:
    import feraug.experiment.runner as runner

    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FeraugError, match="refusing to overwrite"):
        runner.run_experiment(parse_experiment_config(tiny_config(out)))
    (out / "manifest.json").write_text(json.dumps({"kind": "train"}))
    with pytest.raises(FeraugError, match="not an experiment"):
        runner.run_experiment(parse_experiment_config(tiny_config(out)))
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "notes.txt"]


def test_runs_as_submitit_local_jobs_match_sequential_runs(tmp_path: Path) -> None:
    """The same experiment through submitit's local executor (separate processes) gives the
    same per-run metrics as the sequential runner, and skips finished runs when continued."""
    from feraug.experiment.runner import run_experiment

    seq_values = tiny_config(tmp_path / "seq")
    seq_values["arms"] = seq_values["arms"][:1]
    job_values = {**seq_values, "out": str(tmp_path / "jobs"),
                  "executor": {"kind": "submitit-local", "max_parallel": 2}}
    seq = json.loads(Path(run_experiment(parse_experiment_config(seq_values))["results_json"])
                     .read_text())
    lines: list[str] = []
    summary = run_experiment(parse_experiment_config(job_values), log=lines.append)
    jobs = json.loads(Path(summary["results_json"]).read_text())
    assert summary["runs_done"] == 2
    assert [r["accuracy"] for r in jobs["runs"]] == [r["accuracy"] for r in seq["runs"]]
    assert sum("submitted" in m for m in lines) == 2
    assert any((tmp_path / "jobs" / "jobs").rglob("*_log.out"))
    lines.clear()
    run_experiment(parse_experiment_config(job_values), log=lines.append)
    assert not any("submitted" in m for m in lines)


def test_unknown_executor_is_a_config_error(tmp_path: Path) -> None:
    values = {**tiny_config(tmp_path / "x"), "executor": {"kind": "kubernetes"}}
    with pytest.raises(ConfigError, match="executor"):
        parse_experiment_config(values, source="exp.yaml")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory):
    """configs/smoke.yaml run once for the tests that read its folder."""
    import feraug.experiment.runner as runner

    out = tmp_path_factory.mktemp("smoke") / "smoke"
    cfg = load_experiment_config(Path(__file__).parents[1] / "configs" / "smoke.yaml", out=out)
    lines: list[str] = []
    summary = runner.run_experiment(cfg, log=lines.append)
    return cfg, out, summary, lines


SMOKE_SECTIONS = ["Main result", "Did it help?", "Generators, judged independently", "Faces",
                  "Per-class recall", "Confusion matrices", "Feature space (t-SNE)", "Runs",
                  "What was run", "Files"]


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium installed (Debian: apt-get "
                    "install chromium; .ci/run installs it)")
def test_smoke_report_html_loads_in_a_browser_with_every_section(smoke_run,
                                                                 tmp_path: Path) -> None:
    """report.html of the smoke config in headless Chromium: every section there, every
    figure decoded, nothing fetched from outside the page."""
    _, out, _, _ = smoke_run
    seen = render(out / "report.html", tmp_path, find_chromium())
    assert seen["sections"] == SMOKE_SECTIONS
    assert seen["images"] >= 6 and seen["broken"] == [] and seen["external"] == []
    assert seen["title"].startswith("feraug smoke pipeline")
    assert seen["screenshot"] and Path(seen["screenshot"]).stat().st_size > 10_000


def test_smoke_config_runs_the_whole_pipeline_and_skips_finished_stages(
        smoke_run, monkeypatch: pytest.MonkeyPatch) -> None:
    """configs/smoke.yaml: a generator is trained, a synthetic set built from the train split,
    two arms x two seeds trained on it; a second run does nothing again, and an interrupted
    synthetic set is rebuilt."""
    import feraug.experiment.runner as runner

    cfg, out, summary, lines = smoke_run
    assert summary["runs_done"] == summary["runs_total"] == 4
    assert any("3 run(s) left, about" in m for m in lines)  # progress with an estimate
    gen = out / "generators" / "cyclegan-disgust"
    syn = out / "synthetic" / "disgust-balance"
    assert (gen / "checkpoint.pt").is_file() and (syn / "manifest.json").is_file()
    manifest = json.loads((syn / "manifest.json").read_text())
    assert manifest["generator"]["sha256"] and manifest["totals"]["kept"] > 0
    results = json.loads((out / "results.json").read_text())
    counts = {(r["arm"], r["seed"]): r["synthetic_train_images"] for r in results["runs"]}
    assert counts[("real", 0)] == 0 and counts[("gan-balance", 1)] == manifest["totals"]["kept"]
    score = json.loads((out / "scores" / "cyclegan-disgust" / "score.json").read_text())
    judge_sha = score["judge"]["sha256"]
    assert score["judge"]["path"] == str(out / "judge" / "best.pt") and judge_sha
    assert set(score["emotions"]) == {"disgust"} and score["n"] == 64
    filter_sha = (manifest.get("filter") or {}).get("sha256")
    assert judge_sha not in (score.get("guide_sha256"), filter_sha)
    report = (out / "report.md").read_text()
    assert "## Generators, judged independently" in report and "best_worst" in report

    import feraug.experiment.runs as runs

    trained: list[str] = []  # no arm, helper classifier or judge is trained again
    monkeypatch.setattr(runs, "fit", lambda *a, **k: trained.append("fit"))
    lines.clear()
    runner.run_experiment(cfg, log=lines.append)
    assert trained == []
    assert any("generator cyclegan-disgust: finished earlier" in m for m in lines)
    assert any("synthetic set disgust-balance: finished earlier" in m for m in lines)
    assert any("judge: finished earlier" in m for m in lines)
    assert any("scores: 1 finished earlier" in m for m in lines)

    (syn / "manifest.json").unlink()  # a folder without its manifest, not started here
    with pytest.raises(ConfigError, match="was not started by this experiment"):
        runner.run_experiment(cfg)
    assert (syn / "disgust").is_dir()  # left alone
    from feraug.experiment.stages import started_marker

    marker = started_marker(cfg, "synthetic", "disgust-balance")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()  # what a build this experiment started and never finished leaves
    lines.clear()
    runner.run_experiment(cfg, log=lines.append)
    assert not marker.exists()
    assert (syn / "manifest.json").is_file()
    assert json.loads((syn / "manifest.json").read_text())["files"] == manifest["files"]

    values = cfg.model_dump()  # the same folder, a generator stage with another config
    values["generators"][0]["config"]["ngf"] = 4
    manifest_before = (out / "manifest.json").read_bytes()
    with pytest.raises(ConfigError, match="different configuration .ngf"):
        runner.run_experiment(parse_experiment_config(values))
    assert (out / "manifest.json").read_bytes() == manifest_before  # refused: untouched


def test_classifier_references_must_name_a_classifier_stage(tmp_path: Path) -> None:
    gen = {"name": "g", "model": "cyclegan",
           "config": {"source": "neutral", "target": "disgust", "guide": "classifier:nope"}}
    values = {**tiny_config(tmp_path / "x"), "generators": [gen]}
    with pytest.raises(ConfigError, match="generator 'g' guide: 'classifier:nope' names no "
                       "classifier stage"):
        parse_experiment_config(values, source="exp.yaml")
    values["classifiers"] = [{"name": "nope", "train": {"model": "zhu-cnn-wide"}}]
    cfg = parse_experiment_config(values, source="exp.yaml")
    from feraug.experiment.classifiers import resolved_generator_config

    assert resolved_generator_config(cfg, gen["config"])["guide"] == \
        str(tmp_path / "x" / "classifiers" / "nope" / "best.pt")
    ensemble = {**gen["config"], "guide": ["classifier:nope", "bundled"]}
    assert resolved_generator_config(cfg, ensemble)["guide"] == \
        [str(tmp_path / "x" / "classifiers" / "nope" / "best.pt"), "bundled"]
    with pytest.raises(ConfigError, match="'classifier:nah' names no classifier stage"):
        parse_experiment_config({**values, "generators": [
            {**gen, "config": {**ensemble, "guide": ["bundled", "classifier:nah"]}}]})
    assert cfg.classifier_config("nope").model == "zhu-cnn-wide"
    assert cfg.classifier_config("nope").synthetic == []
    values["classifiers"][0]["train"] = {"seed": 3}
    with pytest.raises(ConfigError, match="seed cannot be set"):
        parse_experiment_config(values, source="exp.yaml")


def test_synthetic_stage_must_name_a_generator_stage(tmp_path: Path) -> None:
    values = {**tiny_config(tmp_path / "x"),
              "synthetic": [{"name": "s", "generator": "missing"}]}
    with pytest.raises(ConfigError, match="no generator stage 'missing'"):
        parse_experiment_config(values, source="exp.yaml")
    values = {**tiny_config(tmp_path / "x"),
              "generators": [{"name": "g", "model": "fastgan", "checkpoint": "a.pt"}]}
    with pytest.raises(ConfigError, match="either `model`"):
        parse_experiment_config(values, source="exp.yaml")
    values["generators"] = [{"name": "g", "model": "fastgan", "config": {"stpes": 3}}]
    with pytest.raises(ConfigError, match="exp.yaml: .*stpes"):
        parse_experiment_config(values, source="exp.yaml")


def test_gan_arms_are_compared_with_the_best_non_gan_arm_chosen_on_validation() -> None:
    """The best non-GAN arm is picked by validation accuracy, even when another arm has the
    better test accuracy; the GAN arm's paired difference against it is hand-checkable."""
    def rec(arm: str, seed: int, acc: float, val: float) -> dict:
        return {"arm": arm, "seed": seed, "accuracy": acc, "macro_f1": acc,
                "best_val_accuracy": val, "classes": ["a", "b"],
                "per_class": {"a": {"recall": acc}, "b": {"recall": acc}}}

    records = [rec("real", 0, 0.50, 0.50), rec("real", 1, 0.52, 0.50),
               rec("balanced", 0, 0.55, 0.60), rec("balanced", 1, 0.57, 0.62),
               rec("weighted", 0, 0.70, 0.55), rec("weighted", 1, 0.70, 0.55),  # best test
               rec("gan", 0, 0.58, 0.61), rec("gan", 1, 0.56, 0.61)]
    out = summarise(records, ["real", "balanced", "weighted", "gan"], "real", gan_arms=["gan"])
    assert out["best_non_gan"] == {"arm": "balanced", "mean_val_accuracy": 0.61,
                                   "chosen_on": "validation"}
    delta = out["arms"]["gan"]["delta_vs_best_non_gan"]["accuracy"]
    assert delta["mean"] == pytest.approx(0.01)  # (0.58 - 0.55 + 0.56 - 0.57) / 2
    assert "delta_vs_best_non_gan" not in out["arms"]["balanced"]


def test_a_new_experiment_folder_may_hold_generators_trained_beforehand(tmp_path: Path) -> None:
    from feraug.errors import FeraugError
    from feraug.experiment.runner import prepare_experiment_dir

    out = tmp_path / "exp"
    (out / "generators" / "g").mkdir(parents=True)
    assert prepare_experiment_dir(out, "abc") is False
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FeraugError, match="not empty"):
        prepare_experiment_dir(out, "abc")


def test_low_data_keeps_a_share_of_each_training_class_and_every_held_out_face() -> None:
    from feraug.experiment.data import load_real_data

    values = {"path": "procedural", "n_per_class": COUNTS, "n_identities": 10}
    full = load_real_data(parse_experiment_config(
        {**tiny_config(Path("x")), "data": values}).data)
    spec = parse_experiment_config({**tiny_config(Path("x")),
                                    "data": {**values, "train_fraction": 0.25}}).data
    low, again = load_real_data(spec), load_real_data(spec)
    for name in ("val", "test"):
        assert low.class_counts(name) == full.class_counts(name)
    for c, n in full.class_counts("train").items():
        assert low.class_counts("train")[c] == max(1, round(n * 0.25))
    assert low.source_ids == again.source_ids  # the same draw every time (subsample_seed)
    assert set(low.source_ids) <= set(full.source_ids)


def test_a_synthetic_only_arm_trains_on_generated_faces_alone(tmp_path: Path) -> None:
    """Real training faces are dropped (validation and test stay real); a set that lacks a
    class cannot train alone, and synthetic_only without a set is refused."""
    import feraug.experiment.runner as runner
    from feraug.data.synthetic import FORMAT, split_fingerprint
    from feraug.experiment.data import load_real_data

    values = tiny_config(tmp_path / "exp")
    real = load_real_data(parse_experiment_config(values).data)
    train = real.indices("train")
    syn = tmp_path / "syn"
    for c, name in enumerate(real.classes):  # mirrored real train faces stand in for a GAN's
        (syn / name).mkdir(parents=True)
        for i, idx in enumerate(train[real.labels[train] == c][:3].tolist()):
            cv2.imwrite(str(syn / name / f"{name}_0_{i}.png"), real.images[idx, 0].flip(-1).numpy())
    (syn / "manifest.json").write_text(json.dumps(
        {"format": FORMAT, "real": {"split_fingerprint": split_fingerprint(real)}}))
    values["seeds"], values["tsne_points"] = [0], 0
    values["arms"] = [{"name": "real"},
                      {"name": "syn-only", "synthetic": [str(syn)], "synthetic_only": True}]
    results = json.loads(Path(runner.run_experiment(parse_experiment_config(values))
                              ["results_json"]).read_text())
    only = next(r for r in results["runs"] if r["arm"] == "syn-only")
    written = len(list(syn.rglob("*.png")))
    assert only["train_images"] == only["synthetic_train_images"] == written
    values["arms"][1] = {"name": "syn-only", "synthetic_only": True}
    with pytest.raises(ConfigError, match="synthetic_only needs synthetic folders"):
        runner.run_experiment(parse_experiment_config({**values, "out": str(tmp_path / "b")}))


def test_ratio_curve_points_come_from_multiply_plans(tmp_path: Path) -> None:
    from feraug.experiment.report import ratio_points, save_ratio_curve

    cfg = load_experiment_config(Path(__file__).parents[1] / "configs" / "picha2023.yaml",
                                 out=tmp_path / "p")
    curves = ratio_points(cfg)
    points = {"real": 0.0, "real+k0.5": 0.5, "real+k1": 1.0, "real+k2": 2.0, "real+k5": 5.0}
    assert curves == {"twostage": points}  # not synthetic-only: it trains without real faces
    summary = {"mean": 0.5, "ci95": 0.01}
    results = {"arms": {a: {"accuracy": summary, "macro_f1": {"mean": None, "ci95": None}}
                        for a in points}}
    path = save_ratio_curve(results, curves, tmp_path / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    values = tiny_config(tmp_path / "t")
    assert ratio_points(parse_experiment_config(values)) == {}  # no multiply arms, no curve

    # two generators' multiply arms make two curves, never one line through both
    values = cfg.model_dump()
    values["generators"].append({**values["generators"][0], "name": "other"})
    values["synthetic"].append({"name": "o2", "generator": "other",
                                "plan": {"mode": "multiply", "k": 2.0}})
    values["arms"].append({"name": "real+o2", "synthetic": ["o2"]})
    two = ratio_points(parse_experiment_config(values))
    assert two["twostage"] == points and two["other"] == {"real": 0.0, "real+o2": 2.0}


def test_a_transfer_source_trains_on_its_own_data_and_arms_fine_tune_from_it(
        tmp_path: Path) -> None:
    """A classifier stage with its own `data` (here: other procedural faces) is trained
    first, on that data only; an arm's `init: classifier:<name>` fine-tunes from it."""
    import feraug.experiment.runner as runner

    out = tmp_path / "transfer"
    values = tiny_config(out)
    other = {"path": "procedural", "n_per_class": COUNTS, "n_identities": 10, "seed": 7}
    values["classifiers"] = [{"name": "source", "data": other}]
    values["arms"] = [{"name": "scratch"}, {"name": "fine-tuned", "init": "classifier:source"}]
    cfg = parse_experiment_config(values)
    source = out / "classifiers" / "source" / "best.pt"
    assert cfg.train_config("fine-tuned", 0, out / "x").init == str(source)
    summary = runner.run_experiment(cfg)
    assert summary["runs_done"] == 4 and source.is_file()
    src = json.loads((out / "classifiers" / "source" / "manifest.json").read_text())
    exp = json.loads((out / "manifest.json").read_text())
    assert src["data_fingerprint"] != exp["data_fingerprint"]  # never saw the experiment's faces
    run = json.loads((out / "fine-tuned" / "seed0" / "manifest.json").read_text())
    assert run["config"]["init"] == str(source) and run["data_fingerprint"] == \
        exp["data_fingerprint"]
    values["arms"][1]["init"] = "classifier:missing"
    with pytest.raises(ConfigError, match="arm 'fine-tuned' init: 'classifier:missing'"):
        parse_experiment_config(values)


def test_the_judge_and_transfer_sources_stay_independent(tmp_path: Path) -> None:
    values = tiny_config(tmp_path / "x")
    values["classifiers"] = [{"name": "guide"}]
    values["generators"] = [{"name": "g", "model": "cyclegan", "config": {
        "source": "neutral", "target": "disgust", "guide": "classifier:guide"}}]
    values["judge"] = {"train": {"init": "classifier:guide"}}
    with pytest.raises(ConfigError, match="judge init: 'classifier:guide' guides or filters"):
        parse_experiment_config(values)
    values["judge"] = {"checkpoint": str(tmp_path / "x" / "classifiers" / "guide" / "best.pt")}
    with pytest.raises(ConfigError, match="is a helper classifier of this experiment"):
        parse_experiment_config(values)
    values["judge"] = {}
    values["classifiers"].append({"name": "same", "data": dict(values["data"])})
    with pytest.raises(ConfigError, match="classifier 'same': its data are the experiment's"):
        parse_experiment_config(values)
    values["classifiers"][1]["data"]["seed"] = 9  # other procedural people: allowed
    parse_experiment_config(values)
    values["base"]["extra_train"] = ["procedural"]
    with pytest.raises(ConfigError, match="extra_train: lists the experiment's own data"):
        parse_experiment_config(values)


def test_a_synthetic_set_that_kept_nothing_adds_nothing(tmp_path: Path) -> None:
    """A plan whose drafts were all dropped (e.g. near-copies of real faces) leaves an empty
    set with a manifest; training with it is training on the real faces, not an error."""
    from feraug.data.synthetic import with_synthetic
    from feraug.experiment.data import load_real_data

    values = tiny_config(tmp_path / "x")
    folder = tmp_path / "empty-set"
    write_synthetic_set(values, folder)
    for png in (folder / "disgust").glob("*.png"):
        png.unlink()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["totals"] = {"requested": 6, "kept": 0}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    real = load_real_data(parse_experiment_config(values).data)
    both = with_synthetic(real, [folder])
    assert len(both) == len(real) and not bool(both.synthetic.any())
    from feraug.data.synthetic import kept_nothing

    assert kept_nothing(folder)
    manifest["totals"]["kept"] = 3  # the manifest promises faces the folder lacks: an error
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FeraugError, match="holds no images"):
        with_synthetic(real, [folder])


def test_a_run_recorded_with_absolute_paths_is_the_same_run(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """A job that ran with an absolute `out` (submitit) stored absolute paths; a rerun from
    the same folder builds them relative: the same files, so the run is reused."""
    from feraug.experiment.runs import check_run_config

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "run"
    folder.mkdir()
    expected = {"model": "zhu-cnn", "synthetic": ["exp/synthetic/s"], "init": "exp/c/best.pt"}
    stored = {"model": "zhu-cnn", "synthetic": [str(tmp_path / "exp/synthetic/s")],
              "init": str(tmp_path / "exp/c/best.pt")}
    (folder / "manifest.json").write_text(json.dumps({"config": stored}))
    check_run_config(folder, expected)
    stored["init"] = str(tmp_path / "exp/other/best.pt")
    (folder / "manifest.json").write_text(json.dumps({"config": stored}))
    with pytest.raises(ConfigError, match="different configuration .init"):
        check_run_config(folder, expected)


def test_a_finished_helper_classifier_on_other_data_is_not_reused(tmp_path: Path) -> None:
    from feraug.experiment.classifiers import train_real_classifier
    from feraug.experiment.data import load_real_data

    values = tiny_config(tmp_path / "x")
    values["classifiers"] = [{"name": "guide"}]
    cfg = parse_experiment_config(values)
    tc = cfg.classifier_config("guide")
    folder = Path(tc.out)
    (folder / "test").mkdir(parents=True)
    (folder / "test" / "metrics.json").write_text("{}")
    (folder / "manifest.json").write_text(json.dumps(
        {"config": tc.model_dump(mode="json"), "data_fingerprint": "someotherdata"}))
    real = load_real_data(cfg.data)
    with pytest.raises(ConfigError, match="trained on other data"):
        train_real_classifier(tc, real, "classifier guide", lambda _: None)
    (folder / "manifest.json").write_text(json.dumps(
        {"config": tc.model_dump(mode="json"), "data_fingerprint": real.fingerprint()}))
    lines: list[str] = []
    assert train_real_classifier(tc, real, "classifier guide", lines.append) == {}
    assert lines == ["classifier guide: finished earlier"]
