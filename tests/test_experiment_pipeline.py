"""``feraug experiment`` stages: the smoke config through the whole pipeline (generator,
synthetic set, judge, arms, report in a browser), stage references, synthetic-only and ratio
arms, transfer sources, low-data subsets and what counts as the same run."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from browser import find_chromium, render
from experiment_helpers import COUNTS, tiny_config, write_synthetic_set

from feraug.errors import ConfigError, FeraugError
from feraug.experiment.aggregate import summarise
from feraug.experiment.config import load_experiment_config, parse_experiment_config


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory):
    """configs/smoke.yaml run once for the tests that read its folder."""
    import feraug.experiment.runner as runner

    out = tmp_path_factory.mktemp("smoke") / "smoke"
    cfg = load_experiment_config(Path(__file__).parents[1] / "configs" / "smoke.yaml", out=out)
    lines: list[str] = []
    summary = runner.run_experiment(cfg, log=lines.append)
    return cfg, out, summary, lines


SMOKE_SECTIONS = ["Main result", "Did it help?", "Resampling whole subjects",
                  "Generators, judged independently",
                  "Shortcut check", "Faces",
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
    built = next(m for m in lines if m.startswith("synthetic set disgust-balance:"))
    assert f"{manifest['totals']['kept']} faces" in built
    assert ("short of" in built) == (manifest["totals"]["shortfall"] > 0)
    results = json.loads((out / "results.json").read_text())
    counts = {(r["arm"], r["seed"]): r["synthetic_train_images"] for r in results["runs"]}
    assert counts[("real", 0)] == 0 and counts[("gan-balance", 1)] == manifest["totals"]["kept"]
    score = json.loads((out / "scores" / "cyclegan-disgust" / "score.json").read_text())
    judge_sha = score["judge"]["sha256"]
    assert score["judge"]["path"] == str(out / "judge" / "best.pt") and judge_sha
    assert set(score["emotions"]) == {"disgust"} and score["n"] == 64
    assert set(score["reverse"]["emotions"]) == {"disgust"} and score["reverse"]["epochs"] == 2
    filter_sha = (manifest.get("filter") or {}).get("sha256")
    assert judge_sha not in (score.get("guide_sha256"), filter_sha)
    report = (out / "report.md").read_text()
    assert "## Generators, judged independently" in report and "best_worst" in report
    assert "mean reverse ratio" in report
    shortcut = report.split("## Shortcut check")[1].split("\n## ")[0]
    assert "| gan-balance | disgust-balance | disgust |" in shortcut
    kept = manifest["counts"]["disgust"]["kept"]  # the set's counts, from its manifest
    assert f"| disgust | {manifest['counts']['disgust']['requested']:,} | {kept:,} |" in report

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
    # the report's tables show that comparison, overall and per class
    from feraug.experiment.tables import main_table, recall_tables

    table = main_table(out, vs_best=True).splitlines()
    assert "Δ accuracy vs balanced" in table[0] and "Δ macro-F1 vs real" in table[0]
    # the validation accuracy that chose balanced stands beside the test scores
    assert "| val accuracy |" in table[0] and table[3].startswith("| `balanced` | 2 | 0.610 |")
    from feraug.experiment.tables import SMALL_VALIDATION, verdicts

    assert "Small validation split" not in verdicts(out, val_faces=SMALL_VALIDATION)
    assert "Small validation split" not in verdicts(out)  # size unknown: no claim
    assert "as few as 43 faces per run" in verdicts(out, val_faces=43)
    per_class = recall_tables(out).split("against `balanced`")
    assert len(per_class) == 2 and "+0.010" in per_class[1].splitlines()[4]


def test_a_new_experiment_folder_may_hold_generators_trained_beforehand(tmp_path: Path) -> None:
    from feraug.errors import FeraugError
    from feraug.experiment.folder import prepare_experiment_dir

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


def test_dry_run_says_how_many_stage_jobs_and_which_runs_wait(tmp_path: Path) -> None:
    from experiment_helpers import cli_app
    from typer.testing import CliRunner

    smoke = Path(__file__).parents[1] / "configs" / "smoke.yaml"
    args = ["experiment", "run", str(smoke), "--out", str(tmp_path / "x"), "--dry-run"]
    jobs = CliRunner().invoke(cli_app(), [*args, "--executor", "submitit-local"])
    assert jobs.exit_code == 0, jobs.output
    assert "as submitit-local jobs, 2 at a time: 4 stage job(s), each once the stages it " \
        "needs are done; 2 run(s) need no unfinished stage, 2 wait for the stages they " \
        "need" in jobs.stdout
    sequential = CliRunner().invoke(cli_app(), args)
    assert "stage job(s)" not in sequential.stdout
