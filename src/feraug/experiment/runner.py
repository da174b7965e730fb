"""Running an experiment: every arm x seed trained with :func:`feraug.classifier.trainer.fit`
(checkpoint chosen on the validation split), its best checkpoint scored on the test split,
then aggregated into ``results.json``/``results.csv`` and ``report.md``.

Layout of ``out``::

    manifest.json                 kind "experiment": config, seeds, data fingerprint, commit
    <arm>/seed<k>/                a normal `feraug train` run folder (best.pt, last.pt, ...)
    <arm>/seed<k>/test/           metrics.json (written last: the run is finished), confusion,
                                  predictions.npz (per image: label, prediction, subject)
    results.json results.csv report.md figures/

Runs execute one after another here, or as independent jobs of submitit (locally or on a
SLURM cluster; ``executor`` in the config, see :mod:`feraug.experiment.executors`).

Resumable: a run whose ``test/metrics.json`` exists is skipped; a run folder with a manifest
but no test metrics is continued with ``fit(..., resume=True)``. A finished or started run
trained with a different configuration is refused, never silently mixed in.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from feraug.classifier.metrics import plot_confusion
from feraug.classifier.trainer import FitResult
from feraug.data.dataset import FaceDataset
from feraug.engine.run_lock import run_lock
from feraug.errors import ConfigError
from feraug.experiment.aggregate import arm_summaries, summarise, write_results
from feraug.experiment.by_subject import subject_comparisons
from feraug.experiment.config import (
    ExperimentConfig,
    parse_experiment_config,
    run_dir,
)
from feraug.experiment.data import load_real_data
from feraug.experiment.folder import (
    KIND,
    prepare_experiment_dir,
    read_experiment_manifest,
    real_train_images,
    refuse_changed_work,
)
from feraug.experiment.job_progress import counted
from feraug.experiment.judging import (
    judge_checkpoint,
    judge_status,
    score_dir,
    score_generators,
    score_status,
)
from feraug.experiment.runs import (
    Log,
    data_names_subjects,
    fit_and_test,
    read_record,
    run_status,
)
from feraug.experiment.stage_graph import (
    Stage,
    check_arm_names,
    run_needs,
    run_stage,
    selected_stages,
)
from feraug.experiment.stages import generator_status, synthetic_status
from feraug.experiment.step_match import arm_train_config
from feraug.manifest import write_manifest
from feraug.models.checkpoint import LoadedClassifier
from feraug.progress import runs_left_text


def _quiet(_: str) -> None:
    return None


def plan(cfg: ExperimentConfig, only: list[str] | None = None) -> list[dict]:
    """The work of ``cfg`` in order: generator and synthetic-set stages (``stage`` rows), then
    the runs with their folder, status, synthetic folders, the arm's own overrides (on top
    of ``cfg.base``) and the unfinished stages they wait for. ``only``: just these arms' runs
    and the stages they need."""
    stage_rows = _stage_rows(cfg, only)
    rows = stage_rows + [r for r in _arm_rows(cfg, stages_to_do(stage_rows))
                         if only is None or r["arm"] in only]
    for r in rows:  # how far a started one has come (``step 1300/2000``, ``epoch 12/30``)
        if r["status"] == "partial":
            item = (r["arm"], r["seed"]) if r["stage"] == "arm" else Stage(r["stage"], r["name"])
            count = counted(cfg, item)
            r["progress"] = None if count is None else str(count)
    return rows


def _stage_rows(cfg: ExperimentConfig, only: list[str] | None = None) -> list[dict]:
    """The stage rows of :func:`plan`: helper classifiers, generators, synthetic sets, the
    judge and its scores; with ``only``, those the runs of these arms need."""
    if only is not None:
        wanted = set(selected_stages(cfg, only))
        return [r for r in _stage_rows(cfg) if Stage(r["stage"], r["name"]) in wanted]
    rows: list[dict] = [{"stage": "classifier", "name": c.name,
                         "model": cfg.classifier_config(c.name).model,
                         "run_dir": str(cfg.classifier_dir(c.name)),
                         "status": run_status(cfg.classifier_dir(c.name))}
                        for c in cfg.classifiers]
    for g in cfg.generators:
        rows.append({"stage": "generator", "name": g.name, "model": g.model,
                     "run_dir": str(g.checkpoint or cfg.generator_dir(g.name)),
                     "status": generator_status(cfg, g)})
    for syn in cfg.synthetic:
        rows.append({"stage": "synthetic", "name": syn.name, "generator": syn.generator,
                     "run_dir": cfg.synthetic_dir(syn.name), "status": synthetic_status(cfg, syn),
                     "plan": syn.plan})
    if cfg.judge is not None and cfg.generators:
        rows.append({"stage": "judge", "name": "judge", "run_dir": str(judge_checkpoint(cfg)),
                     "status": judge_status(cfg)})
        rows.extend({"stage": "score", "name": g.name, "run_dir": str(score_dir(cfg, g.name)),
                     "status": score_status(cfg, g.name)} for g in cfg.generators)
    return rows


#: Stage statuses that leave nothing to do.
FINISHED = ("done", "reused")


def run_all_stages(cfg: ExperimentConfig, real: FaceDataset, log: Log = _quiet,
                   only: list[str] | None = None) -> None:
    """Helper classifiers, generators, synthetic sets, the judge and its scores, in this
    order (each skipped when done, resumed when started), as jobs do them one at a time; the
    scores together, so that the Inception network loads once. ``only``: just the stages
    these arms' runs need."""
    every = selected_stages(cfg, only)
    for stage in every:
        if stage.kind != "score":
            run_stage(cfg, stage, real, log)
    if any(stage.kind == "score" for stage in every):
        score_generators(cfg, real, log)


def stages_to_do(rows: list[dict]) -> list[Stage]:
    """The unfinished stages among the stage rows of :func:`plan`, in their order."""
    return [Stage(r["stage"], r["name"]) for r in rows
            if r["stage"] != "arm" and r["status"] not in FINISHED]


def _arm_rows(cfg: ExperimentConfig, to_do: list[Stage] | None = None) -> list[dict]:
    """The arm x seed rows of :func:`plan`, each with its ``expected_seconds`` and the
    stages of ``to_do`` it waits for (``waits_for``, names)."""
    rows = []
    for arm, seed in cfg.runs():
        spec = cfg.arm(arm)
        folder = run_dir(cfg.out, arm, seed)
        rows.append({"stage": "arm", "arm": arm, "seed": seed, "run_dir": str(folder),
                     "status": run_status(folder), "baseline": arm == cfg.baseline,
                     "overrides": dict(spec.train), "match_steps": spec.match_steps,
                     "waits_for": [str(st) for st in to_do or ()
                                   if st in run_needs(cfg, arm)],
                     "synthetic": [cfg.synthetic_dir(d) for d in spec.synthetic]})
    _expected_seconds(rows)
    return rows


def _expected_seconds(runs: list[dict]) -> None:
    """Give each run left an ``expected_seconds``: the mean training time of its arm's
    finished runs here (every seed of an arm trains as many steps). An arm with none yet
    takes the pace of an arm it shares a step count with (``match_steps``: the arm it
    matches, or another arm matching the same one); None when there is none. An estimate at
    the pace those runs had, not a promise."""
    seconds: dict[str, list[float]] = {}
    for r in runs:
        if r["status"] == "done":
            taken = read_record(Path(r["run_dir"])).get("train_seconds")
            if isinstance(taken, (int, float)):
                seconds.setdefault(r["arm"], []).append(float(taken))
    step_group = {r["arm"]: r.get("match_steps") or r["arm"] for r in runs}
    for r in runs:
        done = seconds.get(r["arm"]) or [
            t for arm, group in step_group.items() if group == step_group[r["arm"]]
            for t in seconds.get(arm, [])]
        r["expected_seconds"] = None if r["status"] == "done" or not done else \
            round(sum(done) / len(done), 1)


def _train_summary(folder: Path) -> dict:
    """Synthetic image count and train-split size from the run's own manifest."""
    try:
        summary = json.loads((folder / "manifest.json").read_text()).get("data_summary", {})
    except (OSError, json.JSONDecodeError):
        return {}
    train = summary.get("splits", {}).get("train", {})
    return {"synthetic_train_images": summary.get("synthetic"),
            "train_images": train.get("total")}


def run_one(cfg: ExperimentConfig, arm: str, seed: int, real: FaceDataset,
            log: Log = _quiet) -> dict:
    """Train (or resume, or skip) one run and return its test metrics record."""
    folder = run_dir(cfg.out, arm, seed)

    def annotate(metrics: dict, result: FitResult, seconds: float,
                 loaded: LoadedClassifier) -> dict:
        plot_confusion(metrics["confusion_matrix"], list(loaded.classes),
                       folder / "test" / "confusion.png",
                       title=f"{arm}, seed {seed}: test acc {metrics['accuracy']:.3f}")
        best = result.best_val
        return {**metrics, "arm": arm, "seed": seed, "run_dir": f"{arm}/seed{seed}",
                "best_val_accuracy": best.get("val_accuracy"),
                "best_val_macro_f1": best.get("val_macro_f1"), "best_epoch": best.get("epoch"),
                "best_step": best.get("step"),
                "steps": result.history[-1]["step"] if result.history else None,
                "train_seconds": round(seconds, 2), **_train_summary(folder)}

    tc = arm_train_config(cfg, arm, seed, folder, real_train_images(real))
    return fit_and_test(tc, real, f"{arm} seed {seed}", log, annotate)


def collect(cfg: ExperimentConfig) -> list[dict]:
    """Test metrics records of every finished run of ``cfg``, in plan order."""
    return [read_record(run_dir(cfg.out, a, s))
            for a, s in cfg.runs() if run_status(run_dir(cfg.out, a, s)) == "done"]


def _write_manifest(cfg: ExperimentConfig, real: FaceDataset, status: str, **extra) -> None:
    write_manifest(Path(cfg.out), KIND, cfg.model_dump(), cfg.seeds[0], real.fingerprint(),
                   status=status, seeds=list(cfg.seeds), arms=[a.name for a in cfg.arms],
                   baseline=cfg.baseline, data_summary=real.summary(), **extra)


def _expected_by_run(cfg: ExperimentConfig) -> dict[tuple[str, int], float | None]:
    """(arm, seed) -> expected training seconds from the runs finished so far (see
    :func:`_expected_seconds`), for progress lines; reads only the arms' run folders."""
    return {(r["arm"], r["seed"]): r.get("expected_seconds") for r in _arm_rows(cfg)}


def finish(cfg: ExperimentConfig, real: FaceDataset | None, log: Log = _quiet,
           tsne: bool = True) -> dict:
    """Aggregate the finished runs and write results.json/.csv, figures and report.md."""
    from feraug.experiment.report import write_experiment_report

    records = collect(cfg)
    results = summarise(records, [a.name for a in cfg.arms], cfg.baseline,
                        step_matches={a.name: a.match_steps for a in cfg.arms if a.match_steps},
                        gan_arms=[a.name for a in cfg.arms if a.synthetic],
                        expected_seeds=cfg.seeds)
    out = Path(cfg.out)
    results["by_subject"] = subject_comparisons(
        results, lambda arm, seed: [run_dir(out, arm, seed) / "test"],
        names_subjects=data_names_subjects(out))
    json_path, csv_path = write_results(results, out)
    report = write_experiment_report(cfg, results, real if tsne else None, log=log)
    return {"out_dir": str(out), "report": str(report), "results_json": str(json_path),
            "results_csv": str(csv_path), "runs_done": len(records),
            "runs_total": len(cfg.runs()), "missing_runs": results.get("missing_runs", []),
            "arms": arm_summaries(results)}


def run_experiment(cfg: ExperimentConfig, log: Log = _quiet,
                   only: list[str] | None = None, stages_only: bool = False) -> dict:
    """Run every arm x seed of ``cfg`` into ``cfg.out`` (resuming), then write the results and
    the report. Returns a JSON-ready summary (paths, per-arm means and CIs).

    ``only``: train just these arms (and the stages their runs need), e.g. the arms missing
    from a comparison first; the report covers every finished run, as after a stop.
    ``stages_only``: make the stages (of ``only``'s arms, or all) and train no arm, e.g. to
    look at a generator's faces before hours of classifier runs, or to make generators that
    another experiment reuses."""
    if only is not None:
        check_arm_names(cfg, only)
    real = load_real_data(cfg.data)
    out = Path(cfg.out)
    existed = prepare_experiment_dir(out, real.fingerprint())
    with run_lock(out, checked=True):  # a second runner would delete this one's stages
        return _run_locked(cfg, real, existed, log, only, stages_only)


def _work_left(rows: list[dict]) -> str:
    """One line: how many stages and runs are done and how many are left."""
    stages = [r for r in rows if r["stage"] != "arm"]
    runs = [r for r in rows if r["stage"] == "arm"]
    left = [r for r in stages if r["status"] not in FINISHED]
    text = (f"done: {len(stages) - len(left)} of {len(stages)} stage(s), "
            f"{sum(r['status'] == 'done' for r in runs)} of {len(runs)} run(s)")
    if left:
        text += "; stages left: " + ", ".join(f"{r['stage']} {r['name']}" for r in left)
    return text


def _run_locked(cfg: ExperimentConfig, real: FaceDataset, existed: bool, log: Log,
                only: list[str] | None, stages_only: bool = False) -> dict:
    out = Path(cfg.out)
    refuse_changed_work(cfg, real_train_images(real))  # before the manifest is rewritten
    log(f"{'continuing' if existed else 'starting'} experiment in {out}: "
        f"{len(cfg.classifiers)} helper classifier(s), "
        f"{len(cfg.generators)} generator(s), {len(cfg.synthetic)} synthetic set(s), "
        f"{'a judge, ' if cfg.judge is not None and cfg.generators else ''}"
        f"{len(cfg.arms)} arm(s) x {len(cfg.seeds)} seed(s), data {real.fingerprint()}")
    if stages_only:
        log("only the stages" + (f" the runs of {', '.join(only)} need" if only else "")
            + "; no arm is trained")
    elif only is not None:
        log(f"only the runs of {', '.join(only)} (and the stages they need)")
    log(_work_left(plan(cfg, only)))
    _write_manifest(cfg, real, "running")
    schedule = [] if stages_only else [r for r in cfg.schedule()
                                       if only is None or r[0] in only]
    total = len(schedule)
    t0 = time.perf_counter()
    if cfg.executor.kind == "sequential":
        run_all_stages(cfg, real, log, only)
        trained: list[float] = []  # seconds of the runs trained by this call
        for i, (arm, seed) in enumerate(schedule, 1):
            started = time.perf_counter()
            skipped = run_status(run_dir(out, arm, seed)) == "done"
            run_one(cfg, arm, seed, real, log=lambda m, i=i: log(f"[{i}/{total}] {m}"))
            if not skipped:
                trained.append(time.perf_counter() - started)
            left = [r for r in schedule if run_status(run_dir(out, *r)) != "done"]
            if left and not skipped:
                expected = _expected_by_run(cfg)  # this run's time now counts for its arm
                log(runs_left_text([expected.get(r) for r in left], trained))
    else:
        from feraug.experiment.executors import run_as_jobs

        pending = [(a, s) for a, s in schedule if run_status(run_dir(out, a, s)) != "done"]
        to_do = stages_to_do(_stage_rows(cfg, only))
        waiting = sum(bool(run_needs(cfg, a) & set(to_do)) for a, _ in pending)
        if stages_only:
            log(f"{len(to_do)} stage(s) to make as {cfg.executor.kind} jobs; no run")
        else:
            log(f"{total - len(pending)} run(s) finished earlier; {len(pending)} to run as "
                f"{cfg.executor.kind} jobs" + (
                    f", after or beside {len(to_do)} stage job(s); {waiting} run(s) wait for "
                    "the stages they need" if to_do else ""))
        run_as_jobs(cfg, pending, log, expected=_expected_by_run(cfg), stages=to_do)
    summary = finish(cfg, real, log=log)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    every_run_done = all(run_status(run_dir(out, *r)) == "done" for r in cfg.runs())
    done = every_run_done and not stages_to_do(_stage_rows(cfg))  # the judge's scores too
    _write_manifest(cfg, real, "complete" if done else "partial", result=summary)
    summary["manifest"] = str(out / "manifest.json")
    return summary


def rebuild_report(out: str | Path, tsne: bool = True, log: Log = _quiet) -> dict:
    """Re-aggregate an experiment folder from its finished runs and rewrite its results and
    report (the config comes from ``out/manifest.json``; the data are reloaded only for the
    t-SNE figure and the fingerprint check)."""
    out = Path(out)
    manifest = read_experiment_manifest(out)
    values = dict(manifest.get("config") or {})
    values["out"] = str(out)
    cfg = parse_experiment_config(values, source=str(out / "manifest.json"))
    real = None
    if tsne:
        real = load_real_data(cfg.data)
        if real.fingerprint() != manifest.get("data_fingerprint"):
            raise ConfigError(f"{out}: the data have changed since the experiment ran "
                              f"(fingerprint {manifest.get('data_fingerprint')}, now "
                              f"{real.fingerprint()}); use --no-tsne to report without them")
    summary = finish(cfg, real, log=log, tsne=tsne)
    summary["manifest"] = str(out / "manifest.json")
    return summary
