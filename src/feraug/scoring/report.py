"""The scorer's result as a Markdown table (CLI output, demo report, docs/results.md)."""

from __future__ import annotations

from pathlib import Path

from feraug.reporting.markdown import fmt, markdown_table


def shown_path(path: str) -> str:
    """``path`` relative to the working folder when it lies inside it (a job records absolute
    paths; a report shows where to find the file from the project, not one machine's
    layout)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def _kid(entry: dict | None, key: str) -> str:
    """``KID ± SE`` of one pair (3 significant digits), or a dash."""
    value = (entry or {}).get(key)
    return "—" if not value else f"{value['kid']:.3g} ± {value['se']:.2g}"


def score_table(result: dict) -> str:
    """The scorer's result in two tables, one row per emotion each: what the judge
    recognises and (with the reverse test) what the faces teach; then how far the faces are
    from real ones: KID in judge features (generated / source / real floor, each against
    real faces; the scale depends on the judge, so compare within a row), Inception FID when
    measured, nearest-real distance and diversity."""
    judge, reverse = result["judge"], result.get("reverse")
    inception = result.get("inception") is not None
    taught_headers = ["emotion", "n", "agreement", "judge recall (real)", "ratio"]
    if reverse is not None:
        taught_headers += ["reverse: AUC taught by generated / real", "reverse ratio",
                           "recall taught by generated / real"]
    real_headers = ["emotion", "KID (judge features): generated", "source", "real floor"]
    if inception:
        real_headers += ["Inception FID: generated", "source", "real floor"]
    real_headers += ["nearest real (pixel RMS)", "diversity gen / real"]
    taught, real = [], []
    for emotion, r in result["emotions"].items():
        row = [emotion, r["n"], r["agreement"], r["judge_recall_real"], r["agreement_ratio"]]
        if reverse is not None:
            b = reverse["emotions"].get(emotion, {})
            row += [f"{fmt(b.get('auc_generated'))} / {fmt(b.get('auc_real'))}",
                    b.get("ratio"),
                    f"{fmt(b.get('recall_generated'))} / {fmt(b.get('recall_real'))}"]
        taught.append(row)
        row = [emotion, _kid(r["kid_judge"], "generated"), _kid(r["kid_judge"], "source"),
               _kid(r["kid_judge"], "floor")]
        if inception:
            f = r.get("fid_inception", {})
            row += [fmt(f.get("generated"), 1), fmt(f.get("source"), 1), fmt(f.get("floor"), 1)]
        m, d = r["memorisation"], r["diversity"]
        row += [f"{fmt(m['pixel_rms_mean'])} (real test {fmt(m['real_test_pixel_rms_mean'])})",
                f"{fmt(d['generated'], 2)} / {fmt(d['real_test'], 2)}"]
        real.append(row)
    text = (f"Judge: {judge['model']} `{shown_path(judge['path'])}` ({judge['decisions']}); "
            f"generator `{shown_path(result['generator'])}` step {result['step']}; real "
            "references: "
            f"{result.get('reference_split', 'test')} split; mean agreement ratio "
            f"{fmt(result['mean_agreement_ratio'])}")
    if reverse is not None:
        text += (f"; reverse test ({reverse['model']}, {reverse['epochs']} epochs, "
                 f"{sum(reverse['per_class_train'].values())} faces per classifier): mean "
                 f"reverse ratio (AUC above chance) {fmt(reverse['mean_ratio'])}; on real "
                 "faces, accuracy "
                 f"{fmt(reverse['accuracy']['generated'])} and macro-F1 "
                 f"{fmt(reverse['macro_f1']['generated'])} taught by generated faces vs "
                 f"{fmt(reverse['accuracy']['real'])} and {fmt(reverse['macro_f1']['real'])} "
                 "by real ones")
    return (text + ".\n\nRecognised" + (" and taught" if reverse is not None else "")
            + ":\n\n" + markdown_table(taught_headers, taught)
            + "\n\nHow far from real faces:\n\n" + markdown_table(real_headers, real))
