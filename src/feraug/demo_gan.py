"""The generator step of ``feraug demo``: GAN-based augmentation on the procedural faces.

:func:`run_gan_step` trains the guided editing CycleGAN (source emotion ``neutral`` -> the
rarest training class, ``disgust`` with the default counts) on the *train split* of the demo
data with the normal generator trainer, then writes a synthetic set with the normal synthesis
step (plan: balance the rare class up to the largest class, memorisation guard on) into
``OUT/synthetic``.
:mod:`feraug.demo` then trains the same classifier again with that folder added to the train
split only and compares both on the same test split.

The helpers below describe the result honestly: a figure with real faces of the target class,
the real source faces and what the generator made of them (:func:`save_generated_grid`), how
the real-only classifier labels the generated faces (:func:`classifier_view`), the
independent judge's score (:func:`score_step`), and the report sections comparing the two
classifiers (:func:`comparison_sections`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import torch

from feraug.data.dataset import FaceDataset
from feraug.data.images import decode_file
from feraug.report import fmt, image_md, markdown_table

#: Default generator step: the guided mask-editing CycleGAN, about 2.5 minutes on 2 CPU cores.
#: The guide sees full-resolution edits: the cartoon's expression cues are one-pixel lines
#: that a half-resolution view erases (with it the generator only darkened the eyes and the
#: real + synthetic classifier found no real disgust face; see docs/results.md).
GAN_FULL: dict = {"model": "cyclegan", "sample_every": 100, "log_every": 25,
                  "config": {"steps": 300, "batch_size": 16, "ngf": 32, "n_blocks": 3,
                             "ndf": 32, "guide_blur": False}}
#: Quick mode (tests): a few steps of a tiny network; the output is noise by design.
GAN_QUICK: dict = {"model": "cyclegan", "sample_every": 0, "log_every": 1,
                   "config": {"steps": 3, "batch_size": 2, "ngf": 4, "n_blocks": 1, "ndf": 4,
                              "pool_size": 4}}
#: Samples the demo's scorer draws per emotion.
SCORE_SAMPLES = 300
#: Synthesis plan: fill the target class up to the largest class; drop near-copies of real faces.
SYNTH_PLAN: dict = {"mode": "balance", "delta": 0.05}
GRID_COLUMNS = 10


@dataclass
class GanStep:
    """What the generator step produced."""

    model_name: str
    source: str
    target: str
    config: dict
    run_dir: Path
    checkpoint: Path
    steps: int
    losses: dict
    synthetic_dir: Path
    manifest: dict

    @property
    def kept(self) -> int:
        """Synthetic images written (after the memorisation guard)."""
        return int(self.manifest["totals"]["kept"])

    def summary(self) -> dict:
        """JSON-ready description for ``summary.json``."""
        totals = self.manifest["totals"]
        counts = self.manifest["counts"].get(self.target, {})
        return {
            "model": self.model_name, "source": self.source, "target": self.target,
            "config": self.config, "steps": self.steps, "final_losses": self.losses,
            "run_dir": str(self.run_dir), "checkpoint": str(self.checkpoint),
            "synthetic_dir": str(self.synthetic_dir),
            "synthetic_requested": totals["requested"], "synthetic_kept": totals["kept"],
            "dropped_memorisation": totals["dropped_memorisation"],
            "nearest_real_rms_mean": counts.get("nearest_real_rms_mean"),
            "nearest_real_rms_min": counts.get("nearest_real_rms_min"),
        }


def gan_plan(quick: bool = False) -> dict:
    """The generator and its training schedule (``quick``: a few steps for tests)."""
    spec = GAN_QUICK if quick else GAN_FULL
    return {**spec, "config": dict(spec["config"])}


def pick_translation(ds: FaceDataset) -> tuple[str, str]:
    """``(source, target)``: the rarest training class is the target; the source is
    ``neutral`` (a face without expression), or the largest class when neutral is the target
    or absent."""
    counts = ds.class_counts("train")
    target = min(counts, key=counts.get)
    others = {c: n for c, n in counts.items() if c != target}
    source = "neutral" if "neutral" in others else max(others, key=others.get)
    return source, target


def run_gan_step(ds: FaceDataset, out_dir: Path, seed: int, quick: bool = False,
                 timer: object | None = None, guide: Path | None = None) -> GanStep:
    """Train the demo generator into ``out_dir/gan`` (guided by the classifier ``guide``
    when given) and write ``out_dir/synthetic``.

    ``timer(name)``, when given, is a context manager factory that times each of the two
    stages (``gan_training``, ``synthesis``).
    """
    import contextlib

    from feraug.gan import build_generator
    from feraug.gan.trainer import train_generator
    from feraug.synth.build import build_synthetic_set
    from feraug.synth.plan import make_plan

    spec = gan_plan(quick)
    source, target = pick_translation(ds)
    config = {**spec["config"], "source": source, "target": target, "seed": seed,
              "guide": None if guide is None else str(guide)}
    stage = timer if callable(timer) else (lambda name: contextlib.nullcontext())
    with stage("gan_training"):
        model = build_generator(spec["model"], config, ds.classes, ds.size, source="demo")
        run = train_generator(model, ds, out_dir / "gan", device="cpu" if quick else "auto",
                              sample_every=spec["sample_every"], checkpoint_every=0,
                              log_every=spec["log_every"],
                              meta={"data": "procedural (feraug demo)"},
                              progress=not os.environ.get("FERAUG_QUIET"))
    with stage("synthesis"):
        # Quick mode's untrained editor returns near-copies of its sources, which the guard
        # would drop; keep them there so every later stage still runs.
        plan = make_plan(**{**SYNTH_PLAN, "delta": 0.0 if quick else SYNTH_PLAN["delta"]},
                         emotions=[target], seed=seed)
        manifest = build_synthetic_set(model, ds, plan, out_dir / "synthetic",
                                       generator_checkpoint=run.checkpoint, device=model.device)
    return GanStep(spec["model"], source, target, config, run.out_dir, run.checkpoint,
                   run.steps, run.losses, out_dir / "synthetic", manifest)


def score_step(step: GanStep, ds: FaceDataset, judge: Path, out: Path) -> dict:
    """``feraug gan score`` of the demo generator with the independent ``judge``."""
    from feraug.scoring import score_generator

    return score_generator(step.checkpoint, ds, judge, n=SCORE_SAMPLES, out=out)


def _read_png(path: Path) -> torch.Tensor:
    return torch.from_numpy(decode_file(path, cv2.IMREAD_GRAYSCALE))[None]


def generated_examples(step: GanStep, ds: FaceDataset, k: int = GRID_COLUMNS
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``k`` kept synthetic faces and the real source face each was made from."""
    index = {sid: i for i, sid in enumerate(ds.source_ids)}
    records = step.manifest["files"][:k]
    generated = [_read_png(step.synthetic_dir / r["file"]) for r in records]
    sources = [ds.images[index[r["source"]]] for r in records if r.get("source") in index]
    empty = torch.zeros(0, 1, ds.size, ds.size, dtype=torch.uint8)
    return (torch.stack(generated) if generated else empty,
            torch.stack(sources) if sources else empty)


def save_generated_grid(step: GanStep, ds: FaceDataset, path: Path, k: int = GRID_COLUMNS,
                        seed: int = 0) -> Path:
    """A labelled PNG: real training faces of the target class, the real source faces, and
    the generated faces made from those sources (column by column)."""
    from feraug.report import save_labelled_grid

    generated, sources = generated_examples(step, ds, k)
    gen = torch.Generator().manual_seed(seed)
    train = ds.indices("train")
    real = train[ds.labels[train] == ds.classes.index(step.target)]
    real = ds.images[real[torch.randperm(len(real), generator=gen)[:k]]]
    rows = [(f"real {step.target}", real), (f"{step.source} (source)", sources),
            (f"generated {step.target}", generated)]
    return save_labelled_grid(rows, path, f"{step.model_name} {step.source} -> {step.target}, "
                              f"{step.steps} steps", columns=k)


def classifier_view(loaded: object, synthetic_dir: Path, ds: FaceDataset, target: str) -> dict:
    """How the real-only classifier labels the generated faces: the share predicted as each
    class, and the share predicted as ``target`` (a rough check that they show the emotion)."""
    from feraug.data.synthetic import load_synthetic
    from feraug.training.inputs import predict_proba

    synth = load_synthetic(synthetic_dir, ds.classes, ds.size)
    probs = predict_proba(loaded.model, synth.images, loaded.crop_size, loaded.tta)
    pred = probs.argmax(1)
    share = {c: float((pred == loaded.classes.index(c)).float().mean()) for c in loaded.classes}
    return {"n": len(synth), "predicted_share": share, "target_share": share.get(target, 0.0)}


def skipped_section(step: GanStep) -> tuple[str, str]:
    """Report section for a generator step whose synthetic set came out empty."""
    t = step.manifest["totals"]
    return ("Generator step", f"`{step.model_name}` {step.source} -> {step.target}, "
            f"{step.steps} steps: {t['requested']} synthetic images requested, none kept "
            f"({t['dropped_memorisation']} dropped by the memorisation guard), so the "
            "classifier was not trained again.")


def comparison_sections(out_dir: Path, rows: list[dict], step: GanStep, view: dict,
                        grid: Path, quick: bool, score: dict) -> list[tuple[str, str]]:
    """Report sections: the generator step, and both classifiers side by side."""
    base, aug = rows
    t = step.target
    real_test = base["test_support"].get(t)
    m = step.manifest
    counts = m["counts"].get(t, {})
    gen_text = (
        f"`{step.model_name}` translating real **{step.source}** training faces into "
        f"**{t}** (the rarest training class), {step.steps} steps, config "
        f"`{_compact(step.config)}`, trained on the train split only "
        f"(run folder `{rel_path(step.run_dir, out_dir)}`, sample grids in its `samples/`).\n\n"
        f"Synthetic set `{rel_path(step.synthetic_dir, out_dir)}` (plan: balance {t} up to the "
        f"largest training class, memorisation guard RMS >= {SYNTH_PLAN['delta']}): "
        f"{m['totals']['requested']} requested, {m['totals']['kept']} kept, "
        f"{m['totals']['dropped_memorisation']} dropped as near-copies of real training faces; "
        f"mean RMS distance to the nearest real training face "
        f"{fmt(counts.get('nearest_real_rms_mean'))}. Its `manifest.json` lists every file, "
        "its source face and seed.\n\n" + image_md(grid, "generated faces", out_dir)
        + f"\n\nTop row: real {t} training faces. Middle: real {step.source} training faces. "
        f"Bottom: what the generator made of the face above it.\n\n"
        f"The real-only classifier labels **{fmt(view['target_share'])}** of the "
        f"{view['n']} generated faces as {t}; " + ", ".join(
            f"{c} {fmt(s)}" for c, s in sorted(view["predicted_share"].items(),
                                               key=lambda kv: -kv[1]) if s > 0)
        + ".\n\n" + score_section(score, out_dir) + "\n\n" + quality_note(step, score, quick))
    table = markdown_table(
        ["", "real only", "real + synthetic", "change"],
        [["train images (synthetic)", f"{base['train_images']} ({base['synthetic_images']})",
          f"{aug['train_images']} ({aug['synthetic_images']})", "—"],
         ["test accuracy", base["test_accuracy"], aug["test_accuracy"],
          _delta(base["test_accuracy"], aug["test_accuracy"])],
         ["test macro-F1", base["test_macro_f1"], aug["test_macro_f1"],
          _delta(base["test_macro_f1"], aug["test_macro_f1"])],
         *[[f"recall {c}" + (" (target)" if c == t else ""), base["test_recall"][c],
            aug["test_recall"][c], _delta(base["test_recall"][c], aug["test_recall"][c])]
           for c in base["test_recall"]],
         ["best validation accuracy", base["best_val_accuracy"], aug["best_val_accuracy"],
          _delta(base["best_val_accuracy"], aug["best_val_accuracy"])]])
    compare = (
        "The same classifier (`zhu-cnn`), seed, epochs and model selection on validation, "
        "trained once on the real training split and once with the synthetic folder added "
        "to the training split only (validation and test hold no generated image); both "
        "scored on the same test split.\n\n" + table
        + f"\n\nThe test split holds only {real_test} {t} images, so one image changes {t} "
        f"recall by {fmt(1 / real_test if real_test else None)}.\n\n" + HONEST_NOTE
        + "\n\nConfusion matrices: " + image_md(out_dir / "test" / "confusion.png",
                                                "real only", out_dir)
        + " " + image_md(out_dir / "test_synthetic" / "confusion.png", "real + synthetic",
                         out_dir))
    return [("Generator step", gen_text), ("Real only vs. real + synthetic", compare)]


HONEST_NOTE = (
    "**Read this as a demonstration of the pipeline, not as evidence.** It is one seed, one "
    "small generator trained for about a minute, and procedural cartoon faces; a difference "
    "of a few points here is within what another seed gives, and nothing here says whether "
    "GAN augmentation helps on real faces. To measure it, run `feraug experiment` (several "
    "seeds, confidence intervals, paired differences, strong non-GAN baselines such as "
    "class-weighted loss and balanced sampling) on FER2013, CK+ or JAFFE.")


def score_section(score: dict, out_dir: Path) -> str:
    """The scorer's table with what it means."""
    from feraug.scoring.report import score_table

    files = score.get("files", {})
    return ("**Scored by an independent judge** (`feraug gan score`): a class-balanced "
            "classifier of another architecture, trained on the same real train faces, that "
            "never trained, guided or filtered the generator (the generator's guide is a "
            "different network). Agreement is the share of generated faces the judge calls "
            "the target emotion, beside the judge's recall on real test faces of it; KID "
            "(in the judge's features, against real test faces) compares the generated "
            "faces, their untouched sources and real train faces (the floor).\n\n"
            + score_table(score) + "\n\n"
            + (image_md(Path(files["best_worst"]), "best and worst samples", out_dir) + " "
               + image_md(Path(files["nearest_real"]), "nearest real faces", out_dir)
               if files else ""))


def quality_note(step: GanStep, score: dict, quick: bool) -> str:
    """A plain statement of what the generated faces are, for the report."""
    if quick:
        return (f"*Quick mode: the generator ran {step.steps} steps of a tiny network, so the "
                "generated images are noise by design; they only exercise the pipeline.*")
    row = score["emotions"].get(step.target, {})
    agreement = row.get("agreement")
    verdict = ("most of them show it to a classifier that never saw the generator"
               if (agreement or 0) >= 0.5 else
               "most of them do **not** show it to a classifier that never saw the generator")
    return (f"Look at the figure before trusting any number: the generator edits the "
            f"{step.source} source faces through a mask (mouth, brows, nose) and keeps the "
            f"rest of each face; the judge calls {fmt(agreement)} of them {step.target}, so "
            f"{verdict}. These are cartoon faces: recognisable edits here say little about "
            "how the same design does on real photographs (see docs/results.md for FER2013).")


def _delta(a: float | None, b: float | None) -> str:
    return "—" if a is None or b is None else f"{b - a:+.3f}"


def _compact(config: dict) -> str:
    keep = ("steps", "batch_size", "ngf", "n_blocks", "ndf", "lr")
    return ", ".join(f"{k}={config[k]}" for k in keep if k in config)


def rel_path(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` (POSIX form) when inside it, else as given."""
    try:
        return Path(path).resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)
