"""``feraug demo``: the whole pipeline on embedded procedural faces, no download needed.

Draws the procedural data set (imbalanced, subject-disjoint splits), trains ``zhu-cnn`` with the
normal trainer (model selection on validation) and scores the best checkpoint on the test split.
Then the generator step (:mod:`feraug.demo_gan`, skipped with ``gan=False``): a guide and an
independent judge (two class-balanced classifiers of different architectures) are trained on
the real train faces; the guided editing CycleGAN learns to turn neutral training faces into
the rarest class; a synthetic set balances that class up (memorisation guard on); the same
classifier is trained again, with the same seed and epochs, on the real training split plus
the synthetic folder; both are scored on the same test split, and the judge scores the
generated faces (``feraug gan score``). A Markdown report with figures, ``summary.json``
(both result rows, wall-clock and CPU seconds per stage) and a manifest are written. The data
are also saved as FER2013-style image folders so the normal commands (``feraug train``,
``feraug evaluate``) can be tried next.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from feraug.data.dataset import FaceDataset
from feraug.data.procedural import DEFAULT_COUNTS, make_procedural_faces, save_image_folder
from feraug.demo_gan import rel_path
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
    from feraug.demo_gan import GanStep
    from feraug.training.config import TrainConfig
    from feraug.training.trainer import FitResult

#: Full demo: about 7.5 CPU-minutes (four classifier trainings and a generator, most of it the
#: generator); 4 minutes of wall-clock measured on 2 CPU cores (docs/results.md).
FULL = {"counts": DEFAULT_COUNTS, "n_identities": 40, "epochs": 8, "batch_size": 64,
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


class StageTimer:
    """Wall-clock and CPU seconds (all threads of this process) per named stage."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as stage ``name``."""
        t, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] = time.perf_counter() - t
            self.cpu[name] = time.process_time() - c

    def table(self) -> str:
        """Markdown table of the stages with a total row."""
        rows = [[k, f"{v:.1f}", f"{self.cpu[k]:.1f}"] for k, v in self.wall.items()]
        rows.append(["**total**", f"{sum(self.wall.values()):.1f}",
                     f"{sum(self.cpu.values()):.1f}"])
        return markdown_table(["stage", "wall-clock s", "CPU s"], rows)


def demo_plan(quick: bool = False) -> dict:
    """Data and training sizes of the demo (``quick`` for tests)."""
    return dict(QUICK if quick else FULL)


def _train_config(out_dir: Path, plan: dict, seed: int, quick: bool, name: str = "train",
                  synthetic: list[str] | None = None, model: str = "zhu-cnn",
                  extra: dict | None = None) -> TrainConfig:
    from feraug.training.config import build_train_config

    overrides = {
        "out": str(out_dir / name),
        "epochs": plan["epochs"],
        "max_steps": plan["max_steps"],
        "batch_size": plan["batch_size"],
        "seed": seed,
        "synthetic": synthetic,
        "channels_last": False,  # as in the demo result recorded in docs/results.md
        **(extra or {}),
    }
    if quick:
        overrides["device"] = "cpu"
    return build_train_config({"data": "procedural", "model": model}, overrides,
                              source="demo")


def _train_and_test(config: TrainConfig, ds: FaceDataset, out_dir: Path, test_dir: str,
                    label: str, synthetic: int, timer: StageTimer, quick: bool
                    ) -> tuple[FitResult, object, dict, dict]:
    """Train with ``config``, score the best checkpoint on ``ds``'s test split; returns the
    fit result, loaded classifier, test metrics and the summary row."""
    from feraug.training.checkpoint import load_classifier
    from feraug.training.engine import choose_device
    from feraug.training.evaluate import evaluate_classifier
    from feraug.training.trainer import fit

    suffix = "" if not synthetic else "_synthetic"
    with timer("training" + suffix):
        result = fit(config, dataset=ds)
    with timer("evaluation" + suffix):
        device = "cpu" if quick else choose_device(config.device)
        loaded = load_classifier(result.best_checkpoint, device)
        metrics = evaluate_classifier(loaded, ds, split="test", out_dir=out_dir / test_dir)
    row = {
        "name": label,
        "train_images": len(ds.indices("train")) + synthetic,
        "synthetic_images": synthetic,
        "best_checkpoint": str(result.best_checkpoint),
        "epochs": len(result.history),
        "best_val_accuracy": result.best_val.get("val_accuracy"),
        "test_accuracy": metrics["accuracy"],
        "test_macro_f1": metrics["macro_f1"],
        "test_recall": {c: m["recall"] for c, m in metrics["per_class"].items()},
        "test_support": {c: m["support"] for c, m in metrics["per_class"].items()},
    }
    return result, loaded, metrics, row


def _report_sections(out_dir: Path, ds: FaceDataset, result: FitResult, metrics: dict,
                     files: dict, quick: bool) -> list[tuple[str, str]]:
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
         ["test images", metrics.get("num_images", len(ds.indices("test")))]])
    quick_note = ("\n\n*Quick mode: tiny data and a couple of training steps, so the scores "
                  "are near chance by design.*" if quick else "")
    return [
        ("Result (real data only)", headline + quick_note + f"\n\nLowest test recall: "
         f"**{worst}** ({fmt(recall[worst])}); rarest training class: **{rare}** "
         f"({counts[rare]} images). Rare classes being recognised worst is the imbalance that "
         "GAN-based augmentation (`feraug gan`, `feraug synth`) is meant to address."),
        ("Data", f"{len(ds)} procedural faces of {ds.extra.get('n_identities')} identities, "
         f"{ds.size}x{ds.size} px, seed {ds.extra.get('seed')}. Splits are subject-disjoint "
         f"(no identity in two splits). Fingerprint `{ds.fingerprint()}`.\n\n"
         + dataset_table(ds) + "\n\n" + image_md(files["samples"], "samples", out_dir)
         + "\n\nOne row per class, random training images."),
        ("Training", f"`zhu-cnn`, {len(result.history)} epoch(s), best epoch chosen on the "
         f"validation split only. Checkpoint: `{rel_path(result.best_checkpoint, out_dir)}`.\n\n"
         + image_md(files["curves"], "training curves", out_dir)),
        ("Test split, per class", per_class_table(metrics) + "\n\n"
         + image_md(files["confusion"], "confusion matrix", out_dir)
         + "\n\nConfusion matrix (rows: true class, columns: predicted):\n\n"
         + confusion_table(metrics)),
    ]


def _next_steps(files: dict, step: GanStep | None) -> tuple[str, str]:
    data = rel_path(files["data"], Path.cwd())
    lines = [f"feraug evaluate {rel_path(files['best'], Path.cwd())} {data}",
             f"feraug train --data {data} --out runs/procedural-train"]
    if step is not None:
        lines.append(f"feraug gan train --model cyclegan --data {data} --target {step.target} "
                     "--out runs/procedural-cyclegan")
    return ("Next steps", "The data are saved as FER2013-style folders, so the normal commands "
            "work on them:\n\n```\n" + "\n".join(lines) + "\n```\n\nTo measure whether "
            "augmentation helps, compare methods over several seeds with `feraug experiment`.")


#: Guide and judge: class-balanced classifiers of two architectures on the real train split.
#: The guide steers the generator; the judge, which never touches it, scores its faces.
GUIDE = {"model": "zhu-cnn-wide", "seed_offset": 101}
JUDGE = {"model": "zhu-cnn", "seed_offset": 202}


def _guide_and_judge(ds: FaceDataset, out_dir: Path, plan: dict, seed: int, quick: bool
                     ) -> tuple[Path, Path]:
    """Train the generator's guide and the independent judge; their best checkpoints."""
    from feraug.training.trainer import fit

    paths = []
    for name, spec in (("guide", GUIDE), ("judge", JUDGE)):
        config = _train_config(out_dir, plan, seed + spec["seed_offset"], quick, name,
                               model=spec["model"],
                               extra={"balanced_sampling": True, "select_metric": "macro_f1"})
        paths.append(fit(config, dataset=ds).best_checkpoint)
    return paths[0], paths[1]


def run_demo(out_dir: Path, quick: bool = False, seed: int = 0, gan: bool = True) -> dict:
    """Run the demo into ``out_dir`` (which must be new or empty) and return a JSON-ready
    summary: paths of the report and figures, test accuracy/macro-F1 and per-class recall of
    the real-only classifier (top level) and of both classifiers (``results``), the generator
    step (``gan``; None with ``gan=False``) and wall-clock/CPU seconds per stage. ``quick=True``
    uses tiny data and a few training steps (for tests)."""
    import torch

    from feraug.manifest import write_manifest

    out_dir = prepare_output_dir(Path(out_dir))
    plan = demo_plan(quick)
    timer = StageTimer()
    with timer("data"):
        ds = make_procedural_faces(plan["counts"], size=48, n_identities=plan["n_identities"],
                                   seed=seed)
        files = {"data": save_image_folder(ds, out_dir / "data")}
        files["samples"] = save_sample_grid(ds, out_dir / "samples.png", per_class=10,
                                            split="train", seed=seed)

    config = _train_config(out_dir, plan, seed, quick)
    result, loaded, metrics, base_row = _train_and_test(config, ds, out_dir, "test", "real only",
                                                        0, timer, quick)
    files["best"] = result.best_checkpoint
    files["confusion"] = out_dir / "test" / "confusion.png"
    files["curves"] = save_training_curves(result.history, out_dir / "curves.png",
                                           title="zhu-cnn on procedural faces")
    sections = _report_sections(out_dir, ds, result, metrics, files, quick)
    rows, step, gan_summary = [base_row], None, None

    if gan:
        from feraug.demo_gan import (
            classifier_view,
            comparison_sections,
            run_gan_step,
            save_generated_grid,
            score_step,
            skipped_section,
        )

        with timer("guide_and_judge"):
            guide, judge = _guide_and_judge(ds, out_dir, plan, seed, quick)
        step = run_gan_step(ds, out_dir, seed, quick, timer, guide=guide)
        files["synthetic"] = step.synthetic_dir
        gan_summary = step.summary()
        if step.kept:
            with timer("generated_figure"):
                files["generated"] = save_generated_grid(step, ds, out_dir / "generated.png",
                                                         seed=seed)
                view = classifier_view(loaded, step.synthetic_dir, ds, step.target)
            gan_summary["classifier_view"] = view
            with timer("scoring"):
                gan_summary["score"] = score_step(step, ds, judge, out_dir / "score")
            config_syn = _train_config(out_dir, plan, seed, quick, "train_synthetic",
                                       [str(step.synthetic_dir)])
            _, _, _, aug_row = _train_and_test(config_syn, ds, out_dir, "test_synthetic",
                                               "real + synthetic", step.kept, timer, quick)
            rows.append(aug_row)
            sections += comparison_sections(out_dir, rows, step, view, files["generated"],
                                            quick, gan_summary["score"])
        else:
            sections.append(skipped_section(step))

    with timer("report"):
        sections += [_next_steps(files, step),
                     ("Timing", f"Measured on this machine with {torch.get_num_threads()} "
                      "torch thread(s); CPU seconds count every thread of the process, so "
                      "a wall-clock time far above the CPU time means the machine was busy "
                      "with other work.\n\n" + timer.table())]
        title = "feraug demo: procedural faces" + (" (quick)" if quick else "")
        report = write_report(out_dir, title, sections, intro=NOTE)
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
        "test_recall": base_row["test_recall"],
        "results": rows,
        "gan": gan_summary,
        "files": {k: str(v) for k, v in files.items()},
        "torch_threads": torch.get_num_threads(),
        "seconds": {k: round(v, 2) for k, v in timer.wall.items()},
        "cpu_seconds": {k: round(v, 2) for k, v in timer.cpu.items()},
    }
    write_json(summary, out_dir / "summary.json")
    manifest = write_manifest(out_dir, "demo", config.model_dump(), seed, ds.fingerprint(),
                              quick=quick, data_summary=ds.summary(), result=summary)
    summary["manifest"] = str(manifest)
    return summary
