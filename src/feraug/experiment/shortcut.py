"""The shortcut check of an experiment report: does a GAN arm's classifier recognise *new*
edits of a translator far more often than real faces of the same emotion? If so, it learned
the edits' own pattern rather than the expression (measured on FER2013: 98% of new StarGAN
disgust edits called disgust, 5% of real disgust faces).

New edits are made from the *validation* split's faces of the translator's source emotion:
neither the generator nor any classifier trained on them, and the test split is not touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from feraug.data.dataset import FaceDataset
from feraug.experiment.config import ExperimentConfig, run_dir
from feraug.reporting.markdown import markdown_table

if TYPE_CHECKING:
    from feraug.models.checkpoint import LoadedClassifier

#: validation faces of the source emotion edited per emotion (seconds on a CPU)
EDITS = 200


def share_called(model: LoadedClassifier, faces: torch.Tensor, emotion: str) -> float:
    """The share of ``faces`` that ``model`` (flip TTA) assigns to ``emotion``."""
    from feraug.classifier.infer import predict_proba

    probs = predict_proba(model.model, faces, model.crop_size, "flip")
    return float((probs.argmax(1) == model.classes.index(emotion)).float().mean())


def shortcut_rows(cfg: ExperimentConfig, results: dict, real: FaceDataset) -> list[list[str]]:
    """One row per (GAN arm, emotion) whose synthetic set comes from a translator: the share
    of new edits each finished seed's model calls that emotion (mean over seeds) beside the
    arm's mean test recall on real faces of it."""
    from feraug.experiment.stages import generator_checkpoint
    from feraug.gan import load_generator
    from feraug.models.checkpoint import load_classifier

    val = real.subset("val")
    sets = {s.name: s for s in cfg.synthetic}
    rows: list[list[str]] = []
    for arm in cfg.arms:
        record = results["arms"].get(arm.name) or {}
        seeds = record.get("seeds") or []
        specs = [sets[name] for name in arm.synthetic if name in sets]
        if not seeds or not specs:
            continue
        models = [load_classifier(run_dir(Path(cfg.out), arm.name, s) / "best.pt", "cpu")
                  for s in seeds]
        for spec in specs:
            ckpt = generator_checkpoint(cfg, spec.generator)
            if not ckpt.is_file():  # a reused generator moved away: nothing to edit with
                continue
            gen = load_generator(ckpt, "cpu")
            if not gen.needs_sources or gen.source_emotion not in val.classes:
                continue
            sources = val.images[val.labels == val.classes.index(gen.source_emotion)][:EDITS]
            if len(sources) == 0:
                continue
            emotions = spec.plan.get("emotions") or [e for e in gen.emotions()
                                                     if e != gen.source_emotion]
            for emotion in emotions:
                if emotion not in val.classes:
                    continue
                faces = gen.sample(emotion, len(sources), cfg.seeds[0], sources)
                called = [share_called(m, faces, emotion) for m in models]
                recall = (record.get("recall") or {}).get(emotion, {}).get("mean")
                rows.append([arm.name, spec.name, emotion, f"{sum(called) / len(called):.2f}",
                             "—" if recall is None else f"{recall:.2f}"])
    return rows


def shortcut_section(cfg: ExperimentConfig, results: dict, real: FaceDataset | None) -> str | None:
    """The report section, or None when no GAN arm trained on a translator's faces."""
    if real is None or not any(s for a in cfg.arms for s in a.synthetic):
        return None
    with torch.no_grad():
        rows = shortcut_rows(cfg, results, real)
    if not rows:
        return None
    return ("Each GAN arm's models (mean over its seeds) on new edits of validation faces "
            f"({EDITS} per emotion at most; no generator or classifier saw them), beside the "
            "arm's recall on real test faces of the emotion. Edits recognised far more often "
            "than real faces mean the classifier learned the edits' own pattern, not the "
            "expression: a shortcut that helps no real face.\n\n"
            + markdown_table(["arm", "synthetic set", "emotion", "new edits called it",
                              "real test recall"], rows))
