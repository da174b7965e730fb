"""``feraug demo``: the whole pipeline on embedded procedural faces, no download needed.

Draws the procedural data set (imbalanced, subject-disjoint splits), trains ``zhu-cnn`` with the
normal trainer (model selection on validation), scores the best checkpoint on the test split,
and writes a Markdown report with figures plus a manifest. The data are also saved as FER2013-
style image folders so the normal commands (``feraug train``, ``feraug evaluate``) can be tried
on them next.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from feraug.data.dataset import FaceDataset
from feraug.data.procedural import DEFAULT_COUNTS, make_procedural_faces, save_image_folder
from feraug.io import prepare_output_dir, write_json
from feraug.report import (
    confusion_table,
    dataset_table,
    fmt,
    image_md,
    markdown_table,
    per_class_table,
    save_sample_grid,
    save_training_curves,
    write_report,
)

if TYPE_CHECKING:
    from feraug.training.config import TrainConfig
    from feraug.training.trainer import FitResult

#: Full demo: about 3 minutes on 2 CPU cores (most of it training).
FULL = {"counts": DEFAULT_COUNTS, "n_identities": 40, "epochs": 12, "batch_size": 64,
        "max_steps": None}
#: Quick demo (tests, smoke checks): a few seconds.
QUICK = {"counts": {"angry": 12, "disgust": 10, "fear": 12, "happy": 16, "sad": 12,
                    "surprise": 12, "neutral": 14},
         "n_identities": 10, "epochs": 1, "batch_size": 32, "max_steps": 2}

NOTE = ("**These are procedural cartoon faces, not real data.** They are drawn from a handful "
        "of parameters (mouth curve and opening, brow angle and height, eye opening, nose "
        "wrinkles) with per-person and per-image variation, so the numbers below only show "
        "that the pipeline works end to end. They say nothing about facial expression "
        "recognition on real faces; use FER2013, CK+ or JAFFE for that.")


def demo_plan(quick: bool = False) -> dict:
    """Data and training sizes of the demo (``quick`` for tests)."""
    return dict(QUICK if quick else FULL)


def _train_config(out_dir: Path, plan: dict, seed: int, quick: bool) -> TrainConfig:
    from feraug.training.config import build_train_config

    overrides = {
        "out": str(out_dir / "train"),
        "epochs": plan["epochs"],
        "max_steps": plan["max_steps"],
        "batch_size": plan["batch_size"],
        "seed": seed,
    }
    if quick:
        overrides["device"] = "cpu"
    return build_train_config({"data": "procedural", "model": "zhu-cnn"}, overrides,
                              source="demo")


def _report_sections(out_dir: Path, ds: FaceDataset, result: FitResult, metrics: dict,
                     files: dict, seconds: dict, quick: bool) -> list[tuple[str, str]]:
    best = result.best_val
    recall = {c: m["recall"] for c, m in metrics["per_class"].items()}
    worst = min(recall, key=recall.get)
    counts = ds.class_counts("train")
    rare = min(counts, key=counts.get)
    headline = markdown_table(
        ["metric", "value"],
        [["test accuracy", metrics["accuracy"]],
         ["test macro-F1", metrics["macro_f1"]],
         ["best validation accuracy", best.get("val_accuracy")],
         ["best epoch", best.get("epoch")],
         ["test images", metrics.get("num_images", sum(counts.values()))]])
    quick_note = ("\n\n*Quick mode: tiny data and a couple of training steps, so the scores "
                  "are near chance by design.*" if quick else "")
    return [
        ("Result", headline + quick_note + f"\n\nLowest test recall: **{worst}** "
         f"({fmt(recall[worst])}); rarest training class: **{rare}** ({counts[rare]} images). "
         "Rare classes being recognised worst is the imbalance that GAN-based augmentation "
         "(`feraug gan`, `feraug synth`) is meant to address."),
        ("Data", f"{len(ds)} procedural faces of {ds.extra.get('n_identities')} identities, "
         f"{ds.size}x{ds.size} px, seed {ds.extra.get('seed')}. Splits are subject-disjoint "
         f"(no identity in two splits). Fingerprint `{ds.fingerprint()}`.\n\n"
         + dataset_table(ds) + "\n\n" + image_md(files["samples"], "samples", out_dir)
         + "\n\nOne row per class, random training images."),
        ("Training", f"`zhu-cnn`, {len(result.history)} epoch(s), best epoch chosen on the "
         f"validation split only. Checkpoint: `{_rel(result.best_checkpoint, out_dir)}`.\n\n"
         + image_md(files["curves"], "training curves", out_dir)),
        ("Test split, per class", per_class_table(metrics) + "\n\n"
         + image_md(files["confusion"], "confusion matrix", out_dir)
         + "\n\nConfusion matrix (rows: true class, columns: predicted):\n\n"
         + confusion_table(metrics)),
        ("Next steps", "The data are saved as FER2013-style folders, so the normal commands "
         "work on them:\n\n```\n"
         f"feraug evaluate {_rel(result.best_checkpoint, Path.cwd())} "
         f"{_rel(files['data'], Path.cwd())}\n"
         f"feraug train --data {_rel(files['data'], Path.cwd())} --out runs/procedural-train\n"
         "```"),
        ("Timing", markdown_table(["stage", "seconds"],
                                  [[k, f"{v:.1f}"] for k, v in seconds.items()])),
    ]


def _rel(path: Path, base: Path) -> str:
    try:
        return Path(path).resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def run_demo(out_dir: Path, quick: bool = False, seed: int = 0) -> dict:
    """Run the demo into ``out_dir`` (which must be new or empty) and return a JSON-ready
    summary: paths of the report and figures, test accuracy/macro-F1, per-class recall and
    timings. ``quick=True`` uses tiny data and two training steps (for tests)."""
    from feraug.manifest import write_manifest
    from feraug.training.checkpoint import load_classifier
    from feraug.training.engine import choose_device
    from feraug.training.evaluate import evaluate_classifier
    from feraug.training.trainer import fit

    out_dir = prepare_output_dir(Path(out_dir))
    plan = demo_plan(quick)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    ds = make_procedural_faces(plan["counts"], size=48, n_identities=plan["n_identities"],
                               seed=seed)
    files = {"data": save_image_folder(ds, out_dir / "data")}
    files["samples"] = save_sample_grid(ds, out_dir / "samples.png", per_class=10,
                                        split="train", seed=seed)
    seconds["data"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    config = _train_config(out_dir, plan, seed, quick)
    result = fit(config, dataset=ds)
    seconds["training"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    device = "cpu" if quick else choose_device(config.device)
    loaded = load_classifier(result.best_checkpoint, device)
    metrics = evaluate_classifier(loaded, ds, split="test", out_dir=out_dir / "test")
    files["confusion"] = out_dir / "test" / "confusion.png"
    files["curves"] = save_training_curves(result.history, out_dir / "curves.png",
                                           title="zhu-cnn on procedural faces")
    seconds["evaluation"] = time.perf_counter() - t0

    title = "feraug demo: procedural faces" + (" (quick)" if quick else "")
    report = write_report(out_dir, title, _report_sections(out_dir, ds, result, metrics, files,
                                                           seconds, quick), intro=NOTE)
    summary = {
        "out_dir": str(out_dir),
        "report": str(report),
        "quick": quick,
        "seed": seed,
        "data_fingerprint": ds.fingerprint(),
        "num_images": len(ds),
        "best_checkpoint": str(result.best_checkpoint),
        "epochs": len(result.history),
        "best_val_accuracy": result.best_val.get("val_accuracy"),
        "test_accuracy": metrics["accuracy"],
        "test_macro_f1": metrics["macro_f1"],
        "test_recall": {c: m["recall"] for c, m in metrics["per_class"].items()},
        "files": {k: str(v) for k, v in files.items()},
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
    }
    write_json(summary, out_dir / "summary.json")
    manifest = write_manifest(out_dir, "demo", config.model_dump(), seed, ds.fingerprint(),
                              quick=quick, data_summary=ds.summary(), result=summary)
    summary["manifest"] = str(manifest)
    return summary
