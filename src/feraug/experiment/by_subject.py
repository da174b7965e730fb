"""Arm comparisons that resample whole subjects, for data sets that name them.

JAFFE's test faces come from a few women and SFEW's from a few films: the faces of one
person are not independent, so an interval over seeds alone says nothing about which people
happened to be tested. Each run keeps its per-image predictions beside its test metrics
(``predictions.npz``); here every comparison the report makes (each arm against the
baseline, each GAN arm against the best non-GAN arm) gets the mean over seeds of the paired
difference with a percentile interval from resampling subjects (the same draw for every seed:
they share one test set) and the seeds. Pooled folds concatenate their test sets: every
subject is tested once across them. Below :data:`MIN_SUBJECTS` a resample of subjects is too
coarse to give a 95% interval (two women give three possible draws), so none is given.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from feraug.classifier.evaluate import PREDICTIONS, load_predictions
from feraug.experiment.aggregate import comparison_references
from feraug.reporting.markdown import markdown_table
from feraug.reporting.stats import paired_seed_bootstrap

#: Fewest subjects for an interval from resampling them.
MIN_SUBJECTS = 10
#: (arm, seed) -> the run's test folders (one per fold when folds are pooled).
TestDirs = Callable[[str, int], list[Path]]
Truth = tuple[np.ndarray, np.ndarray]


class _NoPredictions(Exception):
    """A run kept no per-image predictions (it was made before runs kept them)."""


def _predictions(folders: list[Path]) -> tuple[Truth, np.ndarray] | None:
    """((labels, subjects), predictions) of one run over its folders; None when the data
    name no subjects; :class:`_NoPredictions` when a folder has no predictions."""
    parts = [load_predictions(Path(f) / PREDICTIONS) for f in folders]
    if not parts or any(p is None for p in parts):
        raise _NoPredictions
    if any(p[2] is None for p in parts):
        return None
    y = np.concatenate([p[0] for p in parts])
    subjects = np.concatenate([p[2] for p in parts])
    return (y, subjects), np.concatenate([p[1] for p in parts])


def _same(a: Truth, b: Truth) -> bool:
    """Whether two runs were tested on the same faces (labels and subjects, in order)."""
    return len(a[0]) == len(b[0]) and bool((a[0] == b[0]).all() and (a[1] == b[1]).all())


def _comparisons(results: dict) -> list[tuple[str, str, list[int]]]:
    """(arm, reference, seeds) of every paired comparison the report makes."""
    pairs = []
    for key, reference in comparison_references(results):
        for arm, entry in results["arms"].items():
            seeds = ((entry.get(key) or {}).get("accuracy") or {}).get("seeds") or []
            if seeds:
                pairs.append((arm, reference, list(seeds)))
    return pairs


def subject_comparisons(results: dict, test_dirs: TestDirs,
                        names_subjects: bool | None = None) -> dict | None:
    """The report's comparisons with intervals over subjects and seeds; None when the data
    name no subjects (``names_subjects`` False, when the caller knows, or no subject in the
    runs' predictions) or the runs were not tested on one set of faces, and only a ``note``
    when some run kept no predictions."""
    if names_subjects is False:
        return None
    try:
        return _subject_comparisons(results, test_dirs)
    except _NoPredictions:
        return {"comparisons": [], "note": "some runs kept no per-image predictions (they "
                "were made before runs kept them), so no comparison resamples subjects"}


def _subject_comparisons(results: dict, test_dirs: TestDirs) -> dict | None:
    comparisons = _comparisons(results)
    loaded: dict[tuple[str, int], np.ndarray] = {}
    truth: Truth | None = None
    missing = False
    for arm, reference, seeds in comparisons:
        for seed in seeds:
            for name in (arm, reference):
                if (name, seed) in loaded:
                    continue
                try:
                    found = _predictions(test_dirs(name, seed))
                except _NoPredictions:
                    missing = True  # said unless another run shows the data name no subjects
                    continue
                if found is None:
                    return None  # the data name no subjects: nothing to resample
                if truth is None:
                    truth = found[0]
                elif not _same(truth, found[0]):
                    return None  # not one test set: nothing to resample jointly
                loaded[(name, seed)] = found[1]
    if missing:
        raise _NoPredictions
    rows = []
    for arm, reference, seeds in comparisons:
        y, subjects = truth
        preds = {name: [loaded[(name, seed)] for seed in seeds] for name in (arm, reference)}
        k = max(len(results["classes"]),
                int(max(y.max(), *(p.max() for ps in preds.values() for p in ps))) + 1)
        result = paired_seed_bootstrap(y, preds[arm], preds[reference], k, groups=subjects)
        if result["n_units"] < MIN_SUBJECTS:
            for metric in ("accuracy", "macro_f1"):
                result[metric].update(low=None, high=None)
        rows.append({"arm": arm, "reference": reference, "seeds": seeds, **result})
    return {"comparisons": rows} if rows else None

def subject_table(results: dict) -> str | None:
    """Markdown for :func:`subject_comparisons`' result (None when there is none)."""
    found = results.get("by_subject")
    if not found:
        return None
    if not found["comparisons"]:
        return f"Not made: {found.get('note', 'nothing to compare')}."
    rows = []
    for r in found["comparisons"]:
        cells = [f"{r[m]['mean']:+.3f}" + ("" if r[m]["low"] is None else
                                           f" [{r[m]['low']:+.3f}, {r[m]['high']:+.3f}]")
                 for m in ("accuracy", "macro_f1")]
        rows.append([f"`{r['arm']}` − `{r['reference']}`", len(r["seeds"]), r["n_units"],
                     *cells])
    first = found["comparisons"][0]
    few = "" if first["n_units"] >= MIN_SUBJECTS else (
        f" With {first['n_units']} subjects (fewer than {MIN_SUBJECTS}) a resample of them is "
        "too coarse for a 95% interval, so only the differences are given.")
    return ("The comparisons above again (the same ones, not new), with 95% percentile "
            f"intervals from {first['resamples']:,} resamples of whole subjects and of the "
            "seeds: the faces of one person are not independent, so these intervals cover "
            "which people were tested as well as how the seeds fell." + few + "\n\n"
            + markdown_table(["comparison", "seeds", "subjects", "Δ accuracy [95% CI]",
                              "Δ macro-F1 [95% CI]"], rows))
