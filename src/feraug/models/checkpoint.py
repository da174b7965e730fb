"""Classifier checkpoints: atomic save, ``weights_only`` load, and rebuilding the stored model.

Training writes here everything needed to resume exactly (model, optimiser, scheduler, RNG
states, step counters). The module needs only the model registry and :mod:`feraug.io`, so it
sits with the networks: anything that loads a trained classifier (the GAN guide included)
imports it without reaching up into training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from feraug.errors import CheckpointError, ConfigError
from feraug.io import atomic_torch_save, read_torch_checkpoint
from feraug.models import build_classifier

FORMAT = "feraug-classifier-v1"


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint dict atomically (``format`` key added)."""
    atomic_torch_save({"format": FORMAT, **state}, Path(path))


def half_weights(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict with floating-point tensors stored as float16 (half the file, for
    shipping; ``load_state_dict`` casts them back to the model's float32)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}


def read_checkpoint(path: str | Path) -> dict:
    """Load a feraug classifier checkpoint safely (``weights_only=True``)."""
    return read_torch_checkpoint(path, FORMAT, "classifier")


@dataclass
class LoadedClassifier:
    """A trained classifier ready for inference, with how its inputs must be prepared."""

    model: nn.Module
    classes: tuple[str, ...]
    image_size: int
    crop_size: int | None
    tta: str
    model_name: str
    meta: dict


#: What every classifier checkpoint must hold to be rebuilt.
REQUIRED_KEYS = ("model_name", "classes", "image_size", "crop_size", "tta", "model")


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> LoadedClassifier:
    """Rebuild the model stored in a checkpoint, in eval mode on ``device``."""
    state = read_checkpoint(path)
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: classifier checkpoint lacks {', '.join(missing)}")
    model = build_classifier(state["model_name"], len(state["classes"]),
                             state["crop_size"] or state["image_size"],
                             **state.get("model_kwargs", {}))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit model {state['model_name']} "
                              f"({str(exc).splitlines()[0]})") from None
    # Channels-last: about 2x faster convolutions on CPU (benchmarks/inference_throughput.py);
    # 2-D weights and the stored checkpoint are unaffected.
    model.to(device=device, memory_format=torch.channels_last).eval()
    meta = {k: v for k, v in state.items() if k not in {"model", "optimizer", "scheduler", "rng"}}
    return LoadedClassifier(
        model=model,
        classes=tuple(state["classes"]),
        image_size=int(state["image_size"]),
        crop_size=state["crop_size"],
        tta=state["tta"],
        model_name=state["model_name"],
        meta=meta,
    )


def load_frozen_classifier(path: str | Path, device: str | torch.device,
                           role: str) -> LoadedClassifier:
    """A classifier used as a fixed function (a generator's guide, a student's teacher): in
    eval mode, its weights excluded from gradients. ConfigError naming ``role`` when the file
    is missing."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {role} checkpoint not found")
    loaded = load_classifier(path, device)
    for p in loaded.model.parameters():
        p.requires_grad_(False)
    return loaded


def output_index(loaded: LoadedClassifier, classes: tuple[str, ...],
                 device: str | torch.device) -> torch.Tensor:
    """For each of ``classes``, its position among ``loaded``'s outputs (every class must be
    one of them)."""
    return torch.tensor([loaded.classes.index(c) for c in classes], device=device)
