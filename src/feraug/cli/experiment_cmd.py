"""``feraug experiment run``, ``report`` and ``pool``: a whole comparison from one config
file, and the folds of a cross-validation pooled into one answer. torch and the training
code are imported inside the commands, so ``feraug --help`` stays fast."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from feraug.progress import duration_text

RUN_HELP = (
    "Run a whole experiment from a YAML config: every arm x seed is trained with the normal "
    "trainer (checkpoint chosen on the validation split), scored on the test split, and "
    "summarised as mean ± 95% CI per arm and paired differences against the baseline arm."
    "\n\n"
    "Writes OUT/<arm>/seed<k>/ (normal training folders), OUT/results.json, "
    "OUT/results.csv, OUT/report.md and the self-contained OUT/report.html (tables, verdict "
    "per arm, bar chart, confusion matrices, t-SNE) and OUT/manifest.json. Rerunning "
    "continues: finished runs are skipped, interrupted ones resume exactly. OUT must be "
    "new, empty, or an experiment folder on the same data. Example configs: "
    "configs/experiment_demo.yaml, configs/experiment_fer2013.yaml."
)

experiment_app = typer.Typer(
    name="experiment",
    help="Run a comparison of training arms over seeds from one config file and report it.",
    no_args_is_help=True,
)


def _echo_plan(rows: list[dict], out: str, baseline: str | None, base: dict,
               executor: str = "sequential", max_parallel: int = 1) -> None:
    stages = [r for r in rows if r["stage"] != "arm"]
    rows = [r for r in rows if r["stage"] == "arm"]
    for r in stages:
        what = r.get("model") or (f"from {r['generator']}" if r.get("generator") else
                                  {"judge": "independent classifier", "score": "judged",
                                   "generator": "reused checkpoint"}.get(r["stage"], ""))
        typer.echo(f"  {r['stage']:<9} {r['name']:<26} {what:<24} {r['status']:<8} "
                   f"{r['run_dir']}" + (f"  ({r['progress']})" if r.get("progress") else ""))
    _echo_job_layout(stages, rows, executor, max_parallel)
    typer.echo(f"{len(rows)} run(s) into {out} (baseline: {baseline})")
    typer.echo("shared: " + (", ".join(f"{k}={v}" for k, v in base.items()) or "defaults"))
    width = max((len(r["arm"]) for r in rows), default=0)
    for r in rows:
        extra = ", ".join(f"{k}={v}" for k, v in r["overrides"].items())
        if r["synthetic"]:
            extra += (", " if extra else "") + "synthetic=" + ",".join(r["synthetic"])
        if r.get("match_steps"):
            extra += (", " if extra else "") + f"epochs=as many steps as {r['match_steps']}"
        cost = "" if r.get("expected_seconds") is None else \
            f"  ~{duration_text(r['expected_seconds'])}"
        typer.echo(f"  {r['arm']:<{width}} seed {r['seed']:<4} {r['status']:<8} {r['run_dir']}"
                   + (f"  [{extra}]" if extra else "") + cost
                   + (f"  ({r['progress']})" if r.get("progress") else ""))
    left = [r for r in rows if r["status"] != "done"]
    known = [r["expected_seconds"] for r in left if r.get("expected_seconds") is not None]
    if left and not known:
        typer.echo(f"{len(left)} run(s) left; no estimate yet (neither their arms nor arms "
                   "of as many steps have a finished run here)")
    elif left:
        typer.echo(f"{len(left)} run(s) left: about {duration_text(sum(known))} of training "
                   f"for {len(known)} of them, one at a time, at the pace of finished runs "
                   "here of their arms or of arms with as many steps" + (
                       f"; {len(left) - len(known)} more with no such finished run yet"
                                          if len(known) < len(left) else ""))


def _echo_job_layout(stages: list[dict], runs: list[dict], executor: str,
                     max_parallel: int) -> None:
    """With a job executor and stages left: how many stage jobs, and which runs wait."""
    from feraug.experiment.runner import stages_to_do

    to_do = stages_to_do(stages)
    if executor == "sequential" or not to_do:
        return
    left = [r for r in runs if r["status"] != "done"]
    waiting = sum(bool(r.get("waits_for")) for r in left)
    typer.echo(f"as {executor} jobs, {max_parallel} at a time: {len(to_do)} stage job(s), "
               "each once the stages it needs are done; "
               f"{len(left) - waiting} run(s) need no unfinished stage, {waiting} wait for "
               "the stages they need")


def _echo_summary(summary: dict) -> None:
    typer.echo(f"{summary['runs_done']}/{summary['runs_total']} runs finished")
    width = max((len(arm) for arm in summary["arms"]), default=0)
    for arm, s in summary["arms"].items():
        def pm(value: float | None, half: float | None, sign: bool = False) -> str:
            if value is None:
                return "—"
            text = f"{value:+.4f}" if sign else f"{value:.4f}"
            return text if half is None else f"{text} ± {half:.4f}"

        delta = s.get("delta_accuracy")
        typer.echo(f"  {arm:<{width}} accuracy {pm(s['accuracy'], s['accuracy_ci95'])}  "
                   f"macro-F1 {pm(s['macro_f1'], s['macro_f1_ci95'])}"
                   + (f"  Δacc {pm(delta, s.get('delta_accuracy_ci95'), True)}"
                      if delta is not None else ""))
    typer.echo(f"report: {summary['report']}")


@experiment_app.command("run", help=RUN_HELP)
def run(
    config: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output folder (overrides `out:` in the config).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Validate the config, list the arm x seed runs and exit.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the plan (--dry-run) or the result summary as JSON.")] = False,
    executor: Annotated[str | None, typer.Option(
        "--executor", help="sequential, submitit-local or slurm (overrides `executor.kind` "
        "in the config; the last two need `pip install 'feraug\\[cluster]'`).")] = None,
    overrides: Annotated[list[str] | None, typer.Option(
        "--set", help="KEY=VALUE: override one config value by its dotted key through "
        "mappings (list items such as one arm cannot be addressed; the value is read as "
        "YAML, so quote a string that looks like a number), e.g. --set data.fold=1 --set "
        "data.train_fraction=0.25; repeatable. The run records the result.")] = None,
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="ARM: train only this arm's runs (and the stages they need), e.g. "
        "the arms missing from a comparison first; repeatable or comma-separated. The "
        "report covers every finished run; a later run without --only does the rest.")] = None,
    stages_only: Annotated[bool, typer.Option(
        "--stages-only", help="Make the stages (helper classifiers, generators, synthetic "
        "sets, the judge's scores; with --only, those its arms need) and train no arm: look "
        "at the faces first, or make generators another experiment reuses.")] = False,
) -> None:
    """Run (or continue) every arm x seed of an experiment and write its report."""
    from feraug.errors import DataError
    from feraug.experiment.config import load_experiment_config

    cfg = load_experiment_config(config, out=out, executor=executor,
                                 overrides=overrides or ())
    arms = [a.strip() for item in only for a in item.split(",") if a.strip()] if only else None
    if arms is not None:
        from feraug.experiment.stage_graph import check_arm_names

        check_arm_names(cfg, arms)
    if dry_run:
        from feraug.experiment.data import check_inputs
        from feraug.experiment.runner import plan

        rows = plan(cfg, arms)
        if stages_only:
            rows = [r for r in rows if r["stage"] != "arm"]
        problems = check_inputs(cfg, arms)
        if cfg.executor.kind != "sequential":
            from feraug.experiment.stage_graph import order_problems

            problems += order_problems(cfg)
        if as_json:
            typer.echo(json.dumps({"out": cfg.out, "baseline": cfg.baseline,
                                   "seeds": cfg.seeds, "base": cfg.base, "runs": rows,
                                   "problems": problems}, indent=2))
        else:
            _echo_plan(rows, cfg.out, cfg.baseline, cfg.base, cfg.executor.kind,
                       cfg.executor.max_parallel)
        if problems:
            raise DataError("; ".join(problems))
        return
    from feraug.experiment.runner import run_experiment

    log = (lambda _: None) if as_json else (lambda m: typer.echo(m, err=True))
    summary = run_experiment(cfg, log=log, only=arms, stages_only=stages_only)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _echo_summary(summary)


@experiment_app.command("report")
def report(
    out: Annotated[Path, typer.Argument(help="Experiment folder written by `experiment run`.")],
    no_tsne: Annotated[bool, typer.Option(
        "--no-tsne", help="Do not reload the data; keep any earlier t-SNE figure.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Re-aggregate an experiment folder from its finished runs and rewrite results.json,
    results.csv, report.md and report.html (runs still missing are listed in the report)."""
    from feraug.experiment.runner import rebuild_report

    log = (lambda _: None) if as_json else (lambda m: typer.echo(m, err=True))
    summary = rebuild_report(out, tsne=not no_tsne, log=log)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _echo_summary(summary)


POOL_HELP = (
    "Pool the folds of a subject-disjoint cross-validation (one experiment folder per fold, "
    "e.g. `experiment run CONFIG --set data.fold=N --out runs/x-foldN`) into one answer: "
    "for every arm and seed finished in every fold the test confusion matrices are summed "
    "and accuracy, macro-F1 and per-class recall computed over all test faces, then "
    "summarised over seeds (mean ± 95% CI, paired differences against the baseline and the "
    "best non-GAN arm chosen on validation)."
    "\n\n"
    "The folders' configs may differ only in data.fold and out (and the title, executor or "
    "tsne_points, which change no number). Writes OUT/results.json, "
    "OUT/results.csv, OUT/report.md and OUT/manifest.json; OUT must be new, empty or a "
    "pooled folder written before. Missing folds and runs left out are listed as warnings."
)


@experiment_app.command("pool", help=POOL_HELP)
def pool(
    folders: Annotated[list[Path], typer.Argument(
        metavar="FOLDER", help="Experiment folders, one per fold.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the pooled results.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Pool cross-validation folds (one experiment folder each) into one table."""
    from feraug.experiment.pooling import pool_folds, write_pooled

    summary = write_pooled(pool_folds(folders), out)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"pooled folds {', '.join(map(str, summary['folds']))} of "
               f"{summary['folds_total']}")
    for warning in summary["warnings"]:
        typer.echo(f"warning: {warning}", err=True)
    _echo_summary(summary)


def register(app: typer.Typer) -> None:
    """Add the ``experiment`` command group to the main app."""
    app.add_typer(experiment_app, name="experiment")
