"""Pooling the folds of a subject-disjoint cross-validation into one answer.

A data set without official splits (CK+, JAFFE) is cut into k folds of whole subjects, and
each fold is its own experiment folder (``feraug experiment run ... --set data.fold=N``).
Every subject is tested exactly once across the folds, so the honest score of an arm's seed
is the one over *all* test faces: the confusion matrices of its runs in every fold are
summed, and accuracy, macro-F1 and per-class precision/recall/F1 are computed from the sum
(the same definitions as :func:`feraug.classifier.metrics.classification_metrics`). Averaging
per-fold accuracies instead would weight a fold of 20 faces like one of 40.

The pooled runs, one per (arm, seed) finished in every fold, are then summarised exactly as
one experiment's runs are (:func:`feraug.experiment.aggregate.summarise`): mean ± 95%
Student-t interval over seeds, paired differences against the baseline, and GAN arms against
the best non-GAN arm chosen on mean validation accuracy.

The folders must be folds of one experiment: their configs may differ only in ``data.fold``
and ``out`` (and in what changes no number: the title, the protocol text, the executor,
the t-SNE sample).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from feraug.classifier.metrics import classification_metrics
from feraug.errors import ConfigError, FeraugError
from feraug.experiment.aggregate import arm_summaries, summarise
from feraug.experiment.by_subject import subject_comparisons
from feraug.experiment.config import run_dir
from feraug.experiment.folder import read_experiment_manifest, validation_faces
from feraug.experiment.runs import data_names_subjects, read_record, run_status

#: The ``kind`` of a pooled folder's manifest.
KIND = "experiment-pool"
#: Config keys that may differ between folds: labels and how the runs were executed, none of
#: which changes a number. ``data.fold`` is the point of the folds.
FREE_KEYS = frozenset({"out", "title", "protocol", "executor", "tsne_points",
                       "data.fold"})


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"data.fold": 0, "base.epochs": 3, "arms": [...]}``: nested mappings as dotted keys
    (lists compared whole, so a changed arm shows as ``arms``)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _differences(reference: dict, config: dict) -> list[str]:
    """Dotted keys (not free to differ) whose values differ between two configs."""
    a, b = _flatten(reference), _flatten(config)
    return sorted(k for k in set(a) | set(b)
                  if k not in FREE_KEYS and not k.startswith("executor.")
                  and json.dumps(a.get(k)) != json.dumps(b.get(k)))


def _read_folds(folders: Sequence[Path]) -> list[dict]:
    """Each folder's manifest, config and fold; refuses folders that are not folds of one
    experiment (another config, a repeated fold, the same test split twice)."""
    if not folders:
        raise FeraugError("no experiment folders given; name one folder per fold")
    folds: list[dict] = []
    for folder in folders:
        manifest = read_experiment_manifest(folder)
        config = manifest.get("config")
        if not isinstance(config, dict) or not isinstance(config.get("data"), dict):
            raise FeraugError(f"{folder}: its manifest.json holds no experiment config")
        folds.append({"folder": Path(folder), "config": config,
                      "fold": int(config["data"].get("fold", 0)),
                      "data_fingerprint": manifest.get("data_fingerprint"),
                      "val_faces": validation_faces(manifest)})
    first = folds[0]
    for entry in folds[1:]:
        diff = _differences(first["config"], entry["config"])
        if diff:
            shown = ", ".join(f"{k}: {_flatten(first['config']).get(k)!r} -> "
                              f"{_flatten(entry['config']).get(k)!r}" for k in diff[:4])
            raise ConfigError(f"{entry['folder']}: not a fold of the same experiment as "
                              f"{first['folder']} ({shown}); only data.fold and out may differ")
    seen: dict[int, Path] = {}
    prints: dict[str, Path] = {}
    for entry in folds:
        if entry["fold"] in seen:
            raise ConfigError(f"{entry['folder']}: fold {entry['fold']} again (also "
                              f"{seen[entry['fold']]}); each fold may go in once")
        seen[entry["fold"]] = entry["folder"]
        fp = entry["data_fingerprint"]
        # Data with their own splits (FER2013) ignore data.fold: every "fold" would test the
        # same faces, and pooling would count them several times.
        if fp is not None and fp in prints:
            raise ConfigError(f"{entry['folder']}: the same data and split as {prints[fp]} "
                              f"(fingerprint {fp}); these data ignore data.fold, so there are "
                              "no folds to pool")
        if fp is not None:
            prints[fp] = entry["folder"]
    return sorted(folds, key=lambda e: e["fold"])


def _check_record(record: dict, path: Path, classes: list[str] | None) -> list[str]:
    """The record's classes, after checking its confusion matrix fits them and (when given)
    that they are ``classes``."""
    own = list(record.get("classes") or [])
    if classes is not None and own != classes:
        raise FeraugError(f"{path}: classes {own} differ from {classes} in the other runs; "
                          "folds of one experiment share their classes")
    cm = np.asarray(record.get("confusion_matrix"), dtype=float)
    if not own or cm.shape != (len(own), len(own)) or (cm < 0).any() or \
            (cm != np.round(cm)).any():
        raise FeraugError(f"{path}: no {len(own)}x{len(own)} confusion matrix of counts")
    return own


def pool_confusion(records: Sequence[dict], classes: Sequence[str]) -> dict:
    """Test metrics of the summed confusion matrices of ``records`` (rows: true class),
    computed by :func:`classification_metrics` on the faces the sum stands for."""
    k = len(classes)
    total = np.zeros((k, k), dtype=np.int64)
    for r in records:
        total += np.asarray(r["confusion_matrix"], dtype=np.int64)
    true_idx, pred_idx = np.indices((k, k))
    y_true = np.repeat(true_idx.ravel(), total.ravel())
    y_pred = np.repeat(pred_idx.ravel(), total.ravel())
    return classification_metrics(y_true, y_pred, tuple(classes))


def _mean(values: list[float | None]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _missing_folds_warning(present: list[int], total: int) -> str | None:
    missing = [f for f in range(total) if f not in present]
    if not missing:
        return None
    word = "fold" if len(missing) == 1 else "folds"
    return (f"{word} {', '.join(map(str, missing))} of {total} missing: not every subject is "
            "tested")


def pool_folds(folders: Sequence[Path]) -> dict[str, Any]:
    """Pool the experiment folders of a cross-validation's folds.

    Returns :func:`summarise`'s results over the pooled runs (one per (arm, seed) finished
    in every fold) plus ``kind``, ``title``, ``config`` (the first fold's), ``folds`` (each
    folder and its fold), ``folds_total``, ``missing_folds``, ``left_out`` (each (arm, seed)
    some fold has not finished, with those folds), ``per_fold`` (each fold's own scores of
    the pooled runs) and ``warnings``. FeraugError/ConfigError naming the folder when the
    folders are not folds of one experiment or no run is finished in every fold.
    """
    folds = _read_folds([Path(f) for f in folders])
    config = folds[0]["config"]
    arms = [a["name"] for a in config["arms"]]
    seeds = [int(s) for s in config["seeds"]]
    baseline = config.get("baseline") or arms[0]
    gan_arms = [a["name"] for a in config["arms"] if a.get("synthetic")]
    total = int(config["data"].get("folds", len(folds)))
    records: list[dict] = []
    per_fold: list[dict] = []
    left_out: list[dict] = []
    classes: list[str] | None = None
    for arm in arms:
        for seed in seeds:
            dirs = [(e, run_dir(e["folder"], arm, seed)) for e in folds]
            unfinished = [e["fold"] for e, d in dirs if run_status(d) != "done"]
            if unfinished:
                left_out.append({"arm": arm, "seed": seed, "unfinished_folds": unfinished})
                continue
            fold_records = []
            for entry, d in dirs:
                record = read_record(d)
                classes = _check_record(record, d / "test" / "metrics.json", classes)
                fold_records.append(record)
                per_fold.append({"arm": arm, "seed": seed, "fold": entry["fold"],
                                 "accuracy": record.get("accuracy"),
                                 "macro_f1": record.get("macro_f1"),
                                 "num_images": record.get("num_images"),
                                 "best_val_accuracy": record.get("best_val_accuracy")})
            assert classes is not None  # set by the first record checked
            pooled = pool_confusion(fold_records, classes)
            records.append({**pooled, "arm": arm, "seed": seed, "run_dir": None,
                            **{key: _mean([r.get(key) for r in fold_records])
                               for key in ("best_val_accuracy", "best_val_macro_f1")}})
    if not records:
        raise FeraugError("no arm and seed is finished in every fold ("
                          + ", ".join(str(e["folder"]) for e in folds) + "); nothing to pool")
    results = summarise(records, arms, baseline, expected_seeds=seeds, gan_arms=gan_arms)
    named = [data_names_subjects(e["folder"]) for e in folds]
    results["by_subject"] = subject_comparisons(
        results, lambda arm, seed: [run_dir(e["folder"], arm, seed) / "test" for e in folds],
        names_subjects=False if False in named else None)
    present = [e["fold"] for e in folds]
    warnings = [w for w in [_missing_folds_warning(present, total)] if w]
    if left_out:
        warnings.append(f"{len(left_out)} of {len(arms) * len(seeds)} runs left out, not "
                        "finished in every fold: " + "; ".join(
                            f"{x['arm']} seed {x['seed']} (fold "
                            f"{', '.join(map(str, x['unfinished_folds']))})" for x in left_out))
    results.update({
        "kind": KIND, "title": config.get("title"), "config": config,
        "folds": [{"folder": str(e["folder"]), "fold": e["fold"],
                   "data_fingerprint": e["data_fingerprint"]} for e in folds],
        "folds_total": total, "missing_folds": [f for f in range(total) if f not in present],
        "left_out": left_out, "per_fold": per_fold, "warnings": warnings,
        "val_faces": min((e["val_faces"] for e in folds if e["val_faces"] is not None),
                         default=None)})
    return results


def prepare_pool_dir(out: Path, inputs: Sequence[Path]) -> None:
    """Create ``out``, or accept it when it is a pooled folder written before; refuse any
    other non-empty folder, and a folder inside an input (an experiment folder would then
    hold a folder that is not one of its runs)."""
    from feraug.io import lies_inside, prepare_output_dir

    out = Path(out)
    for folder in inputs:
        if lies_inside(out, folder):
            raise FeraugError(f"{out}: refusing to write inside the experiment folder "
                              f"{folder}, which is one of the folds; choose an --out beside "
                              "the folds")
    if out.is_dir() and any(out.iterdir()):
        try:
            kind = json.loads((out / "manifest.json").read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = None
        if kind != KIND:
            raise FeraugError(f"{out}: folder exists and is not empty, and is not a pooled "
                              "folder written by `feraug experiment pool`; refusing to "
                              "overwrite (choose a new --out)")
    prepare_output_dir(out, allow_existing_run=True)


def write_pooled(results: dict, out: str | Path) -> dict[str, Any]:
    """Write ``results.json``, ``results.csv``, ``report.md`` (and ``report.html``) and a
    ``manifest.json`` of kind ``experiment-pool`` into ``out``; returns a JSON-ready summary
    (paths, runs pooled, per-arm means and intervals, warnings)."""
    from feraug.experiment.aggregate import write_results
    from feraug.experiment.pool_report import write_pool_report
    from feraug.manifest import write_manifest

    out = Path(out)
    inputs = [Path(f["folder"]) for f in results["folds"]]
    prepare_pool_dir(out, inputs)
    json_path, csv_path = write_results(results, out)
    report = write_pool_report(results, out)
    summary = {
        "out_dir": str(out), "report": str(report), "results_json": str(json_path),
        "results_csv": str(csv_path),
        "folds": [f["fold"] for f in results["folds"]], "folds_total": results["folds_total"],
        "runs_done": len(results["runs"]),
        "runs_total": len(results["runs"]) + len(results["left_out"]),
        "left_out": results["left_out"], "warnings": results["warnings"],
        "best_non_gan": (results.get("best_non_gan") or {}).get("arm"),
        "arms": arm_summaries(results)}
    config = results["config"]
    write_manifest(out, KIND, config, int(config["seeds"][0]), None, status="complete",
                   inputs=[{"folder": str(Path(f["folder"]).resolve()), "fold": f["fold"],
                            "data_fingerprint": f["data_fingerprint"]}
                           for f in results["folds"]],
                   folds_total=results["folds_total"], result=summary)
    summary["manifest"] = str(out / "manifest.json")
    return summary
