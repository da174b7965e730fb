"""Turning uint8 face batches into model inputs, and predicting with test-time augmentation.

Training, evaluation, prediction and export all go through :func:`to_model_input`, so the
conversion is identical everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from feraug.errors import ConfigError

if TYPE_CHECKING:
    from feraug.models.checkpoint import LoadedClassifier

MEAN = 0.5
STD = 0.5
TTA_MODES = ("none", "flip", "tencrop")


def check_tta(tta: str) -> str:
    """``tta`` if it names a test-time augmentation mode, else one clear :class:`ConfigError`."""
    if tta not in TTA_MODES:
        raise ConfigError(f"tta must be one of {', '.join(TTA_MODES)}, not {tta!r}")
    return tta


def inference_batch_size(device: torch.device, views: int = 1) -> int:
    """Faces per batch when predicting with ``views`` test-time views of each: large on a GPU;
    on a CPU about 64 images per forward pass, since bigger activations cost more in page
    faults than they gain (benchmarks/inference_throughput.py)."""
    return max(1, (512 if device.type == "cuda" else 64) // views)


def to_model_input(images: torch.Tensor, crop_size: int | None = None) -> torch.Tensor:
    """uint8 ``[N,1,S,S]`` -> float ``[N,1,C,C]`` in about [-1, 1], centre-cropped to
    ``crop_size`` when it is smaller than ``S``."""
    x = images.float().div_(255.0).sub_(MEAN).div_(STD)
    if crop_size is not None and crop_size < x.shape[-1]:
        off = (x.shape[-1] - crop_size) // 2
        x = x[..., off : off + crop_size, off : off + crop_size]
    return x


def ten_crops(x: torch.Tensor, crop: int) -> torch.Tensor:
    """The four corner crops, the centre crop and their mirror images: ``[10, N, 1, c, c]``."""
    s = x.shape[-1]
    o = (s - crop) // 2
    offsets = [(0, 0), (0, s - crop), (s - crop, 0), (s - crop, s - crop), (o, o)]
    crops = [x[..., i : i + crop, j : j + crop] for i, j in offsets]
    crops += [c.flip(-1) for c in crops]
    return torch.stack(crops)


@torch.no_grad()
def view_logits(model: nn.Module, images: torch.Tensor, crop_size: int | None,
                tta: str = "none", batch_size: int | None = None) -> torch.Tensor:
    """Raw logits of every test-time view of uint8 images, batch by batch: ``[V, N, K]``.

    ``V`` is 1 (none), 2 (flip) or 10 (tencrop, when ``crop_size`` is smaller than the
    images). Kept per view so that a change of the final layer's bias (logit adjustment) can
    be scored for many values from one pass through the network. ``batch_size`` defaults to
    :func:`inference_batch_size` for the model's device.
    """
    check_tta(tta)
    device = next(model.parameters()).device
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    tencrop = tta == "tencrop" and crop_size is not None and crop_size < images.shape[-1]
    n_views = 10 if tencrop else (1 if tta == "none" else 2)
    batch_size = batch_size or inference_batch_size(device, n_views)
    was_training = model.training
    model.eval()
    outs = []
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size].to(device, non_blocking=True)
        if tencrop:
            views = ten_crops(to_model_input(batch), crop_size)
        else:
            x = to_model_input(batch, crop_size)
            views = torch.stack([x, x.flip(-1)]) if tta != "none" else x.unsqueeze(0)
        v, n = views.shape[:2]
        outs.append(model(views.flatten(0, 1)).float().view(v, n, -1).cpu())
    model.train(was_training)
    return torch.cat(outs, dim=1)


def average_views(logits: torch.Tensor) -> torch.Tensor:
    """``[V, N, K]`` view logits -> ``[N, K]`` log of the views' mean softmax probabilities
    (averaging in probability space, as every feraug prediction does)."""
    return F.softmax(logits, dim=-1).mean(0).clamp_min(1e-12).log()


def predict_logits(model: nn.Module, images: torch.Tensor, crop_size: int | None,
                   tta: str = "none", batch_size: int | None = None) -> torch.Tensor:
    """Averaged softmax probabilities' log for uint8 images, batch by batch, with TTA.

    Returns log-probabilities ``[N, K]`` (averaging is done in probability space).
    ``batch_size`` defaults to :func:`inference_batch_size` for the model's device.
    """
    return average_views(view_logits(model, images, crop_size, tta, batch_size))


def predict_proba(model: nn.Module, images: torch.Tensor, crop_size: int | None,
                  tta: str = "none", batch_size: int | None = None) -> torch.Tensor:
    """Class probabilities ``[N, K]`` for uint8 images ``[N,1,S,S]``."""
    return predict_logits(model, images, crop_size, tta, batch_size).exp()


@torch.no_grad()
def embed_images(loaded: LoadedClassifier, images: torch.Tensor,
                 batch_size: int = 256) -> np.ndarray:
    """Penultimate features ``[N, D]`` of uint8 images (eval mode, no augmentation)."""
    model = loaded.model
    model.eval()
    device = next(model.parameters()).device
    feats = []
    for start in range(0, len(images), batch_size):
        x = to_model_input(images[start : start + batch_size].to(device), loaded.crop_size)
        feats.append(model.embed(x).float().flatten(1).cpu())
    return torch.cat(feats).numpy() if feats else np.zeros((0, 0), dtype=np.float32)
