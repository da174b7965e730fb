"""``feraug experiment run --only ARM``: the runs of some arms first (and just the stages they
need), a report of what is done, and the rest on a later run."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from experiment_helpers import tiny_config

from feraug.experiment.config import parse_experiment_config

GENERATOR = {"name": "g", "model": "stargan", "device": "cpu", "config": {
    "ngf": 4, "n_blocks": 1, "ndf": 4, "batch_size": 7, "steps": 1, "source": "neutral"}}
SYNTHETIC = {"name": "s", "generator": "g", "plan": {
    "mode": "balance", "emotions": ["disgust"], "delta": 0.0, "min_change": 0.0}}


def _values(out: Path) -> dict:
    values = tiny_config(out)
    values["seeds"] = [0]
    values["generators"] = [GENERATOR]
    values["synthetic"] = [SYNTHETIC]
    values["arms"] = [*values["arms"], {"name": "gan", "synthetic": ["s"]}]
    return values


def _done(out: Path) -> list[str]:
    return sorted(p.parents[2].name for p in out.glob("*/seed0/test/metrics.json"))


def test_only_trains_the_named_arms_and_just_the_stages_they_need(tmp_path: Path) -> None:
    from feraug.experiment.runner import plan, run_experiment

    out = tmp_path / "exp"
    cfg = parse_experiment_config(_values(out))
    rows = plan(cfg, ["class-weighted"])
    assert [(r["stage"], r.get("arm")) for r in rows] == [("arm", "class-weighted")]

    lines: list[str] = []
    summary = run_experiment(cfg, log=lines.append, only=["class-weighted"])
    assert _done(out) == ["class-weighted"]
    assert not (out / "generators").exists()  # the GAN arm's generator was not needed
    assert summary["runs_done"] == 1 and summary["runs_total"] == 3
    assert (out / "report.html").is_file()
    assert json.loads((out / "manifest.json").read_text())["status"] == "partial"
    assert any("only the runs of class-weighted" in m for m in lines)

    assert [(r["stage"], r.get("name") or r["arm"], r["status"])
            for r in plan(cfg, ["gan"])] == [("generator", "g", "todo"),
                                             ("synthetic", "s", "todo"), ("arm", "gan", "todo")]
    run_experiment(cfg, only=["gan"])
    assert _done(out) == ["class-weighted", "gan"]
    assert (out / "synthetic" / "s" / "manifest.json").is_file()

    lines.clear()
    run_experiment(cfg, log=lines.append)  # the rest: only real is left
    assert _done(out) == ["class-weighted", "gan", "real"]
    assert sum(m.startswith("[") and "test accuracy" in m for m in lines) == 1
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


def test_only_with_an_arm_the_config_lacks_is_one_line(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(_values(tmp_path / "exp")))
    res = run_cli("experiment", "run", path, "--only", "real,gann", "--dry-run")
    assert res.code == 2
    assert res.stderr.strip().splitlines() == [
        "error: no arm named 'gann' in this experiment (its arms: real, class-weighted, gan)"]
    assert not (tmp_path / "exp").exists()

    res = run_cli("experiment", "run", path, "--only", ",", "--dry-run")
    assert res.code == 2 and res.stderr.startswith("error: no arm named to run")

    res = run_cli("experiment", "run", path, "--only", "real", "--only", "gan", "--dry-run")
    assert res.code == 0, res.stderr
    assert "2 run(s) into" in res.stdout and "class-weighted" not in res.stdout


def test_dry_run_with_only_checks_just_the_named_arms_inputs(tmp_path: Path, run_cli) -> None:
    """A missing synthetic folder of an arm not named does not fail ``--only``'s dry run; one
    that a named arm reads through ``match_steps`` does."""
    values = tiny_config(tmp_path / "exp")
    values["seeds"] = [0]
    values["arms"] += [{"name": "ext", "synthetic": [str(tmp_path / "missing-set")]},
                       {"name": "matched", "match_steps": "ext", "scheduler": "cosine"}]
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(values))
    assert run_cli("experiment", "run", path, "--only", "real", "--dry-run").code == 0
    for only in ("ext", "matched"):
        res = run_cli("experiment", "run", path, "--only", only, "--dry-run")
        assert res.code == 2 and "missing-set: synthetic set folder does not exist" in res.stderr


def test_only_as_jobs_submits_just_the_named_arms(tmp_path: Path) -> None:
    """The job executor gets the same selection: no stage job for a generator no named arm
    needs, and only the named arms' runs; the report is written without the unbuilt set."""
    from feraug.experiment.runner import run_experiment

    out = tmp_path / "jobs"
    values = {**_values(out), "executor": {"kind": "submitit-local", "max_parallel": 1}}
    lines: list[str] = []
    summary = run_experiment(parse_experiment_config(values), log=lines.append,
                             only=["real"])
    assert _done(out) == ["real"] and summary["runs_done"] == 1
    submitted = [m for m in lines if m.startswith("submitted")]
    assert len(submitted) == 1 and submitted[0].startswith("submitted real seed 0")
    assert not (out / "generators").exists()
    # the baseline's t-SNE is drawn without the set no named arm needed
    assert "Synthetic sets not built yet, so not shown: s." in (out / "report.md").read_text()


def test_stages_only_makes_the_stages_and_trains_no_arm(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "exp.yaml"
    out = tmp_path / "exp"
    path.write_text(yaml.safe_dump(_values(out)))
    res = run_cli("experiment", "run", path, "--stages-only", "--dry-run")
    assert res.code == 0, res.stderr
    assert "synthetic" in res.stdout and "seed0" not in res.stdout

    res = run_cli("experiment", "run", path, "--stages-only")
    assert res.code == 0, res.stderr
    assert "no arm is trained" in res.stderr
    assert (out / "synthetic" / "s" / "manifest.json").is_file() and _done(out) == []
    assert json.loads((out / "manifest.json").read_text())["status"] == "partial"

    res = run_cli("experiment", "run", path)  # the arms, on the stages made before
    assert res.code == 0, res.stderr
    assert _done(out) == ["class-weighted", "gan", "real"]
    assert "generator g: training" not in res.stderr


def test_stages_only_as_jobs_submits_stage_jobs_and_no_run(tmp_path: Path) -> None:
    from feraug.experiment.runner import run_experiment

    out = tmp_path / "jobs"
    values = {**_values(out), "executor": {"kind": "submitit-local", "max_parallel": 1}}
    lines: list[str] = []
    run_experiment(parse_experiment_config(values), log=lines.append, stages_only=True)
    submitted = [m.split(" (job")[0] for m in lines if m.startswith("submitted")]
    assert submitted == ["submitted generator g", "submitted synthetic s"]
    assert "2 stage(s) to make as submitit-local jobs; no run" in lines
    assert _done(out) == [] and (out / "synthetic" / "s" / "manifest.json").is_file()
