"""Evaluating a trained classifier on one split of a data set."""

from __future__ import annotations

from pathlib import Path

import torch

from feraug.data.dataset import FaceDataset
from feraug.errors import DataError
from feraug.io import write_json
from feraug.training.checkpoint import LoadedClassifier
from feraug.training.inputs import predict_proba
from feraug.training.metrics import classification_metrics, plot_confusion


def align_labels(dataset: FaceDataset, classes: tuple[str, ...]) -> torch.Tensor:
    """The data set's labels re-indexed into the model's class order.

    A data set class the model does not know is a DataError (it cannot be scored honestly).
    """
    unknown = [c for c in dataset.classes if c not in classes]
    if unknown:
        raise DataError(f"{dataset.root}: classes {unknown} are not among the model's {classes}")
    remap = torch.tensor([classes.index(c) for c in dataset.classes])
    return remap[dataset.labels]


def evaluate_classifier(loaded: LoadedClassifier, dataset: FaceDataset, split: str = "test",
                        out_dir: Path | None = None, tta: str | None = None) -> dict:
    """Metrics of ``loaded`` on ``split`` of ``dataset``; writes metrics.json and confusion.png
    into ``out_dir`` when given."""
    part = dataset.subset(split)
    if part.size != loaded.image_size:
        raise DataError(f"{dataset.root}: images are {part.size} px, the model expects "
                        f"{loaded.image_size} px (load the data with --size {loaded.image_size})")
    y_true = align_labels(part, loaded.classes)
    probs = predict_proba(loaded.model, part.images, loaded.crop_size, tta or loaded.tta)
    metrics = classification_metrics(y_true.numpy(), probs.argmax(1).numpy(), loaded.classes)
    metrics.update(split=split, tta=tta or loaded.tta, model=loaded.model_name,
                   data=dataset.root, data_fingerprint=dataset.fingerprint())
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_json(metrics, out_dir / "metrics.json")
        plot_confusion(metrics["confusion_matrix"], list(loaded.classes),
                       out_dir / "confusion.png",
                       title=f"{loaded.model_name} on {split}: acc {metrics['accuracy']:.3f}")
    return metrics
