"""The scorer's result as a Markdown table (CLI output, demo report, docs/results.md)."""

from __future__ import annotations

from feraug.reporting.markdown import fmt, markdown_table


def _kid(entry: dict | None, key: str) -> str:
    """``KID ± SE`` of one pair (3 significant digits), or a dash."""
    value = (entry or {}).get(key)
    return "—" if not value else f"{value['kid']:.3g} ± {value['se']:.2g}"


def score_table(result: dict) -> str:
    """One row per emotion: agreement (with the judge's real recall and their ratio), KID in
    judge features (generated / source / real floor, each against real test faces; the scale
    depends on the judge, so compare within a row),
    Inception FID when measured, nearest-real distance and diversity."""
    inception = result.get("inception") is not None
    headers = ["emotion", "n", "agreement", "judge recall (real)", "ratio",
               "KID (judge features): generated", "source", "real floor"]
    if inception:
        headers += ["Inception FID: generated", "source", "real floor"]
    headers += ["nearest real (pixel RMS)", "diversity gen / real"]
    rows = []
    for emotion, r in result["emotions"].items():
        row = [emotion, r["n"], r["agreement"], r["judge_recall_real"], r["agreement_ratio"],
               _kid(r["kid_judge"], "generated"), _kid(r["kid_judge"], "source"),
               _kid(r["kid_judge"], "floor")]
        if inception:
            f = r.get("fid_inception", {})
            row += [fmt(f.get("generated"), 1), fmt(f.get("source"), 1), fmt(f.get("floor"), 1)]
        m, d = r["memorisation"], r["diversity"]
        row += [f"{fmt(m['pixel_rms_mean'])} (real test {fmt(m['real_test_pixel_rms_mean'])})",
                f"{fmt(d['generated'], 2)} / {fmt(d['real_test'], 2)}"]
        rows.append(row)
    judge = result["judge"]
    reverse = result.get("reverse")
    if reverse is not None:
        headers[5:5] = ["reverse: AUC taught by generated / real", "ratio",
                        "recall generated / real"]
        for row in rows:
            r = reverse["emotions"].get(row[0], {})
            row[5:5] = [f"{fmt(r.get('auc_generated'))} / {fmt(r.get('auc_real'))}",
                        r.get("ratio"),
                        f"{fmt(r.get('recall_generated'))} / {fmt(r.get('recall_real'))}"]
    text = (f"Judge: {judge['model']} `{judge['path']}` ({judge['decisions']}); generator "
            f"`{result['generator']}` step {result['step']}; real references: "
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
    return text + ".\n\n" + markdown_table(headers, rows)
