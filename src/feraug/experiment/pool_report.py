"""``report.md`` of pooled folds (:mod:`feraug.experiment.pooling`): the main table over the
pooled test faces (mean ± 95% CI over seeds, paired differences against the baseline and the
best non-GAN arm), a plain verdict per comparison with their count, per-class recall, each
fold's own scores, figures (scores with intervals, confusion matrices summed over folds and
seeds), the warnings, and which folders went in."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from feraug.classifier.metrics import plot_confusion
from feraug.experiment.by_subject import subject_table
from feraug.experiment.data import PROCEDURAL
from feraug.experiment.judging import read_scores_in
from feraug.experiment.report import save_metric_bars
from feraug.experiment.tables import main_table, recall_tables, report_intro, verdicts
from feraug.reporting.markdown import image_md, markdown_table, write_report

PROCEDURAL_NOTE = ("**These are procedural cartoon faces, not real data.** The numbers show "
                   "that the pooling works; they say nothing about facial expression "
                   "recognition on real faces.")


def pool_title(results: dict) -> str:
    """The experiment's title without the one fold it named, plus which folds are pooled."""
    # A per-fold config is usually the fold-0 config run with --set data.fold=N, whose
    # title still says "(fold 0)": wrong for the pooled numbers.
    title = re.sub(r"\s*\(fold \d+\)", "", results.get("title") or "feraug experiment")
    folds = ", ".join(str(f["fold"]) for f in results["folds"])
    return f"{title} (pooled over folds {folds} of {results['folds_total']})"


def _per_fold_table(results: dict) -> str:
    folds = [f["fold"] for f in results["folds"]]
    scores = {(r["arm"], r["seed"], r["fold"]): r for r in results["per_fold"]}
    rows = []
    for run in results["runs"]:
        row: list[object] = [f"`{run['arm']}`", run["seed"], run["num_images"],
                             run["accuracy"], run["macro_f1"]]
        for fold in folds:
            r = scores.get((run["arm"], run["seed"], fold)) or {}
            acc = r.get("accuracy")
            row.append("—" if acc is None else f"{acc:.3f} ({r.get('num_images')})")
        rows.append(row)
    return markdown_table(["arm", "seed", "test faces", "pooled accuracy", "pooled macro-F1",
                           *(f"fold {f} accuracy (faces)" for f in folds)], rows)


def arm_confusion(results: dict, arm: str) -> tuple[int, np.ndarray]:
    """How many pooled runs (seeds) ``arm`` has, and their confusion matrices summed: every
    test face of every fold, once per seed."""
    matrices = [np.asarray(r["confusion_matrix"], dtype=np.int64) for r in results["runs"]
                if r["arm"] == arm]
    k = len(results["classes"])
    return len(matrices), np.sum(matrices, axis=0) if matrices else np.zeros((k, k), np.int64)


def _figures(results: dict, out: Path) -> str:
    """The score bars and, per arm, the confusion matrix of all its pooled runs summed (every
    fold and seed), written under ``out/figures``; their markdown."""
    figures = out / "figures"
    parts = [image_md(save_metric_bars(results, figures / "metrics.png"), "scores", out)]
    for arm in results["arms"]:
        seeds, summed = arm_confusion(results, arm)
        if not seeds:
            continue
        path = figures / f"confusion_{re.sub(r'[^A-Za-z0-9_.-]', '_', arm)}.png"
        plot_confusion(summed.tolist(), list(results["classes"]), path,
                       title=f"{arm}: {seeds} seed(s), all folds")
        parts.append(image_md(path, f"confusion {arm}", out))
    return ("Test accuracy and macro-F1 per arm (mean ± 95% CI over seeds), then each arm's "
            "confusion matrix over the pooled test faces, summed over its seeds and "
            "row-normalised (rows: true class; counts in brackets).\n\n" + "\n\n".join(parts))


def _generator_scores(results: dict) -> str | None:
    """Each fold's generator scores by its independent judge (``scores/<name>/score.json``
    in the fold's folder): mean agreement ratio and the ratio per emotion; None when no fold
    has one."""
    names = [g["name"] for g in (results.get("config") or {}).get("generators") or []]
    rows, emotions = [], list(results["classes"])
    for fold in results["folds"]:
        for name, score in read_scores_in(fold["folder"], names).items():
            per = score.get("emotions") or {}
            rows.append([f"`{name}`", fold["fold"], score.get("mean_agreement_ratio"),
                         *((per.get(e) or {}).get("agreement_ratio") for e in emotions)])
    if not rows:
        return None
    return ("Each fold's generator, scored by that fold's judge (a classifier that never "
            "guided a generator or filtered a set): the share of its faces of each emotion "
            "the judge recognises over its recall on real test faces of that emotion (1 = as "
            "recognisable as real faces; — where the judge recognises none of that fold's real "
            "test faces of the emotion, so there is no ratio; the mean is over the others). "
            "Sample grids and distances are in each fold's own report.\n\n"
            + markdown_table(["generator", "fold", "mean ratio", *emotions], rows))


def _folders_table(results: dict) -> str:
    rows = [[f["fold"], f"`{f['folder']}`", f"`{f.get('data_fingerprint')}`"]
            for f in results["folds"]]
    return markdown_table(["fold", "experiment folder", "data fingerprint"], rows,
                          align=["r", "l", "l"])


def write_pool_report(results: dict, out: Path) -> Path:
    """Write ``report.md`` (and ``report.html``) of pooled folds into ``out``; returns the
    markdown file's path."""
    warnings = results.get("warnings") or []
    n_faces = sorted({r["num_images"] for r in results["runs"]})
    # Every arm is tested on the same faces; different counts mean a fold's runs differ.
    faces = str(n_faces[0]) if len(n_faces) == 1 else f"{n_faces[0]}-{n_faces[-1]}"
    config = results.get("config") or {}
    procedural = config.get("data", {}).get("path") == PROCEDURAL
    intro = report_intro(config.get("protocol"), PROCEDURAL_NOTE if procedural else None)
    sections = [
        ("Main result", f"Each fold tests other subjects. For every arm and seed the test "
         f"confusion matrices of its runs in all folds are summed ({faces} test faces) and "
         "accuracy, macro-F1 and recall are computed from the sum; the table gives mean ± 95% "
         "CI over seeds (Student t); Δ is the paired difference with the same seed; val "
         "accuracy is the mean validation score of the runs' chosen checkpoints over folds "
         "and seeds, which chooses the best arm without synthetic faces. "
         f"{len(results['runs'])} pooled runs"
         + (f"; {len(results['left_out'])} left out (see Warnings)." if results["left_out"]
            else ".") + "\n\n" + main_table(results, vs_best=True)),
        ("Did it help?", verdicts(
            results, pairing="arm minus the other arm with the same seed, each seed's score "
            "over the pooled test faces", selection="mean over folds and seeds",
            what="pooled", val_faces=results.get("val_faces"))),
        *([("Resampling whole subjects", by_subject)]
          if (by_subject := subject_table(results)) else []),
        ("Per-class recall", "Recall per class over the pooled test faces, mean ± 95% CI over "
         "seeds.\n\n" + recall_tables(results, deltas=False)),
        ("Figures", _figures(results, out)),
        *([("Generators, judged independently", scores)]
          if (scores := _generator_scores(results)) else []),
        ("Per fold", "Each pooled run's score over all folds, and its score in each fold "
         "alone (with that fold's test faces).\n\n" + _per_fold_table(results)),
        ("Warnings", "\n".join(f"- {w}" for w in warnings) if warnings else "None: every "
         "fold is here and every run finished in every fold."),
        ("Folders pooled", _folders_table(results)),
        ("Files", "`results.json` (everything above, per pooled run and per arm), "
         "`results.csv` (one row per arm), `manifest.json` (the input folders and their "
         "folds). Each fold's own report is in its experiment folder."),
    ]
    return write_report(out, pool_title(results), sections, intro=intro)
