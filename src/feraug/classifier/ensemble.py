"""Assembling an ensemble checkpoint from independently trained classifiers.

Members must agree on everything that decides how a face becomes a prediction (classes and
their order, image size, crop, test-time augmentation) and must have been trained on the
same data (same data fingerprint), so the ensemble is still scored on splits none of its
members saw in training. The result is an ordinary feraug checkpoint (model ``ensemble``):
``evaluate``, ``adjust``, ``predict`` and ``export`` take it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from feraug.errors import CheckpointError, ConfigError
from feraug.models.checkpoint import (
    LoadedClassifier,
    half_weights,
    load_classifier,
    save_checkpoint,
)
from feraug.models.ensemble import Ensemble

#: What every member must share, as (checkpoint key, what it means to a user).
_MUST_AGREE = (("classes", "classes"), ("image_size", "image size"), ("crop_size", "crop"),
               ("tta", "test-time augmentation"),
               ("data_fingerprint", "data set (pixel fingerprint)"))


#: Training-config keys that decide how the data set was split (copied into the ensemble's
#: config so that it records the split its first member was trained on).
_SPLIT_KEYS = ("data", "format", "image_size", "class_map", "folds", "fold", "seed",
               "data_seed")


def _check_members(paths: Sequence[Path], members: Sequence[LoadedClassifier]) -> None:
    for path, member in zip(paths, members, strict=True):
        if member.model_name == "ensemble":
            raise CheckpointError(f"{path}: is already an ensemble; list its members instead")
    first = members[0].meta
    for path, member in zip(paths[1:], members[1:], strict=True):
        mine, theirs = member.meta.get("split_fingerprint"), first.get("split_fingerprint")
        if mine and theirs and mine != theirs:
            raise CheckpointError(
                f"{path}: was trained on another split of the data than {paths[0]} (split "
                "fingerprints differ; on data sets without official splits give every member "
                "the same --data-seed); one member's training faces would be in another's "
                "test split")
        for key, what in _MUST_AGREE:
            if member.meta.get(key) != first.get(key):
                raise CheckpointError(
                    f"{path}: {what} differs from {paths[0]} "
                    f"({member.meta.get(key)!r} vs {first.get(key)!r}); ensemble members "
                    "must be trained on the same data with the same inputs")


def _member_record(path: Path, member: LoadedClassifier) -> dict:
    meta = member.meta
    return {"source": str(path), "model_name": member.model_name,
            "seed": (meta.get("config") or {}).get("seed"),
            "val_metrics": meta.get("val_metrics"),
            "logit_adjustment_tau": (meta.get("logit_adjustment") or {}).get("tau")}


def assemble_ensemble(checkpoints: Sequence[str | Path], out: str | Path,
                      half: bool = False) -> dict:
    """Write an ensemble of ``checkpoints`` to ``out`` (which must not exist).

    ``half`` stores the weights as float16 (half the file). Returns ``{"out", "members",
    "parameters"}``.
    """
    paths = [Path(p) for p in checkpoints]
    if len(paths) < 2:
        raise ConfigError("an ensemble needs at least two checkpoints")
    if len({p.resolve() for p in paths}) != len(paths):
        raise ConfigError("the same checkpoint is listed twice; members must be distinct runs")
    out = Path(out)
    if out.exists():
        raise CheckpointError(f"{out}: already exists; choose a new file name")
    members = [load_classifier(p, "cpu") for p in paths]
    _check_members(paths, members)
    first = members[0]
    model = Ensemble([m.model for m in members], len(first.classes))
    weights = model.state_dict()
    meta = {"model_name": "ensemble",
            "model_kwargs": {"members": [m.model_name for m in members]},
            "classes": list(first.classes), "image_size": first.image_size,
            "crop_size": first.crop_size, "tta": first.tta,
            "data_fingerprint": first.meta.get("data_fingerprint"),
            "split_fingerprint": first.meta.get("split_fingerprint"),
            "data_content": first.meta.get("data_content"),
            "config": {**{k: (first.meta.get("config") or {}).get(k) for k in _SPLIT_KEYS},
                       "ensemble_of": [str(p) for p in paths]},
            "members": [_member_record(p, m) for p, m in zip(paths, members, strict=True)],
            "step": 0}
    if half:
        weights = half_weights(weights)
        meta["weights_dtype"] = "float16"
    save_checkpoint(out, {**meta, "model": weights})
    return {"out": str(out), "members": [str(p) for p in paths],
            "parameters": sum(p.numel() for p in model.parameters())}
