"""``report.md`` of an experiment: what was run, the main table (mean ± 95% CI over seeds and
paired differences against the baseline), every comparison with its reading, per-class
recall, figures (bar chart with error bars, confusion matrices, t-SNE) and the individual
runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml

from feraug.data.dataset import FaceDataset
from feraug.experiment.by_subject import subject_table
from feraug.experiment.config import ExperimentConfig, run_dir
from feraug.experiment.folder import validation_faces
from feraug.experiment.tables import main_table, recall_tables, report_intro, verdicts
from feraug.reporting.figures import pyplot, save_figure
from feraug.reporting.markdown import fmt, image_md, markdown_table, write_report

PROCEDURAL_NOTE = ("**These are procedural cartoon faces, not real data.** The numbers show "
                   "that the experiment machinery works; they say nothing about facial "
                   "expression recognition on real faces.")


def save_metric_bars(results: dict, path: Path) -> Path:
    """Grouped bars: test accuracy and macro-F1 per arm, mean with 95% CI error bars."""
    plt = pyplot()
    arms = list(results["arms"])
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(arms) + 2), 3.6))
    width = 0.38
    for j, (metric, label) in enumerate((("accuracy", "accuracy"), ("macro_f1", "macro-F1"))):
        means = [results["arms"][a][metric]["mean"] or 0.0 for a in arms]
        errs = [results["arms"][a][metric]["ci95"] or 0.0 for a in arms]
        xs = [i + (j - 0.5) * width for i in range(len(arms))]
        ax.bar(xs, means, width, yerr=errs, capsize=3, label=label)
    ax.set_xticks(range(len(arms)), arms, rotation=20, ha="right")
    ax.set_ylabel("test score (mean ± 95% CI)")
    ax.set_ylim(0, 1.0)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _what_was_run(cfg: ExperimentConfig, manifest: dict) -> str:
    summary = manifest.get("data_summary") or {}
    splits = summary.get("splits", {})
    rows = [["data", f"`{cfg.data.path}`" + (f" ({summary.get('format')})" if summary else "")],
            ["image size", f"{cfg.data.size} px"],
            ["splits (images)", ", ".join(f"{s} {v.get('total')}" for s, v in splits.items())
             or "—"],
            ["data fingerprint", f"`{manifest.get('data_fingerprint')}`"],
            ["seeds", ", ".join(str(s) for s in cfg.seeds)],
            ["baseline arm", f"`{cfg.baseline}`"],
            ["git commit", f"`{manifest.get('git_commit')}`"],
            ["feraug", (manifest.get("environment") or {}).get("feraug", "—")],
            ["torch", (manifest.get("environment") or {}).get("torch", "—")]]
    arm_rows = []
    for arm in cfg.arms:
        over = ", ".join(f"`{k}: {json.dumps(v)}`" for k, v in arm.train.items()) or "—"
        syn = ", ".join(f"`{d}`" for d in arm.synthetic) or "—"
        arm_rows.append([f"`{arm.name}`", over, syn, arm.description or ""])
    text = (markdown_table(["", ""], rows, align=["l", "l"]) + "\n\nArms (each trained once "
            "per seed with the shared settings below plus its own overrides):\n\n"
            + markdown_table(["arm", "overrides", "synthetic folders", "note"], arm_rows,
                             align=["l"] * 4)
            + "\n\nEvery run chooses its checkpoint on the **validation** split only; all "
            "numbers below are on the **test** split. Synthetic images only ever join the "
            "train split.\n\nConfig:\n\n```yaml\n"
            + yaml.safe_dump(cfg.model_dump(), sort_keys=False).strip() + "\n```")
    return text


def _runs_table(results: dict) -> str:
    rows = [[f"`{r['arm']}`", r["seed"], r.get("best_val_accuracy"), r.get("best_epoch"),
             r.get("steps"), r["accuracy"], r["macro_f1"], r.get("synthetic_train_images"),
             r.get("train_seconds")] for r in results["runs"]]
    text = markdown_table(["arm", "seed", "best val acc", "best epoch", "steps", "test acc",
                           "test macro-F1", "synthetic train images", "train s"], rows)
    missing = results.get("missing_runs") or []
    if missing:
        text += ("\n\n**Not finished yet** (rerun `feraug experiment run` to continue): "
                 + ", ".join(f"`{m['arm']}` seed {m['seed']}" for m in missing) + ".")
    return text


def _confusions(results: dict, out: Path) -> str:
    parts = []
    for arm, e in results["arms"].items():
        if not e["seeds"]:
            continue
        png = run_dir(out, arm, e["seeds"][0]) / "test" / "confusion.png"
        if png.is_file():
            parts.append(f"**{arm}**, seed {e['seeds'][0]}:\n\n"
                         + image_md(png, f"confusion {arm}", out))
    return ("Row-normalised confusion matrices (rows: true class) of each arm's first "
            "finished seed.\n\n" + "\n\n".join(parts)) if parts else "No finished runs."


def _tsne_section(cfg: ExperimentConfig, results: dict, real: FaceDataset | None, out: Path,
                  log: Callable[[str], None]) -> str:
    path = out / "figures" / "tsne.png"
    base = results["arms"].get(cfg.baseline, {})
    if cfg.tsne_points == 0:
        return "t-SNE disabled (`tsne_points: 0`)."
    if real is None or not base.get("seeds"):
        if path.is_file():
            return image_md(path, "t-SNE", out) + "\n\n(figure from an earlier run)"
        return "No t-SNE: the baseline has no finished run (or the data were not loaded)."
    from feraug.data.dataset import concat
    from feraug.data.synthetic import MANIFEST, kept_nothing, load_synthetic
    from feraug.experiment.tsne import save_tsne
    from feraug.models.checkpoint import load_classifier

    seed = base["seeds"][0]
    loaded = load_classifier(run_dir(out, cfg.baseline, seed) / "best.pt", "cpu")
    # a set not built yet (a stopped run, or `--only` arms that do not need it) is left out
    built = [d for d in cfg.synthetic_dirs() if (Path(d) / MANIFEST).is_file()]
    dirs = [d for d in built if not kept_nothing(d)]
    synthetic = concat([load_synthetic(d, real.classes, real.size) for d in dirs]) \
        if dirs else None
    counts = save_tsne(loaded, real, path, synthetic, max_points=cfg.tsne_points, seed=seed,
                       title=f"t-SNE of {cfg.baseline} (seed {seed}) penultimate features")
    if counts is None:
        return "No t-SNE: too few images."
    log(f"t-SNE of {sum(counts.values())} points -> {path}")
    what = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items())
    extra = (" Right: real training faces (o) and synthetic faces (x) of the classes the "
             "synthetic sets hold; synthetic points far from the real ones of their class "
             "are faces the classifier sees differently.") if synthetic is not None else ""
    missing = [Path(d).name for d in cfg.synthetic_dirs() if d not in built]
    if missing:
        extra += f" Synthetic sets not built yet, so not shown: {', '.join(missing)}."
    return (image_md(path, "t-SNE", out) + f"\n\nPenultimate features (`model.embed`) of the "
            f"baseline model `{cfg.baseline}`, seed {seed}, on a random sample ({what}). "
            "Left: real test faces coloured by true class." + extra)


def ratio_points(cfg: ExperimentConfig) -> dict[str, dict[str, float]]:
    """One curve per generator: ``{generator: {arm: k}}`` for the arms whose synthetic faces
    are one ``multiply`` set of that generator (k x each class's real count), plus
    ``{baseline: 0}`` when the baseline has none. A generator with fewer than two points has
    no curve; points of two generators are never joined into one."""
    sets = {s.name: s for s in cfg.synthetic}
    curves: dict[str, dict[str, float]] = {}
    for arm in cfg.arms:
        spec = sets.get(arm.synthetic[0]) if len(arm.synthetic) == 1 else None
        if spec is not None and spec.plan.get("mode") == "multiply" and not arm.train:
            curves.setdefault(spec.generator, {})[arm.name] = float(spec.plan.get("k", 1.0))
    base = cfg.arm(cfg.baseline or cfg.arms[0].name)
    if not base.synthetic and not base.train:
        for points in curves.values():
            points[base.name] = 0.0
    return {g: points for g, points in curves.items() if len(points) >= 2}


def save_ratio_curve(results: dict, curves: dict[str, dict[str, float]], path: Path) -> Path:
    """Test accuracy and macro-F1 (mean, 95% CI error bars) against k, one line per
    generator."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6))
    for ax, (metric, label) in zip(axes, (("accuracy", "accuracy"), ("macro_f1", "macro-F1")),
                                   strict=True):
        for generator, points in curves.items():
            arms = sorted((a for a in points if a in results["arms"]), key=points.__getitem__)
            rows = [(points[a], results["arms"][a][metric]) for a in arms]
            rows = [(k, m) for k, m in rows if m["mean"] is not None]
            ax.errorbar([k for k, _ in rows], [m["mean"] for _, m in rows],
                        yerr=[m["ci95"] or 0.0 for _, m in rows], marker="o", capsize=3,
                        label=generator)
        ax.set_xlabel("synthetic faces per real face (k)")
        ax.set_ylabel(f"test {label} (mean ± 95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def _ratio_section(cfg: ExperimentConfig, results: dict, out: Path) -> str | None:
    curves = ratio_points(cfg)
    if not curves:
        return None
    path = save_ratio_curve(results, curves, out / "figures" / "ratio_curve.png")
    order = "; ".join(f"{g}: " + ", ".join(f"`{a}` k={p[a]:g}" for a in sorted(p, key=p.get))
                      for g, p in curves.items())
    return (image_md(path, "accuracy and macro-F1 against k", out) + "\n\nArms with k "
            f"synthetic faces per real face of each class ({order}); k = 0 is the baseline "
            "without synthetic faces. Same seeds for every point.")


def _samples_section(cfg: ExperimentConfig, real: FaceDataset | None, out: Path) -> str:
    """Random real training faces per class, and random faces of every synthetic set."""
    from feraug.data.synthetic import kept_nothing, load_synthetic
    from feraug.reporting.figures import save_sample_grid

    figures = out / "figures"
    parts = []
    path = figures / "samples_real.png"
    if real is not None:
        save_sample_grid(real, path, per_class=10, split="train", seed=cfg.seeds[0])
    if path.is_file():
        parts.append(image_md(path, "real training faces", out)
                     + "\n\nReal training faces, one row per class, drawn at random.")
    for syn in cfg.synthetic:
        folder = Path(cfg.synthetic_dir(syn.name))
        grid = figures / f"samples_{syn.name}.png"
        if (folder / "manifest.json").is_file() and kept_nothing(folder):
            parts.append(f"Synthetic set `{syn.name}` (generator `{syn.generator}`): its plan "
                         "kept no face (see its manifest's totals).")
            continue
        if real is not None and (folder / "manifest.json").is_file():
            save_sample_grid(load_synthetic(folder, real.classes, real.size), grid,
                             per_class=10, seed=cfg.seeds[0])
        if grid.is_file():
            parts.append(image_md(grid, f"synthetic set {syn.name}", out)
                         + f"\n\nSynthetic set `{syn.name}` (generator `{syn.generator}`), "
                         "drawn at random: what the GAN arms add to their training split.")
        if (folder / "manifest.json").is_file():
            parts.append(_synthetic_counts(folder))
    return "\n\n".join(parts) or "No figures (the data were not loaded)."


def _synthetic_counts(folder: Path) -> str:
    """Per emotion: faces asked for, kept, from how many real source faces, and why the
    others were dropped, from the set's manifest."""
    counts = json.loads((folder / "manifest.json").read_text()).get("counts", {})
    keys = ("requested", "kept", "distinct_sources", "dropped_quality", "dropped_memorisation",
            "dropped_unchanged", "dropped_duplicate", "shortfall")
    rows = [[emotion, *(f"{c[k]:,}" if isinstance(c.get(k), int) else "—" for k in keys)]
            for emotion, c in counts.items()]
    return ("Per emotion: faces asked for and kept, the real faces a translator started "
            "from, and the drafts dropped by the quality filter, the memorisation guard, "
            "as unedited, or as copies of a face already kept.\n\n"
            + markdown_table(["emotion", "asked", "kept", "source faces", "quality",
                              "memorised", "unedited", "copies", "short"], rows))


def _generator_section(cfg: ExperimentConfig, out: Path) -> str | None:
    """Each generator's score by the independent judge, with its best/worst samples; None
    when the config scores no generator."""
    if cfg.judge is None or not cfg.generators:
        return None
    from feraug.experiment.judging import read_scores
    from feraug.scoring.report import score_table

    scores = read_scores(cfg)
    parts = ["Every generator scored by a classifier that never guided a generator or "
             "filtered a synthetic set (`judge` in the config): the share of generated faces "
             "of each emotion it recognises, next to its own recall on real faces of that "
             "emotion (ratio 1 = as recognisable as real faces), and distances to real faces."
             + (" The reverse test (`judge.reverse_epochs`): a classifier trained on the "
                "generated faces (real faces for the classes the generator does not make), "
                "tested on real faces, beside one trained on as many real faces; its ratio "
                "(per emotion, one-vs-rest ROC AUC above chance) says how much of an emotion "
                "the faces teach (1 = as much as real faces, 0 = nothing). "
                "A recognisable face can teach little: a cue real faces rarely show."
                if cfg.judge.reverse_epochs else "")]
    for gen in cfg.generators:
        result = scores.get(gen.name)
        if result is None:
            parts.append(f"**{gen.name}**: not scored yet.")
            continue
        parts.append(f"**{gen.name}**\n\n" + score_table(result))
        grid = Path((result.get("files") or {}).get("best_worst", ""))
        if grid.is_file():
            parts.append(image_md(grid, f"best and worst samples of {gen.name}", out)
                         + "\n\nPer emotion: the samples the judge found most and least "
                         "like that emotion.")
    return "\n\n".join(parts)


def write_experiment_report(cfg: ExperimentConfig, results: dict, real: FaceDataset | None,
                            log: Callable[[str], None] | None = None) -> Path:
    """Write ``figures/`` and ``report.md`` into ``cfg.out`` and return the report's path."""
    out = Path(cfg.out)
    log = log or (lambda _: None)
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        manifest = {}
    bars = save_metric_bars(results, out / "figures" / "metrics.png")
    total = len(cfg.runs())
    done = len(results["runs"])
    title = cfg.title or f"feraug experiment: {out.name}"
    intro = report_intro(cfg.protocol, PROCEDURAL_NOTE if cfg.data.is_procedural else None)
    judged = _generator_section(cfg, out)
    from feraug.experiment.shortcut import shortcut_section

    shortcut = shortcut_section(cfg, results, real)
    ratio = _ratio_section(cfg, results, out)
    by_subject = subject_table(results)
    status = (f"{done} of {total} runs finished." if done < total else
              f"All {total} runs finished ({len(cfg.arms)} arms x {len(cfg.seeds)} seeds).")
    sections = [
        ("Main result", status + " Test split, mean ± 95% CI over seeds (Student t); Δ is "
         "the paired difference against the baseline with the same seed (and, for GAN arms, "
         "against the best arm without synthetic faces, chosen on validation); val accuracy "
         "is the mean validation score of the runs' chosen checkpoints, which does the "
         "choosing.\n\n"
         + main_table(results, vs_best=True) + "\n\n"
         + image_md(bars, "accuracy and macro-F1", out)),
        ("Did it help?", verdicts(results, val_faces=validation_faces(manifest))),
        *([("Resampling whole subjects", by_subject)] if by_subject else []),
        *([("Synthetic:real ratio", ratio)] if ratio else []),
        *([("Generators, judged independently", judged)] if judged else []),
        *([("Shortcut check", shortcut)] if shortcut else []),
        ("Faces", _samples_section(cfg, real, out)),
        ("Per-class recall", "Test recall per class, mean ± 95% CI over seeds.\n\n"
         + recall_tables(results)),
        ("Confusion matrices", _confusions(results, out)),
        ("Feature space (t-SNE)", _tsne_section(cfg, results, real, out, log)),
        ("Runs", _runs_table(results)),
        ("What was run", _what_was_run(cfg, manifest)),
        ("Files", "`results.json` (everything above, per run and per arm), `results.csv` (one "
         "row per arm), `<arm>/seed<k>/` (a normal `feraug train` folder with `best.pt`, "
         "`metrics.jsonl`, `manifest.json`; `test/metrics.json`, `test/confusion.png` and "
         "`test/predictions.npz`, each test face's label, prediction and subject). "
         "Regenerate this report with `feraug experiment report "
         f"{fmt(str(out))}`."),
    ]
    return write_report(out, title, sections, intro=intro)
