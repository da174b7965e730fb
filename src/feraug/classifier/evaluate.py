"""Evaluating a trained classifier on one split of a data set."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from feraug.classifier.infer import predict_proba
from feraug.classifier.metrics import classification_metrics, plot_confusion
from feraug.data.dataset import FaceDataset
from feraug.errors import DataError
from feraug.io import atomic_write_bytes, write_json
from feraug.models.checkpoint import LoadedClassifier
from feraug.reporting.stats import bootstrap_ci, paired_bootstrap

#: Per-image labels, predictions and subjects of an evaluated split, beside metrics.json: what
#: a comparison that resamples whole subjects needs after the run.
PREDICTIONS = "predictions.npz"


def save_predictions(path: Path, y_true: np.ndarray, pred: np.ndarray,
                     subjects: Sequence[str] | None) -> None:
    """Write ``path`` (:data:`PREDICTIONS`): ``y_true`` and ``pred`` in the model's class
    order, and each image's subject (empty when the data set names none)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, y_true=np.asarray(y_true, dtype=np.int16),
                        pred=np.asarray(pred, dtype=np.int16),
                        subjects=np.asarray([] if subjects is None else subjects, dtype=str))
    atomic_write_bytes(buffer.getvalue(), path)


def load_predictions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """``(y_true, pred, subjects or None)`` from :func:`save_predictions`; None without one."""
    if not Path(path).is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        subjects = data["subjects"] if len(data["subjects"]) else None
        return data["y_true"].astype(np.int64), data["pred"].astype(np.int64), subjects


def align_labels(dataset: FaceDataset, classes: tuple[str, ...]) -> torch.Tensor:
    """The data set's labels re-indexed into the model's class order.

    A data set class the model does not know is a DataError (it cannot be scored honestly).
    """
    unknown = [c for c in dataset.classes if c not in classes]
    if unknown:
        raise DataError(f"{dataset.root}: classes {unknown} are not among the model's {classes}")
    remap = torch.tensor([classes.index(c) for c in dataset.classes])
    return remap[dataset.labels]


def check_same_split(loaded: LoadedClassifier, dataset: FaceDataset) -> None:
    """Refuse to score ``loaded`` on the data set it was trained on but split differently
    (another fold or split seed): its test split would hold training faces. Other data sets
    and checkpoints that predate the stored fingerprints pass."""
    if dataset.split_differs_from(loaded.meta.get("data_content"),
                                  loaded.meta.get("split_fingerprint")):
        cfg = loaded.meta.get("config") or {}
        raise DataError(
            f"{dataset.root}: split differently from the data this model was trained on "
            f"(it was trained with folds={cfg.get('folds')}, fold={cfg.get('fold')}, split seed "
            f"{cfg.get('data_seed') if cfg.get('data_seed') is not None else cfg.get('seed')}); "
            "its test split would contain training faces. Load the data with the training "
            "split (feraug evaluate/adjust/compare do when given the training data path)")


def _predict_split(loaded: LoadedClassifier, dataset: FaceDataset, part: FaceDataset,
                   tta: str | None = None) -> torch.Tensor:
    """Predicted class numbers (in ``loaded``'s class order) for the split ``part`` of
    ``dataset``, after the split and image-size checks."""
    check_same_split(loaded, dataset)
    if part.size != loaded.image_size:
        raise DataError(f"{dataset.root}: images are {part.size} px, the model expects "
                        f"{loaded.image_size} px (load the data with --size {loaded.image_size})")
    return predict_proba(loaded.model, part.images, loaded.crop_size, tta or loaded.tta).argmax(1)


def evaluate_classifier(loaded: LoadedClassifier, dataset: FaceDataset, split: str = "test",
                        out_dir: Path | None = None, tta: str | None = None,
                        predictions: Path | None = None) -> dict:
    """Metrics of ``loaded`` on ``split`` of ``dataset``, with percentile-bootstrap 95%
    intervals for accuracy and macro-F1 over the split's images, or over its subjects when
    the data set names them (``ci95``, a cluster bootstrap); writes metrics.json,
    confusion.png and the per-image predictions (:data:`PREDICTIONS`) into ``out_dir`` when
    given, and the predictions to ``predictions`` when that is given."""
    part = dataset.subset(split)
    pred = _predict_split(loaded, dataset, part, tta).numpy()
    y_true = align_labels(part, loaded.classes).numpy()
    metrics = classification_metrics(y_true, pred, loaded.classes)
    if len(y_true):
        metrics["ci95"] = bootstrap_ci(y_true, pred, len(loaded.classes), groups=part.subjects)
    metrics.update(split=split, tta=tta or loaded.tta, model=loaded.model_name,
                   data=dataset.root, data_fingerprint=dataset.fingerprint())
    if predictions is None and out_dir is not None:
        predictions = Path(out_dir) / PREDICTIONS
    if predictions is not None:
        save_predictions(Path(predictions), y_true, pred, part.subjects)
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_json(metrics, out_dir / "metrics.json")
        plot_confusion(metrics["confusion_matrix"], list(loaded.classes),
                       out_dir / "confusion.png",
                       title=f"{loaded.model_name} on {split}: acc {metrics['accuracy']:.3f}")
    return metrics


def compare_classifiers(a: LoadedClassifier, b: LoadedClassifier, dataset: FaceDataset,
                        split: str = "test") -> dict:
    """Paired bootstrap of A - B (accuracy, macro-F1) on the same images of ``split``
    (whole subjects resampled when the data set names them).

    Both models must know the same classes (in any order) and take the data set's image size.
    """
    if set(a.classes) != set(b.classes):
        raise DataError(f"the two models know different classes: {a.classes} vs {b.classes}")
    part = dataset.subset(split)
    if len(part) == 0:
        raise DataError(f"{dataset.root}: no {split} images to compare on")
    preds = []
    for loaded in (a, b):
        pred = _predict_split(loaded, dataset, part)
        to_a = torch.tensor([a.classes.index(c) for c in loaded.classes])
        preds.append(to_a[pred].numpy())
    y_true = align_labels(part, a.classes).numpy()
    result = paired_bootstrap(y_true, preds[0], preds[1], len(a.classes),
                              groups=part.subjects)
    result.update(split=split, num_images=len(part), data=dataset.root,
                  data_fingerprint=dataset.fingerprint())
    return result
