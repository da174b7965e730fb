"""The reverse test: how much a generator's faces teach a classifier about *real* faces.

The judge's agreement (the forward test) asks whether generated faces look like their emotion
to a classifier of real faces. It can be high for faces that teach nothing useful: edits that
draw an emotion with a cue real faces rarely use (a closed-mouth "disgust") are recognised, yet
a classifier trained on them learns the cue and misses real faces. The reverse test measures
that directly ("classification accuracy score", Ravuri & Vinyals 2019), per emotion:

- a classifier is trained from scratch on ``n`` faces per class, where every class the
  generator makes is its generated faces and every other class is real train faces;
- the same recipe is trained on ``n`` real train faces per class (the reference);
- both are tested on real faces of the reference split. Per emotion the generator makes, how
  well each classifier tells real faces of it from all other real faces is the one-vs-rest
  ROC AUC of its probability for that emotion; the **reverse ratio** is the first's AUC above
  chance over the second's, ``(AUC_gen - 0.5) / (AUC_real - 0.5)`` (1.0: generated faces
  teach the emotion as well as as many real faces do; 0: nothing). AUC, not recall or F1:
  recall rewards a classifier taught to call too many faces an emotion, and F1 on an
  imbalanced test split mixes in its class prior; AUC depends on neither. Recall and F1 are
  reported beside it.

Both classifiers train for a fixed number of epochs on a cosine schedule and are used as they
end: nothing is chosen on the reference faces. Per class ``n`` is capped by the real train
count of that class, in both sets, so that they differ only in where the faces come from.

The real classifier is the same for every generator scored on the same data with the same
settings, so its metrics are kept in the data cache (``$FERAUG_CACHE/reverse``), keyed by
every input of its training (faces, labels, recipe, seed, device type, torch version).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from feraug.classifier.config import build_train_config
from feraug.classifier.infer import predict_proba
from feraug.classifier.metrics import classification_metrics
from feraug.data.dataset import FaceDataset, concat
from feraug.scoring.score import real_train_sample

REVERSE_DEFAULTS = {"model": "zhu-cnn", "epochs": 30}
#: Part of every cache key of the real classifier: raise it when its training changes.
CACHE_VERSION = 2


def per_class_counts(train: FaceDataset, n: int) -> dict[str, int]:
    """Faces per class in both training sets: ``n``, or fewer where the real train split has
    fewer faces of that class."""
    counts = train.class_counts()
    return {c: min(n, counts[c]) for c in train.classes}


def training_set(train: FaceDataset, generated: dict[str, torch.Tensor], n: int,
                 seed: int) -> FaceDataset:
    """The train split of one reverse-test classifier: for each class, the first
    ``per_class_counts`` faces of ``generated[class]`` when the generator makes the class,
    otherwise a seeded sample of real train faces. ``generated={}`` gives the real reference."""
    images, labels, sources, synthetic = [], [], [], []
    for k, (emotion, count) in enumerate(per_class_counts(train, n).items()):
        faces = generated[emotion][:count] if emotion in generated \
            else real_train_sample(train, k, count, seed)
        images.append(faces)
        labels.append(torch.full((len(faces),), k, dtype=torch.int64))
        kind = "generated" if emotion in generated else "real"
        sources += [f"{kind}:{emotion}:{i}" for i in range(len(faces))]
        synthetic.append(torch.full((len(faces),), emotion in generated))
    return FaceDataset(images=torch.cat(images), labels=torch.cat(labels), classes=train.classes,
                       split=["train"] * len(sources), source_ids=sources,
                       synthetic=torch.cat(synthetic), format="reverse-test", root=train.root)


def _train_and_test(train_set: FaceDataset, val: FaceDataset, reference: FaceDataset,
                    model: str, epochs: int, seed: int, device: str, out: Path) -> dict:
    """Train one classifier on ``train_set`` (validation faces are logged, never used to
    choose) and return its metrics on ``reference`` with its last weights."""
    from feraug.classifier.trainer import fit

    config = build_train_config(
        {"model": model, "epochs": epochs, "seed": seed, "device": device,
         "scheduler": "cosine", "data": str(train_set.root), "out": str(out)},
        source="reverse test")
    ds = concat([train_set, val])
    result = fit(config, dataset=ds)
    probs = predict_proba(result.model.eval(), reference.images, config.crop_size, config.tta)
    labels = reference.labels.numpy()
    metrics = classification_metrics(labels, probs.argmax(1).numpy(), reference.classes)
    metrics.pop("confusion_matrix")
    metrics["auc"] = one_vs_rest_auc(labels, probs.double().numpy(), reference.classes)
    metrics["train_images"] = len(train_set)
    return metrics


def one_vs_rest_auc(labels: np.ndarray, probs: np.ndarray,
                    classes: tuple[str, ...]) -> dict[str, float | None]:
    """Per class, the ROC AUC of its probability for telling faces of it from all others
    (None where the faces hold only one side)."""
    from sklearn.metrics import roc_auc_score

    out: dict[str, float | None] = {}
    for k, name in enumerate(classes):
        positive = labels == k
        out[name] = float(roc_auc_score(positive, probs[:, k])) \
            if 0 < positive.sum() < len(labels) else None
    return out


def above_chance_ratio(auc_generated: float | None, auc_real: float | None) -> float | None:
    """``(AUC_gen - 0.5) / (AUC_real - 0.5)``; None when either is missing or real faces
    teach nothing (AUC at or below chance)."""
    if auc_generated is None or auc_real is None or auc_real <= 0.5:
        return None
    return (auc_generated - 0.5) / (auc_real - 0.5)


def _real_arm_key(parts: list[FaceDataset], model: str, epochs: int, seed: int,
                  device: str) -> str:
    digest = hashlib.sha256(repr((CACHE_VERSION, model, epochs, seed, torch.device(device).type,
                                  torch.__version__)).encode())
    for ds in parts:
        digest.update(ds.images.contiguous().numpy().tobytes())
        digest.update(ds.labels.numpy().tobytes())
        digest.update(repr(ds.classes).encode())
    return digest.hexdigest()


def _cached_real_arm(train_set: FaceDataset, val: FaceDataset, reference: FaceDataset,
                     model: str, epochs: int, seed: int, device: str, out: Path) -> dict:
    """The real classifier's metrics, from the cache or trained (and then cached)."""
    from feraug.data.load import cache_dir
    from feraug.io import write_json

    key = _real_arm_key([train_set, val, reference], model, epochs, seed, device)
    path = cache_dir() / "reverse" / f"{key}.json"
    if path.is_file():
        try:
            return {**json.loads(path.read_text()), "cached": str(path)}
        except (OSError, json.JSONDecodeError):
            pass  # a damaged entry is trained again and replaced
    metrics = _train_and_test(train_set, val, reference, model, epochs, seed, device, out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(metrics, path)
    except OSError:
        pass  # a cache that cannot be written only costs time
    return metrics


def reverse_score(train: FaceDataset, val: FaceDataset, reference: FaceDataset,
                  generated: dict[str, torch.Tensor], n: int, seed: int = 0,
                  model: str = REVERSE_DEFAULTS["model"],
                  epochs: int = REVERSE_DEFAULTS["epochs"], device: str = "cpu",
                  out: str | Path | None = None, skip: frozenset[str] = frozenset()) -> dict:
    """The reverse test of one generator's faces (see the module docstring).

    ``generated`` maps each emotion the generator makes to at least ``n`` of its faces;
    ``val`` is logged during training only; ``reference`` (real val faces to choose between
    generators, real test faces for a final report) scores both classifiers. With ``out``
    the two training runs are kept in ``out/generated`` and ``out/real`` (the latter only
    when the real classifier's metrics were not in the cache). ``skip`` names
    emotions left out of the mean ratio (a translator's source emotion)."""
    with tempfile.TemporaryDirectory(prefix="feraug-reverse-") as tmp:
        base = Path(out) if out is not None else Path(tmp)
        arms = {"generated": _train_and_test(training_set(train, generated, n, seed), val,
                                             reference, model, epochs, seed, device,
                                             base / "generated"),
                "real": _cached_real_arm(training_set(train, {}, n, seed), val, reference,
                                         model, epochs, seed, device, base / "real")}
    emotions = {}
    for emotion in generated:
        gen, real = (arms[a]["per_class"][emotion] for a in ("generated", "real"))
        auc_gen, auc_real = (arms[a]["auc"][emotion] for a in ("generated", "real"))
        emotions[emotion] = {"auc_generated": auc_gen, "auc_real": auc_real,
                             "ratio": above_chance_ratio(auc_gen, auc_real),
                             "recall_generated": gen["recall"], "recall_real": real["recall"],
                             "f1_generated": gen["f1"], "f1_real": real["f1"]}
    ratios = [r["ratio"] for e, r in emotions.items() if r["ratio"] is not None
              and e not in skip]
    return {"model": model, "epochs": epochs, "seed": seed,
            "per_class_train": per_class_counts(train, n),
            "real_from_cache": arms["real"].get("cached"),
            "accuracy": {name: arm["accuracy"] for name, arm in arms.items()},
            "macro_f1": {name: arm["macro_f1"] for name, arm in arms.items()},
            "per_class": {name: arm["per_class"] for name, arm in arms.items()},
            "auc": {name: arm["auc"] for name, arm in arms.items()},
            "emotions": emotions,
            "mean_ratio": sum(ratios) / len(ratios) if ratios else None}
