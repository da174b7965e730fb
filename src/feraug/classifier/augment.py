"""Batched, on-device training augmentation for float face batches ``[N,1,H,W]``.

One affine warp per batch (per-sample random rotation, scale, shift and horizontal flip, all
in a single ``affine_grid``/``grid_sample`` call), optional brightness/contrast jitter, the
photometric changes of real photos (gamma, blur, sensor noise, lost resolution), a random
crop to the model's input size, and random erasing by masks. No per-image Python work.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from feraug.classifier.config import AugmentConfig


def _uniform(n: int, bound: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=gen, device=device) * 2 - 1) * bound


def random_affine(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Per-sample rotation/scale/translation/flip, reflect-padded, in one grid_sample."""
    n, dev = x.shape[0], x.device
    angle = _uniform(n, math.radians(cfg.rotation), gen, dev)
    scale = 1 + _uniform(n, cfg.scale, gen, dev)
    tx = _uniform(n, 2 * cfg.translate, gen, dev)
    ty = _uniform(n, 2 * cfg.translate, gen, dev)
    flip = torch.ones(n, device=dev)
    if cfg.flip:
        flip = torch.where(torch.rand(n, generator=gen, device=dev) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos * flip, -sin, tx], 1),
        torch.stack([sin * flip, cos, ty], 1),
    ], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_crop(x: torch.Tensor, crop: int, gen: torch.Generator) -> torch.Tensor:
    """Per-sample random ``crop`` x ``crop`` windows via unfold-free gather of offsets."""
    n, _, h, w = x.shape
    if crop >= h:
        return x
    oy = torch.randint(0, h - crop + 1, (n,), generator=gen, device=x.device)
    ox = torch.randint(0, w - crop + 1, (n,), generator=gen, device=x.device)
    ar = torch.arange(crop, device=x.device)
    rows = (oy[:, None] + ar[None]).view(n, 1, crop, 1).expand(n, 1, crop, w)
    x = x.gather(2, rows)
    cols = (ox[:, None] + ar[None]).view(n, 1, 1, crop).expand(n, 1, crop, crop)
    return x.gather(3, cols)


def random_erasing(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Erase one random rectangle (2-33% of the area, aspect 0.3-3.3) with probability ``p``."""
    n, _, h, w = x.shape
    dev = x.device
    area = (0.02 + torch.rand(n, generator=gen, device=dev) * 0.31) * h * w
    lo, hi = math.log(0.3), math.log(3.3)
    ratio = torch.exp(lo + torch.rand(n, generator=gen, device=dev) * (hi - lo))
    eh = torch.sqrt(area * ratio).clamp(1, h)
    ew = torch.sqrt(area / ratio).clamp(1, w)
    y0 = torch.rand(n, generator=gen, device=dev) * (h - eh)
    x0 = torch.rand(n, generator=gen, device=dev) * (w - ew)
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    inside = ((ys >= y0.view(n, 1, 1)) & (ys < (y0 + eh).view(n, 1, 1))
              & (xs >= x0.view(n, 1, 1)) & (xs < (x0 + ew).view(n, 1, 1)))
    apply = (torch.rand(n, generator=gen, device=dev) < p).view(n, 1, 1)
    mask = (inside & apply).unsqueeze(1)
    noise = torch.randn(x.shape, generator=gen, device=dev, dtype=x.dtype)
    return torch.where(mask, noise, x)


def jitter(x: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """Per-sample brightness and contrast jitter for inputs normalised to about [-1, 1]."""
    n, dev = x.shape[0], x.device
    b = _uniform(n, amount, gen, dev).view(n, 1, 1, 1)
    c = (1 + _uniform(n, amount, gen, dev)).view(n, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * c + mean + b).clamp_(-1, 1)


def random_gamma(x: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """Per-sample gamma ``exp(U(-amount, amount))`` on the [0, 1] intensity scale."""
    n = x.shape[0]
    g = torch.exp(_uniform(n, amount, gen, x.device)).view(n, 1, 1, 1).to(x.dtype)
    unit = ((x + 1) / 2).clamp(0, 1)
    return unit.pow(g) * 2 - 1


def random_blur(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian blur with a per-sample sigma in [0.3, 1.5] px on a share ``p`` of the batch:
    one grouped separable convolution (a kernel per sample)."""
    n, _, h, w = x.shape
    dev = x.device
    sigma = 0.3 + torch.rand(n, generator=gen, device=dev) * 1.2
    radius = 3
    taps = torch.arange(-radius, radius + 1, device=dev, dtype=x.dtype)
    kernel = torch.exp(-(taps[None] ** 2) / (2 * sigma[:, None].to(x.dtype) ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)  # [n, 2r+1]
    flat = x.transpose(0, 1)  # [1, n, h, w]: each sample its own channel
    flat = F.pad(flat, (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(flat, kernel.view(n, 1, 1, -1), groups=n)
    flat = F.conv2d(flat, kernel.view(n, 1, -1, 1), groups=n)
    blurred = flat.transpose(0, 1)
    apply = (torch.rand(n, generator=gen, device=dev) < p).view(n, 1, 1, 1)
    return torch.where(apply, blurred, x)


def random_noise(x: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise with a per-sample standard deviation in [0, ``amount``]."""
    n = x.shape[0]
    std = (torch.rand(n, generator=gen, device=x.device) * amount).view(n, 1, 1, 1)
    noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    return (x + noise * std.to(x.dtype)).clamp(-1, 1)


def random_lowres(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Down to 40-80% of the side (area average) and back up (bilinear) on a share ``p`` of
    the batch; one factor per batch, so that the resize stays one call."""
    n, _, h, w = x.shape
    # the resize needs its size on the host: one device sync per batch, not per image
    factor = 0.4 + float(torch.rand(1, generator=gen, device=x.device)) * 0.4
    small = F.interpolate(x, size=(max(2, round(h * factor)), max(2, round(w * factor))),
                          mode="area")
    back = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    apply = (torch.rand(n, generator=gen, device=x.device) < p).view(n, 1, 1, 1)
    return torch.where(apply, back, x)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, crop: int | None,
                  gen: torch.Generator) -> torch.Tensor:
    """The full training augmentation for a normalised float batch."""
    if cfg.rotation or cfg.scale or cfg.translate or cfg.flip:
        x = random_affine(x, cfg, gen)
    if cfg.brightness:
        x = jitter(x, cfg.brightness, gen)
    if cfg.gamma:
        x = random_gamma(x, cfg.gamma, gen)
    if cfg.lowres:
        x = random_lowres(x, cfg.lowres, gen)
    if cfg.blur:
        x = random_blur(x, cfg.blur, gen)
    if cfg.noise:
        x = random_noise(x, cfg.noise, gen)
    if crop is not None:
        x = random_crop(x, crop, gen)
    if cfg.erasing:
        x = random_erasing(x, cfg.erasing, gen)
    return x
