"""feraug: GAN-based data augmentation for facial expression recognition, measured fairly.

The Python API mirrors the CLI::

    import feraug
    ds = feraug.load_dataset("path/to/fer2013")             # feraug data info
    cfg = feraug.build_train_config({"data": "path/to/fer2013", "out": "runs/x"})
    result = feraug.fit(cfg)                                  # feraug train
    model = feraug.load_classifier(result.best_checkpoint)
    metrics = feraug.evaluate_classifier(model, ds, "test")   # feraug evaluate
    feraug.adjust_logits(result.best_checkpoint, ds, "adj.pt")  # feraug adjust
    feraug.assemble_ensemble(["s1/best.pt", "s2/best.pt"], "ens.pt")  # feraug ensemble
    feraug.compare_classifiers(model, feraug.load_classifier("ens.pt"), ds)  # feraug compare
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = {
    "load_dataset": "feraug.data.load",
    "FaceDataset": "feraug.data.dataset",
    "EMOTIONS": "feraug.emotions",
    "TrainConfig": "feraug.classifier.config",
    "build_train_config": "feraug.classifier.config",
    "fit": "feraug.classifier.trainer",
    "load_classifier": "feraug.models.checkpoint",
    "evaluate_classifier": "feraug.classifier.evaluate",
    "compare_classifiers": "feraug.classifier.evaluate",
    "assemble_ensemble": "feraug.classifier.ensemble",
    "adjust_logits": "feraug.classifier.logit_adjust",
    "predict": "feraug.predict",
    "run_demo": "feraug.demo",
}

__all__ = [*_API, "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from feraug.data.dataset import FaceDataset  # noqa: F401
    from feraug.data.load import load_dataset  # noqa: F401


def __getattr__(name: str) -> Any:
    """Import API members lazily so ``import feraug`` stays fast."""
    if name in _API:
        from importlib import import_module

        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'feraug' has no attribute {name!r}")
