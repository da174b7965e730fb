"""Training losses: cross-entropy, optionally class-weighted or logit-adjusted."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def class_counts(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Images per class (at least 1, so that log-priors and weights stay finite)."""
    return torch.bincount(labels, minlength=num_classes).clamp_min(1).float()


class LogitAdjustedLoss(nn.Module):
    """Logit-adjusted cross-entropy (Menon et al., ICLR 2021, "Long-tail learning via logit
    adjustment"): adds ``tau * log(prior)`` to the logits inside the loss only, so the model's
    own logits estimate the class-balanced posterior. Plain argmax at test time then weighs
    rare classes (disgust, fear) as much as frequent ones, with no change at inference.
    """

    def __init__(self, class_prior: torch.Tensor, tau: float = 1.0,
                 label_smoothing: float = 0.0, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("offset", tau * class_prior.float().log())
        self.register_buffer("weight", weight)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits + self.offset.to(logits.dtype), target, weight=self.weight,
                               label_smoothing=self.label_smoothing)


def build_loss(train_labels: torch.Tensor, num_classes: int, *, class_weighted: bool = False,
               logit_adjust_tau: float = 0.0, label_smoothing: float = 0.0) -> nn.Module:
    """The training loss: class weights are inverse frequency with mean 1; a positive
    ``logit_adjust_tau`` uses :class:`LogitAdjustedLoss` with the training-set prior."""
    counts = class_counts(train_labels, num_classes)
    weight = None
    if class_weighted:
        weight = counts.sum() / counts
        weight = weight / weight.mean()
    if logit_adjust_tau > 0:
        return LogitAdjustedLoss(counts / counts.sum(), logit_adjust_tau, label_smoothing, weight)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
