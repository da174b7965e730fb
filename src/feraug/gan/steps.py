"""What the generators' training steps share: class-balanced batches, the EMA of a
generator's weights, lazy R1 steps and gradient switches."""

from __future__ import annotations

import copy

import torch
from torch import nn


def balanced_streams(labels: torch.Tensor, num_classes: int, batch: int
                     ) -> list[tuple[torch.Tensor, int]]:
    """One stream per class present, splitting ``batch`` as evenly as possible."""
    pools = [(labels == k).nonzero().flatten() for k in range(num_classes)]
    pools = [p for p in pools if len(p)]
    shares = [batch // len(pools) + (i < batch % len(pools)) for i in range(len(pools))]
    return [(p, n) for p, n in zip(pools, shares, strict=True) if n > 0]


def ema_beta(step: int, batch: int, half_life_kimg: float, rampup: float) -> float:
    """StyleGAN2-ADA's EMA decay for one step: a half-life of ``half_life_kimg`` thousand
    images, shortened to ``rampup`` x the images seen so far early in training."""
    half_life = half_life_kimg * 1000
    if rampup > 0:
        half_life = min(half_life, (step + 1) * batch * rampup)
    return 0.5 ** (batch / max(half_life, 1e-8)) if half_life > 0 else 0.0


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, beta: float) -> None:
    """Move ``ema``'s parameters towards ``net``'s by ``1 - beta``; copy its buffers (batch
    norm statistics) as they are."""
    for p_ema, p in zip(ema.parameters(), net.parameters(), strict=True):
        p_ema.lerp_(p, 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), net.buffers(), strict=True):
        b_ema.copy_(b)


def r1_step(d: nn.Module, real: torch.Tensor, labels: torch.Tensor,
            optimizer: torch.optim.Optimizer, weight: float) -> torch.Tensor:
    """One lazy R1 step (Mescheder et al. 2018) in fp32: ``weight / 2`` x the squared
    gradient norm of ``d``'s score at the real faces; returns the detached penalty."""
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x, labels).sum(), x, create_graph=True)
    r1 = grad.square().sum(dim=(1, 2, 3)).mean()
    optimizer.zero_grad(set_to_none=True)
    (r1 * (weight / 2)).backward()
    optimizer.step()
    return r1.detach()


def set_requires_grad(net: nn.Module, flag: bool) -> None:
    """Switch gradient tracking for all parameters of ``net``."""
    for p in net.parameters():
        p.requires_grad_(flag)


def frozen_copy(net: nn.Module) -> nn.Module:
    """An eval-mode copy of ``net`` without gradients (an EMA generator's starting point)."""
    ema = copy.deepcopy(net).eval()
    set_requires_grad(ema, False)
    return ema
