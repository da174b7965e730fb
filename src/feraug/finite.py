"""Divergence checks shared by classifier and generator training: a run whose loss or weights
stop being finite ends with one :class:`~feraug.errors.DivergedError` line and is never saved
as a result."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from feraug.errors import DivergedError

ADVICE = "lower the learning rate or check the data; no checkpoint was written from this step on"


def ensure_finite_losses(losses: dict[str, float], where: str) -> None:
    """Raise DivergedError when any loss value is NaN or infinite (``where``: run and step)."""
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    if bad:
        raise DivergedError(f"{where}: training diverged, loss "
                            + ", ".join(f"{k}={v}" for k, v in bad.items()) + f"; {ADVICE}")


def ensure_finite_weights(nets: Iterable[nn.Module], where: str) -> None:
    """Raise DivergedError when any parameter of ``nets`` holds a NaN or infinite value."""
    for net in nets:
        for name, p in net.named_parameters():
            if not bool(torch.isfinite(p).all()):
                raise DivergedError(f"{where}: training diverged, weight {name} is not "
                                    f"finite; {ADVICE}")
