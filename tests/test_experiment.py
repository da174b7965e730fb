"""``feraug experiment``: a tiny experiment end to end (procedural faces, a class-weighted arm
and an arm with a synthetic folder), resuming/skipping on rerun, refusal of foreign folders
and changed configs, the dry run, and the aggregate maths on hand-made numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from experiment_helpers import COUNTS, T_975_DF2, cli_app, tiny_config, write_synthetic_set
from typer.testing import CliRunner

from feraug.errors import ConfigError, FeraugError
from feraug.experiment.aggregate import csv_rows, summarise
from feraug.experiment.config import load_experiment_config, parse_experiment_config
from feraug.experiment.tables import comparison_reading
from feraug.reporting.stats import ci_summary, paired_delta

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
    neither = comparison_reading({"accuracy": noisy, "macro_f1": noisy})
    assert neither == "no evidence of a difference"
    assert comparison_reading({"accuracy": d, "macro_f1": noisy}) == "**better** on accuracy"
    single = paired_delta({0: 0.7}, base)
    assert single["excludes_zero"] is None
    assert "no conclusion" in comparison_reading({"accuracy": single, "macro_f1": single})


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


def test_an_arm_with_no_finished_seed_gets_one_line_and_is_not_counted() -> None:
    from feraug.experiment.tables import verdicts

    def rec(arm: str, seed: int, acc: float) -> dict:
        return {"arm": arm, "seed": seed, "accuracy": acc, "macro_f1": acc - 0.1,
                "classes": ["happy", "sad"],
                "per_class": {"happy": {"recall": acc}, "sad": {"recall": 1 - acc}}}

    records = [rec("real", s, 0.5 + 0.01 * s) for s in range(3)]
    records += [rec("cw", s, 0.52 + 0.01 * s) for s in range(3)]
    res = summarise(records, ["real", "cw", "gan"], "real", expected_seeds=[0, 1, 2])
    text = verdicts(res)
    rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| `")}
    assert "no seed finished for both arms" in rows["| `gan` − `real`"]
    assert rows["| `cw` − `real`"].count("[") == 2  # an interval for accuracy and macro-F1
    assert "2 comparisons with an interval are made here" in text


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
    assert "4 run(s) left; no estimate yet" in text.stdout


def test_a_run_left_is_expected_to_take_as_long_as_its_arms_finished_runs(
        tmp_path: Path) -> None:
    from feraug.experiment.runner import _expected_seconds
    from feraug.experiment.runs import RECORD

    def row(arm: str, seed: int, status: str, seconds: float | None = None) -> dict:
        folder = tmp_path / arm / f"seed{seed}"
        if seconds is not None:
            (folder / RECORD).parent.mkdir(parents=True)
            (folder / RECORD).write_text(json.dumps({"train_seconds": seconds}))
        return {"arm": arm, "seed": seed, "status": status, "run_dir": str(folder)}

    rows = [row("a", 0, "done", 100.0), row("a", 1, "done", 200.0), row("a", 2, "partial"),
            row("b", 0, "todo")]
    _expected_seconds(rows)
    assert [r["expected_seconds"] for r in rows] == [None, None, 150.0, None]


def test_an_arm_with_no_finished_run_takes_the_pace_of_one_with_as_many_steps(
        tmp_path: Path) -> None:
    from feraug.experiment.runner import _expected_seconds
    from feraug.experiment.runs import RECORD

    def row(arm: str, status: str, match: str | None, seconds: float | None = None) -> dict:
        folder = tmp_path / arm
        if seconds is not None:
            (folder / RECORD).parent.mkdir(parents=True)
            (folder / RECORD).write_text(json.dumps({"train_seconds": seconds}))
        return {"arm": arm, "seed": 0, "status": status, "run_dir": str(folder),
                "match_steps": match}

    rows = [row("gan", "done", None, 300.0), row("matched", "done", "gan", 100.0),
            row("oversampled", "todo", "gan"), row("gan2", "todo", None),
            row("real", "todo", None)]
    _expected_seconds(rows)
    # oversampled matches gan's steps: the mean pace of gan and the other arm matching it
    assert [r["expected_seconds"] for r in rows] == [None, None, 200.0, None, None]


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
    values["protocol"] = "Two remedies on tiny faces;\n  adapted for a test."
    n_syn = write_synthetic_set(values, tmp_path / "syn")
    assert n_syn > 0
    cfg = parse_experiment_config(values)
    lines: list[str] = []
    summary = runner.run_experiment(cfg, log=lines.append)
    assert summary["runs_done"] == summary["runs_total"] == 6
    assert "done: 0 of 0 stage(s), 0 of 6 run(s)" in lines
    # trained seed-major: stopped part way, every arm would have its first seed
    order = [line.split("] ", 1)[1].split(":")[0] for line in lines
             if line.startswith("[") and ": training " in line]
    assert order == [f"{arm} seed {seed}" for seed in (0, 1)
                     for arm in ("real", "class-weighted", "syn")], order

    results = json.loads((out / "results.json").read_text())
    for arm in ("real", "class-weighted", "syn"):
        for key in ("mean", "ci95", "low", "high", "n", "values"):
            assert key in results["arms"][arm]["accuracy"], (arm, key)
        assert set(results["arms"][arm]["recall"]) == set(COUNTS)
    delta = results["arms"]["syn"]["delta_vs_baseline"]["accuracy"]
    assert delta["seeds"] == [0, 1] and isinstance(delta["excludes_zero"], bool)
    assert [r["synthetic_train_images"] for r in results["runs"]] == [0, 0, 0, 0, n_syn, n_syn]
    assert (out / "results.csv").read_text().startswith("arm,n_seeds,")
    # procedural faces name their identities: every comparison is also made resampling them
    by_subject = {(r["arm"], r["reference"]): r for r in results["by_subject"]["comparisons"]}
    best = results["best_non_gan"]["arm"]
    assert set(by_subject) == {("class-weighted", "real"), ("syn", "real")} | (
        {("syn", best)} if best != "real" else set())
    for (arm, reference), row in by_subject.items():
        key = "delta_vs_baseline" if reference == "real" else "delta_vs_best_non_gan"
        seed_mean = results["arms"][arm][key]["accuracy"]["mean"]
        assert row["accuracy"]["mean"] == pytest.approx(seed_mean)
        # a few test identities: too few to resample, so no interval is claimed
        assert row["unit"] == "subject" and 1 < row["n_units"] < 10
        assert row["accuracy"]["low"] is None and row["macro_f1"]["high"] is None
    for png in ("figures/metrics.png", "figures/tsne.png", "real/seed0/test/confusion.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page
    assert page.count("data:image/png;base64,") >= 3 and 'src="figures/' not in page
    assert "tiny experiment" in page
    report = (out / "report.md").read_text()
    for words in ("| `class-weighted` | 2 |", "Δ accuracy vs real", "not real data",
                  "![t-SNE](figures/tsne.png)", "(class-weighted/seed0/test/confusion.png)",
                  "| `syn` − `real` | 2 |", "| disgust |", "git commit",
                  "data fingerprint", "**Protocol.** Two remedies on tiny faces; adapted for a",
                  "## Resampling whole subjects", "`syn` − `real`"):
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
    # the job run also makes a generator and a set from it, each a job of its own
    job_values = {**seq_values, "out": str(tmp_path / "jobs"),
                  "executor": {"kind": "submitit-local", "max_parallel": 2},
                  "generators": [{"name": "g", "model": "stargan", "device": "cpu", "config": {
                      "ngf": 4, "n_blocks": 1, "ndf": 4, "batch_size": 7, "steps": 1,
                      "source": "neutral"}}],
                  "synthetic": [{"name": "s", "generator": "g", "plan": {
                      "mode": "balance", "emotions": ["disgust"], "delta": 0.0,
                      "min_change": 0.0}}],
                  "arms": [*seq_values["arms"], {"name": "gan", "synthetic": ["s"]}]}
    seq = json.loads(Path(run_experiment(parse_experiment_config(seq_values))["results_json"])
                     .read_text())
    lines: list[str] = []
    summary = run_experiment(parse_experiment_config(job_values), log=lines.append)
    jobs = json.loads(Path(summary["results_json"]).read_text())
    assert summary["runs_done"] == 4
    real_runs = [r for r in jobs["runs"] if r["arm"] == "real"]
    assert [r["accuracy"] for r in real_runs] == [r["accuracy"] for r in seq["runs"]]
    assert sum("submitted" in m for m in lines) == 6  # two stages, four runs
    assert lines.index(next(m for m in lines if m.startswith("synthetic s done"))) < \
        lines.index(next(m for m in lines if m.startswith("submitted gan seed")))
    assert all(r["synthetic_train_images"] for r in jobs["runs"] if r["arm"] == "gan")
    assert any((tmp_path / "jobs" / "jobs").rglob("*_log.out"))
    lines.clear()
    run_experiment(parse_experiment_config(job_values), log=lines.append)
    assert not any("submitted" in m for m in lines)


def test_unknown_executor_is_a_config_error(tmp_path: Path) -> None:
    values = {**tiny_config(tmp_path / "x"), "executor": {"kind": "kubernetes"}}
    with pytest.raises(ConfigError, match="executor"):
        parse_experiment_config(values, source="exp.yaml")


def test_gan_arms_also_face_the_best_non_gan_arm_on_validation_macro_f1() -> None:
    from feraug.experiment.tables import verdicts

    def rec(arm: str, seed: int, acc: float, f1: float, val_acc: float, val_f1: float) -> dict:
        return {"arm": arm, "seed": seed, "accuracy": acc, "macro_f1": f1,
                "best_val_accuracy": val_acc, "best_val_macro_f1": val_f1,
                "classes": ["happy", "sad"],
                "per_class": {"happy": {"recall": acc}, "sad": {"recall": 1 - acc}}}

    records = []
    for s in range(2):
        records += [rec("real", s, 0.60, 0.40, 0.60, 0.40),
                    rec("matched", s, 0.62, 0.42, 0.63, 0.41),   # best on val accuracy
                    rec("over", s, 0.58, 0.50 + s / 100, 0.58, 0.52),  # best on val macro-F1
                    rec("gan", s, 0.59, 0.45, 0.59, 0.46)]
    res = summarise(records, ["real", "matched", "over", "gan"], "real", gan_arms=["gan"])
    assert res["best_non_gan"]["arm"] == "matched"
    assert res["best_non_gan_macro_f1"]["arm"] == "over"
    delta = res["arms"]["gan"]["delta_vs_best_non_gan_macro_f1"]["macro_f1"]
    assert delta["mean"] == pytest.approx(0.45 - 0.505)
    text = verdicts(res)
    assert "| `gan` − `over` | 2 |" in text and "| `gan` − `matched` | 2 |" in text
    # one arm best on both: no second set of rows
    same = summarise([r for r in records if r["arm"] != "over"], ["real", "matched", "gan"],
                     "real", gan_arms=["gan"])
    assert "delta_vs_best_non_gan_macro_f1" not in same["arms"]["gan"]


def test_an_old_record_takes_its_validation_macro_f1_from_the_log(tmp_path: Path) -> None:
    from feraug.experiment.runs import RECORD, read_record

    (tmp_path / RECORD).parent.mkdir(parents=True)
    (tmp_path / RECORD).write_text(json.dumps({"accuracy": 0.5, "best_step": 20}))
    (tmp_path / "metrics.jsonl").write_text(
        json.dumps({"step": 10, "val_macro_f1": 0.3}) + "\n"
        + json.dumps({"step": 20, "val_macro_f1": 0.4}) + "\n")
    assert read_record(tmp_path)["best_val_macro_f1"] == 0.4
