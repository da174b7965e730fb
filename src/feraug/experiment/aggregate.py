"""Aggregating runs over seeds: mean ± 95% Student-t confidence intervals per arm, and paired
differences against the baseline arm (same seeds), which is the honest "did it help" number. The
interval maths is :mod:`feraug.reporting.stats`; this module applies it to run records.

A run record is the dict stored in ``<arm>/seed<k>/test/metrics.json``: test ``accuracy``,
``macro_f1``, ``per_class`` (with ``recall``), ``confusion_matrix``, ``classes`` plus ``arm``
and ``seed``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from feraug.io import atomic_write_bytes, clean, write_json
from feraug.reporting.stats import CONFIDENCE, ci_summary, paired_delta

#: What ``results.json`` keeps of each run (plus per-class ``recall``).
RUN_KEYS = ("arm", "seed", "run_dir", "accuracy", "macro_f1", "num_images", "best_val_accuracy",
            "best_val_macro_f1", "best_epoch", "best_step", "steps", "train_seconds",
            "train_images", "synthetic_train_images", "confusion_matrix")


def _by_seed(records: list[dict], key: str) -> dict[int, float]:
    return {int(r["seed"]): float(r[key]) for r in records}


def _recall_by_seed(records: list[dict], cls: str) -> dict[int, float]:
    return {int(r["seed"]): float(r["per_class"][cls]["recall"]) for r in records}


def _deltas(runs: list[dict], other: list[dict], classes: list[str]) -> dict[str, Any]:
    """Paired differences ``runs - other`` (same seeds) in accuracy, macro-F1 and recall."""
    return {
        "accuracy": paired_delta(_by_seed(runs, "accuracy"), _by_seed(other, "accuracy")),
        "macro_f1": paired_delta(_by_seed(runs, "macro_f1"), _by_seed(other, "macro_f1")),
        "recall": {c: paired_delta(_recall_by_seed(runs, c), _recall_by_seed(other, c))
                   for c in classes},
    }


def mean_recorded(runs: Sequence[dict], key: str) -> float | None:
    """Mean of ``key`` over the runs that recorded it (None when none did)."""
    values = [r[key] for r in runs if r.get(key) is not None]
    return sum(values) / len(values) if values else None


def best_on_validation(by_arm: dict[str, list[dict]], candidates: Sequence[str],
                       key: str = "best_val_accuracy") -> tuple[str | None, float | None]:
    """The candidate arm with the highest mean *validation* score ``key`` (accuracy or
    macro-F1) of its chosen checkpoints (test numbers never choose), and that mean."""
    scored = [(v, a) for a in candidates
              if (v := mean_recorded(by_arm.get(a, []), key)) is not None]
    if not scored:
        return None, None
    value, arm = max(scored)
    return arm, value


def summarise(records: list[dict], arms: Sequence[str], baseline: str,
              expected_seeds: Sequence[int] | None = None,
              gan_arms: Sequence[str] = (),
              step_matches: dict[str, str] | None = None) -> dict[str, Any]:
    """Per-arm summaries of finished runs.

    Returns ``{"baseline", "confidence", "classes", "arms": {name: {...}}, "runs": [...],
    "missing_runs": [...], "best_non_gan": ...}``; each arm holds ``seeds``, ``accuracy``
    and ``macro_f1`` (:func:`ci_summary`), ``recall`` per class, and (not for the baseline)
    ``delta_vs_baseline`` with paired ``accuracy``, ``macro_f1`` and per-class ``recall``.
    With ``gan_arms`` (arms trained with synthetic faces), the non-GAN arm with the best mean
    validation accuracy is ``best_non_gan`` and every GAN arm also gets
    ``delta_vs_best_non_gan``: a GAN arm must beat the strongest remedy without a GAN. The
    non-GAN arm with the best mean validation macro-F1 is ``best_non_gan_macro_f1``; where it
    is another arm, GAN arms also get ``delta_vs_best_non_gan_macro_f1`` (a macro-F1 gain
    must beat the remedy that is best at macro-F1, not only the most accurate one).
    ``step_matches`` (arm -> the arm whose optimiser steps it matches) is kept as
    ``step_matches`` for the report's training-length note.
    """
    classes: list[str] = []
    for r in records:
        classes = list(r["classes"])
        break
    by_arm = {a: sorted((r for r in records if r["arm"] == a), key=lambda r: r["seed"])
              for a in arms}
    base = by_arm.get(baseline, [])
    result: dict[str, Any] = {"baseline": baseline, "confidence": CONFIDENCE,
                              "classes": classes, "arms": {},
                              "step_matches": dict(step_matches or {})}
    for arm in arms:
        runs = by_arm[arm]
        entry: dict[str, Any] = {
            "seeds": [int(r["seed"]) for r in runs],
            "n_seeds": len(runs),
            "accuracy": ci_summary([r["accuracy"] for r in runs]),
            "macro_f1": ci_summary([r["macro_f1"] for r in runs]),
            "recall": {c: ci_summary(list(_recall_by_seed(runs, c).values())) for c in classes},
            "steps": mean_recorded(runs, "steps"),
        }
        if arm != baseline:
            entry["delta_vs_baseline"] = _deltas(runs, base, classes)
        result["arms"][arm] = entry
    if gan_arms:
        best, val = best_on_validation(by_arm, [a for a in arms if a not in gan_arms])
        result["best_non_gan"] = {"arm": best, "mean_val_accuracy": val,
                                  "chosen_on": "validation"}
        best_f1, val_f1 = best_on_validation(by_arm, [a for a in arms if a not in gan_arms],
                                             key="best_val_macro_f1")
        result["best_non_gan_macro_f1"] = {"arm": best_f1, "mean_val_macro_f1": val_f1,
                                           "chosen_on": "validation"}
        for arm in gan_arms:
            if best is not None and arm in result["arms"]:
                result["arms"][arm]["delta_vs_best_non_gan"] = _deltas(
                    by_arm[arm], by_arm[best], classes)
            if best_f1 not in (None, best, baseline) and arm in result["arms"]:
                result["arms"][arm]["delta_vs_best_non_gan_macro_f1"] = _deltas(
                    by_arm[arm], by_arm[best_f1], classes)
    result["runs"] = [{k: r.get(k) for k in RUN_KEYS}
                      | {"recall": {c: m["recall"] for c, m in r["per_class"].items()}}
                      for r in records]
    if expected_seeds is not None:
        done = {(r["arm"], int(r["seed"])) for r in records}
        result["missing_runs"] = [{"arm": a, "seed": s} for a in arms for s in expected_seeds
                                  if (a, s) not in done]
    return clean(result)


def arm_summaries(results: dict) -> dict[str, dict]:
    """Per arm, what a command prints and a summary JSON keeps: mean and 95% CI half-width of
    accuracy and macro-F1, and the paired accuracy difference against the baseline."""
    def delta(e: dict, key: str) -> float | None:
        return (e.get("delta_vs_baseline") or {}).get("accuracy", {}).get(key)

    return {name: {"accuracy": e["accuracy"]["mean"], "accuracy_ci95": e["accuracy"]["ci95"],
                   "macro_f1": e["macro_f1"]["mean"], "macro_f1_ci95": e["macro_f1"]["ci95"],
                   "delta_accuracy": delta(e, "mean"), "delta_accuracy_ci95": delta(e, "ci95")}
            for name, e in results["arms"].items()}


def signed(value: float | None, digits: int = 3) -> str:
    """``+0.012`` / ``-0.004``; an em dash for None."""
    return "—" if value is None else f"{value:+.{digits}f}"


def cell(summary: dict, digits: int = 3, sign: bool = False) -> str:
    """``0.712 ± 0.013`` from a :func:`ci_summary` (just the mean when n < 2)."""
    mean, half = summary.get("mean"), summary.get("ci95")
    if mean is None:
        return "—"
    text = signed(mean, digits) if sign else f"{mean:.{digits}f}"
    return text if half is None else f"{text} ± {half:.{digits}f}"


def comparison_references(results: dict) -> list[tuple[str, str]]:
    """``(delta key, reference arm)`` of every comparison a ``summarise`` result holds: the
    baseline, then the best non-GAN arm on validation accuracy where it is not the
    baseline, then the best on validation macro-F1 where it is neither (as ``summarise``
    adds those deltas)."""
    refs = [("delta_vs_baseline", results["baseline"])]
    for key, best in (("delta_vs_best_non_gan", "best_non_gan"),
                      ("delta_vs_best_non_gan_macro_f1", "best_non_gan_macro_f1")):
        arm = (results.get(best) or {}).get("arm")
        if arm is not None and arm not in (ref for _, ref in refs):
            refs.append((key, arm))
    return refs


def csv_rows(results: dict) -> tuple[list[str], list[list[object]]]:
    """Header and one row per arm for ``results.csv`` (empty cells where undefined)."""
    classes = results["classes"]
    header = ["arm", "n_seeds"]
    for m in ("accuracy", "macro_f1"):
        header += [f"{m}_mean", f"{m}_ci95"]
    for m in ("accuracy", "macro_f1"):
        header += [f"delta_{m}_mean", f"delta_{m}_ci95", f"delta_{m}_low", f"delta_{m}_high",
                   f"delta_{m}_excludes_zero"]
    for c in classes:
        header += [f"recall_{c}_mean", f"recall_{c}_ci95"]
    rows = []
    for arm, e in results["arms"].items():
        row: list[object] = [arm, e["n_seeds"]]
        for m in ("accuracy", "macro_f1"):
            row += [e[m]["mean"], e[m]["ci95"]]
        delta = e.get("delta_vs_baseline") or {}
        for m in ("accuracy", "macro_f1"):
            d = delta.get(m) or {}
            row += [d.get("mean"), d.get("ci95"), d.get("low"), d.get("high"),
                    d.get("excludes_zero")]
        for c in classes:
            row += [e["recall"][c]["mean"], e["recall"][c]["ci95"]]
        rows.append(["" if v is None else v for v in row])
    return header, rows


def write_results(results: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``results.json`` (everything) and ``results.csv`` (one row per arm)."""
    out_dir = Path(out_dir)
    json_path, csv_path = out_dir / "results.json", out_dir / "results.csv"
    write_json(clean(results), json_path)
    header, rows = csv_rows(results)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_bytes(buf.getvalue().encode(), csv_path)
    return json_path, csv_path


def read_results(out_dir: str | Path) -> dict:
    """Load ``results.json`` written by :func:`write_results`."""
    return json.loads((Path(out_dir) / "results.json").read_text())
