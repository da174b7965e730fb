"""The result tables and verdicts every experiment report shows, from a ``summarise`` result:
one experiment's report (:mod:`feraug.experiment.report`) and pooled folds'
(:mod:`feraug.experiment.pool_report`) read the same numbers the same way."""

from __future__ import annotations

from feraug.experiment.aggregate import cell, comparison_references, mean_recorded, signed
from feraug.reporting.markdown import markdown_table


def report_intro(protocol: str | None, procedural_note: str | None) -> str:
    """A report's opening lines: the config's ``protocol`` text (what is compared, what was
    adapted), then the warning for procedural faces when given."""
    parts = [f"**Protocol.** {' '.join(protocol.split())}" if protocol else "",
             procedural_note or ""]
    return "\n\n".join(part for part in parts if part)


def mean_validation_accuracy(results: dict, arm: str) -> float | None:
    """Mean validation accuracy of ``arm``'s chosen checkpoints over its runs (what chooses
    the best non-GAN arm); None when no run recorded it."""
    runs = [r for r in results.get("runs", []) if r["arm"] == arm]
    return mean_recorded(runs, "best_val_accuracy")


def main_table(results: dict, vs_best: bool = False) -> str:
    """Per arm: seeds, mean validation accuracy (which chooses), mean ± 95% CI of test
    accuracy and macro-F1, paired differences against the baseline; with ``vs_best`` also
    against the best non-GAN arm (when that is not the baseline)."""
    base = results["baseline"]
    best = (results.get("best_non_gan") or {}).get("arm")
    vs_best = vs_best and best is not None and best != base and any(
        "delta_vs_best_non_gan" in e for e in results["arms"].values())
    headers = ["arm", "seeds", "val accuracy", "accuracy", "macro-F1", f"Δ accuracy vs {base}",
               f"Δ macro-F1 vs {base}"]
    if vs_best:
        headers += [f"Δ accuracy vs {best}", f"Δ macro-F1 vs {best}"]
    rows = []
    for arm, e in results["arms"].items():
        deltas = [e.get("delta_vs_baseline")] + ([e.get("delta_vs_best_non_gan")]
                                                 if vs_best else [])
        val = mean_validation_accuracy(results, arm)
        row = [f"`{arm}`" + (" (baseline)" if arm == base else ""), e["n_seeds"],
               "—" if val is None else f"{val:.3f}", cell(e["accuracy"]), cell(e["macro_f1"])]
        for d in deltas:
            row += [cell(d["accuracy"], sign=True) if d else "—",
                    cell(d["macro_f1"], sign=True) if d else "—"]
        rows.append(row)
    return markdown_table(headers, rows)


def _interval(delta: dict) -> str:
    """``-0.012 [-0.030, +0.006]``; the mean alone for one seed; a dash for none."""
    if delta.get("n", 0) == 0:
        return "—"
    if delta.get("excludes_zero") is None:
        return signed(delta["mean"])
    return f"{signed(delta['mean'])} [{signed(delta['low'])}, {signed(delta['high'])}]"


def comparison_reading(delta: dict) -> str:
    """What one comparison says, in a few words."""
    acc, f1 = delta["accuracy"], delta["macro_f1"]
    if acc.get("n", 0) == 0:
        return "no seed finished for both arms: nothing to compare"
    if acc.get("excludes_zero") is None:
        return "one paired seed: no interval, no conclusion"
    found = [f"**{'better' if d['mean'] > 0 else 'worse'}** on {name}"
             for name, d in (("accuracy", acc), ("macro-F1", f1)) if d.get("excludes_zero")]
    return "; ".join(found) if found else "no evidence of a difference"


def _verdict_rows(arms: dict, key: str, reference: str) -> list[list[object]]:
    """One table row per arm compared with ``reference`` under ``key``."""
    rows = []
    for arm, e in arms.items():
        d = e.get(key)
        if d is None:
            continue
        rows.append([f"`{arm}` − `{reference}`", d["accuracy"].get("n", 0),
                     _interval(d["accuracy"]), _interval(d["macro_f1"]), comparison_reading(d)])
    return rows


#: Fewer validation faces than this per run make the choice of the best non-GAN arm fragile.
SMALL_VALIDATION = 200


def small_validation_note(val_faces: int | None) -> str:
    """A warning paragraph when the validation split that chooses the best non-GAN arm holds
    fewer than :data:`SMALL_VALIDATION` faces; empty otherwise (or when unknown)."""
    if val_faces is None or val_faces >= SMALL_VALIDATION:
        return ""
    return (f"\n\n**Small validation split:** as few as {val_faces} faces per run choose the "
            "arms above. A run's validation score is the best of its epochs on so few faces, so it "
            "is noisy and optimistic, the more so the more epochs an arm trains; the arm "
            "chosen may not be the strongest. Read every GAN arm against every non-GAN arm in "
            "the main table too.")


def verdicts(results: dict,
             pairing: str = "each arm minus the arm it is compared with, same seed",
             selection: str = "mean", what: str = "run", val_faces: int | None = None) -> str:
    """A table of every comparison (against the baseline, then GAN arms against the best
    non-GAN arm chosen on validation accuracy and, where another, the best on validation
    macro-F1) with its interval and a plain reading, and how many
    comparisons were made. ``pairing`` says what was paired, ``selection`` what the
    validation mean is over, ``what`` what was done to the arms (run, pooled), ``val_faces``
    the validation faces per run (a warning when few)."""
    base = results["baseline"]
    if not _verdict_rows(results["arms"], "delta_vs_baseline", base):
        return f"Only the baseline arm was {what}; there is nothing to compare."
    refs = dict(comparison_references(results))
    rows = [row for key, reference in refs.items()
            for row in _verdict_rows(results["arms"], key, reference)]
    best = (results.get("best_non_gan") or {}).get("arm")
    text = ""
    if best is not None:
        text = (f"The strongest arm without synthetic faces, chosen on validation accuracy "
                f"({selection} {results['best_non_gan']['mean_val_accuracy']:.4f}), is "
                f"**{best}**; every GAN arm must beat it, not only {base}.\n\n")
    best_f1 = refs.get("delta_vs_best_non_gan_macro_f1")
    if best_f1 is not None:
        text += (f"On validation macro-F1 ({selection} "
                 f"{results['best_non_gan_macro_f1']['mean_val_macro_f1']:.4f}) the "
                 f"strongest arm without synthetic faces is **{best_f1}**; a GAN arm's "
                 "macro-F1 must beat it too.\n\n")
    headers = ["comparison", "paired seeds", "Δ accuracy [95% CI]", "Δ macro-F1 [95% CI]",
               "reading"]
    text += (f"Paired over seeds ({pairing}), mean difference with its 95% Student-t "
             "interval; a reading names a metric only where the interval excludes zero.\n\n"
             + markdown_table(headers, rows, align="lrrrl"))
    if best is not None:
        text += training_length_note(results, best) + small_validation_note(val_faces)
    n = 2 * sum(1 for row in rows if row[1] >= 2)
    text += (f"\n\n{n} comparisons with an interval are made here (accuracy and macro-F1 of "
             f"each row with two or more paired seeds), each at the 95% level; about "
             f"{0.05 * n:.1f} of them would exclude zero by chance alone if no arm differed.")
    return text


#: A GAN arm taking this many times the steps of the reference arm gets a warning.
STEP_RATIO_WARNING = 1.1


def training_length_note(results: dict, reference: str) -> str:
    """A paragraph for each GAN arm trained for clearly more optimiser steps than the
    non-GAN ``reference`` (its faces enlarge the epoch): a difference may be training length,
    and ``match_steps`` gives the fair control. Empty when the lengths match."""
    ref_steps = results["arms"].get(reference, {}).get("steps")
    notes = []
    for arm, e in results["arms"].items():
        steps = e.get("steps")
        if "delta_vs_best_non_gan" not in e or not steps or not ref_steps:
            continue
        if steps > STEP_RATIO_WARNING * ref_steps:
            matched = [m for m, ref in (results.get("step_matches") or {}).items()
                       if ref == arm]
            control = (f"{matched[0]} in this experiment is that control (real faces, as "
                       "many steps); compare with it too" if matched else
                       f"an arm of real faces with `match_steps: {arm}` is the fair control")
            notes.append(f"**Training length:** {arm} took {steps / ref_steps:.2f}x the "
                         f"optimiser steps of {reference} ({steps:,.0f} against "
                         f"{ref_steps:,.0f}), so part of any difference may be training "
                         f"length, not the synthetic faces; {control}.")
    return "".join(f"\n\n{n}" for n in notes)


def recall_tables(results: dict, deltas: bool = True) -> str:
    """Recall per class and arm (mean ± 95% CI over seeds); with ``deltas`` also each arm's
    paired difference in recall against the baseline and each GAN arm's against the best
    non-GAN arms on validation accuracy and macro-F1 (those that are not the baseline)."""
    classes, arms = results["classes"], list(results["arms"])
    rows = [[c, *(cell(results["arms"][a]["recall"][c]) for a in arms)] for c in classes]
    text = markdown_table(["class", *arms], rows)
    if not deltas:
        return text
    for key, reference in comparison_references(results):
        others = [a for a in arms if a != reference and key in results["arms"][a]]
        if not others:
            continue
        rows = [[c, *(cell(results["arms"][a][key]["recall"][c], sign=True)
                      for a in others)] for c in classes]
        text += (f"\n\nPaired difference in recall against `{reference}` (mean ± 95% CI):"
                 "\n\n" + markdown_table(["class", *others], rows))
    return text
