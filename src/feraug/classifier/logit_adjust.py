"""Post-hoc logit adjustment (Menon et al., ICLR 2021): a cheap non-GAN remedy for imbalance.

A classifier trained with plain cross-entropy on imbalanced data under-predicts rare classes.
Subtracting ``tau * log(prior)`` from its logits, with ``prior`` the class frequencies of the
*training* split, shifts decisions towards rare classes. ``tau`` is chosen on the
*validation* split (macro-F1 by default); the test split is never looked at. The shift is
folded into the bias of the model's final linear layer, so the adjusted checkpoint is an
ordinary feraug checkpoint that every command (evaluate, predict, export) uses unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from feraug.classifier.evaluate import align_labels, check_same_split
from feraug.classifier.infer import average_views, check_tta, view_logits
from feraug.classifier.metrics import classification_metrics
from feraug.classifier.setup import last_linear
from feraug.data.dataset import FaceDataset
from feraug.errors import CheckpointError, ConfigError, DataError
from feraug.models.checkpoint import (
    LoadedClassifier,
    half_weights,
    load_classifier,
    save_checkpoint,
)
from feraug.progress import progress_bar

DEFAULT_TAUS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def parse_taus(text: str) -> tuple[float, ...]:
    """``"0,0.5,1"`` -> ``(0.0, 0.5, 1.0)``, with one clear error for anything else."""
    try:
        taus = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--taus must be comma-separated numbers, not {text!r}") from None
    if not taus:
        raise ConfigError("--taus is empty")
    return taus


def adjustable_head(model: nn.Module, num_classes: int) -> tuple[str, nn.Linear]:
    """Name and module of the classifier head, which must have ``num_classes`` outputs and a
    bias."""
    name, head = last_linear(model)
    if head.out_features != num_classes or head.bias is None:
        raise CheckpointError(f"model's final linear layer {name!r} is not a {num_classes}-way "
                              "head with a bias; nothing to adjust")
    return name, head


def log_prior(dataset: FaceDataset, classes: tuple[str, ...]) -> torch.Tensor:
    """log of the training-split class frequencies, in ``classes`` order."""
    counts = dataset.class_counts("train")
    n = torch.tensor([float(counts.get(c, 0)) for c in classes])
    if (n == 0).any():
        empty = [c for c, k in zip(classes, n.tolist(), strict=True) if k == 0]
        raise DataError(f"{dataset.root}: no training images of {', '.join(empty)}; "
                        "cannot estimate the class prior")
    return (n / n.sum()).log()


def adjust_logits(checkpoint: str | Path | LoadedClassifier, dataset: FaceDataset,
                  out: str | Path, taus: tuple[float, ...] = DEFAULT_TAUS,
                  metric: str = "macro_f1", source: str | None = None,
                  half: bool = False, tta: str | None = None) -> dict:
    """Choose ``tau`` on ``dataset``'s val split and write the adjusted checkpoint to ``out``.

    ``checkpoint`` is a checkpoint path or an already loaded classifier (then ``source``
    names where it came from, for the record in the new checkpoint). Returns
    ``{"tau", "metric", "val": {tau: {"accuracy", "macro_f1"}}, "out"}``. ``out`` must not
    exist (a user's file is never overwritten). ``half`` stores the floating-point weights as
    float16 (half the file, for shipping; loading casts them back to float32, which moves
    probabilities by about 1e-3, so score the written file, not the original). ``tta``
    (none, flip or tencrop; default: the model's) is the test-time augmentation tau is chosen
    with, and the one the new checkpoint uses.
    """
    if metric not in ("macro_f1", "accuracy"):
        raise ConfigError(f"metric must be macro_f1 or accuracy, not {metric!r}")
    if tta is not None:
        check_tta(tta)
    out = Path(out)
    if out.exists():
        raise CheckpointError(f"{out}: already exists; choose a new file name")
    loaded = checkpoint if isinstance(checkpoint, LoadedClassifier) \
        else load_classifier(checkpoint, "cpu")
    check_same_split(loaded, dataset)
    tta = tta or loaded.tta
    if tta == "tencrop" and not (loaded.crop_size and loaded.crop_size < loaded.image_size):
        raise ConfigError(f"tta tencrop needs a model trained on crops smaller than the image; "
                          f"{source or checkpoint} has crop_size {loaded.crop_size} at "
                          f"{loaded.image_size} px")
    name, head = adjustable_head(loaded.model, len(loaded.classes))
    bias0 = head.bias.detach().clone()
    shift = log_prior(dataset, loaded.classes)
    val = dataset.subset("val")
    if len(val) == 0:
        raise DataError(f"{dataset.root}: no validation images to choose tau on")
    if val.size != loaded.image_size:
        raise DataError(f"{dataset.root}: images are {val.size} px, the model expects "
                        f"{loaded.image_size} px")
    y = align_labels(val, loaded.classes).numpy()
    scores: dict[float, dict] = {}
    show = not os.environ.get("FERAUG_QUIET")
    # The bias shift moves every view's logits by the same -tau * shift, so one pass through
    # the network scores every tau.
    logits = view_logits(loaded.model, val.images, loaded.crop_size, tta)
    for tau in progress_bar(taus, desc="choosing tau on val", enabled=show, leave=False):
        pred = average_views(logits - tau * shift).argmax(1)
        m = classification_metrics(y, pred.numpy(), loaded.classes)
        scores[tau] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
    best = max(taus, key=lambda t: (scores[t][metric], -t))
    with torch.no_grad():
        head.bias.copy_(bias0 - best * shift)
    if not isinstance(checkpoint, LoadedClassifier):
        source = str(checkpoint)
    meta = {k: v for k, v in loaded.meta.items() if k not in ("format", "weights_dtype")}
    meta["tta"] = tta
    meta["logit_adjustment"] = {"tau": best, "log_prior": shift.tolist(), "metric": metric,
                                "chosen_on": "val", "source_checkpoint": source,
                                "tta": tta, "source_tta": loaded.tta,
                                "val_scores": {str(t): s for t, s in scores.items()}}
    weights = loaded.model.state_dict()
    if half:
        weights = half_weights(weights)
        meta["weights_dtype"] = "float16"
    save_checkpoint(out, {**meta, "model": weights})
    return {"tau": best, "metric": metric, "val": scores, "out": str(out)}
