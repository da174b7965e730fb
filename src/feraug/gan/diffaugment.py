"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for grayscale face batches.

The same random transform family is applied to real *and* generated images before the
discriminator sees them, so the discriminator cannot memorise a small training set while
the generator still learns the un-augmented distribution. Every function takes a float batch
``[B, C, H, W]`` in about [-1, 1] and is differentiable with respect to it.

``POLICIES`` maps a policy name to its functions; :func:`diff_augment` is the one entry point.
Colour jitter for grayscale is brightness and contrast only (there is no saturation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import AfterValidator

AugmentFn = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


def _rand(shape: tuple[int, ...], x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """Uniform [0, 1) numbers on ``x``'s device, drawn from ``gen`` (on its own device)."""
    if gen is None:
        return torch.rand(shape, device=x.device, dtype=x.dtype)
    return torch.rand(shape, generator=gen, device=gen.device).to(x.device, x.dtype)


def _randint(high: int, shape: tuple[int, ...], x: torch.Tensor,
             gen: torch.Generator | None) -> torch.Tensor:
    """Integers in [0, high) on ``x``'s device, drawn from ``gen``."""
    if gen is None:
        return torch.randint(high, shape, device=x.device)
    return torch.randint(high, shape, generator=gen, device=gen.device).to(x.device)


def brightness(x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Add one random offset in [-0.5, 0.5) per image."""
    return x + (_rand((x.shape[0], 1, 1, 1), x, gen) - 0.5)


def contrast(x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Scale each image's deviation from its mean by a factor in [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand((x.shape[0], 1, 1, 1), x, gen) + 0.5) + mean


def translation(x: torch.Tensor, gen: torch.Generator | None = None,
                ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its side, filling with zeros (mid-grey)."""
    b, _, h, w = x.shape
    ph, pw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = _randint(2 * ph + 1, (b, 1, 1), x, gen) - ph
    tx = _randint(2 * pw + 1, (b, 1, 1), x, gen) - pw
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + ty + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # [B, H+2, W+2, C]
    batch = torch.arange(b, device=x.device).view(b, 1, 1)
    return padded[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def cutout(x: torch.Tensor, gen: torch.Generator | None = None,
           ratio: float = 0.5) -> torch.Tensor:
    """Zero one random square of ``ratio`` x the side per image (it may cross the border)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = _randint(h + (1 - ch % 2), (b, 1, 1), x, gen) - ch // 2
    cx = _randint(w + (1 - cw % 2), (b, 1, 1), x, gen) - cw // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= cy) & (rows < cy + ch) & (cols >= cx) & (cols < cx + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, tuple[AugmentFn, ...]] = {
    "color": (brightness, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


def diff_augment(x: torch.Tensor, policy: str = "color,translation,cutout",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply the comma-separated ``policy`` (names in :data:`POLICIES`) to a batch.

    An empty policy returns ``x`` unchanged. Random numbers come from ``generator`` when
    given (any device), else from torch's global generator on ``x``'s device.
    """
    for name in filter(None, (p.strip() for p in policy.split(","))):
        if name not in POLICIES:
            raise ValueError(f"unknown DiffAugment policy {name!r} (known: {', '.join(POLICIES)})")
        for fn in POLICIES[name]:
            x = fn(x, generator)
    return x


def check_policy(policy: str) -> str:
    """Validate a policy string (for config validators); returns it unchanged."""
    for name in filter(None, (p.strip() for p in policy.split(","))):
        if name not in POLICIES:
            raise ValueError(f"unknown DiffAugment policy {name!r} (known: {', '.join(POLICIES)})")
    return policy


#: A config field holding a DiffAugment policy string, validated by :func:`check_policy`.
Policy = Annotated[str, AfterValidator(check_policy)]
