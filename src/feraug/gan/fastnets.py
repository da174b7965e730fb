"""A light class-conditional generator for 48-64 px grayscale faces, built for quality per
CPU-hour (its discriminator is :class:`feraug.gan.stylenets.ProjectionDiscriminator`).

- Generator: BigGAN's hierarchical latent (Brock et al. 2019): the noise is split into four
  chunks; the first, with a class embedding, makes an S/8 map through a linear layer, and each
  of three residual up blocks (S/8 -> S/4 -> S/2 -> S) gets its own chunk, concatenated with
  the class embedding, as the scale and shift of its batch norms (conditional batch norm),
  so that the noise steers every scale, not only the first layer; nearest-neighbour
  resize followed by 3 x 3 convolutions (no transposed convolutions, so no checkerboards),
  and FastGAN's skip-layer excitation (Liu et al. 2021): the S/8 map gates the S/2 channels
  and the S/4 map gates the S channels, a cheap long-range path that lets coarse face layout
  steer fine detail.

It is small enough that a 48 px training step with batch 64 costs well under a second on two
CPU cores; ``benchmarks/gan_throughput.py`` measures it beside the other designs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConditionalBatchNorm(nn.Module):
    """Batch norm without its own affine part, followed by a scale and shift computed from a
    conditioning vector (scale 1 and shift 0 at initialisation)."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.affine = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = (t[:, :, None, None] for t in self.affine(cond).chunk(2, dim=1))
        return self.norm(x) * (1 + scale) + shift


class UpBlock(nn.Module):
    """Residual block that doubles the resolution (BigGAN's generator block)."""

    def __init__(self, cin: int, cout: int, cond_dim: int) -> None:
        super().__init__()
        self.norm1 = ConditionalBatchNorm(cin, cond_dim)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm2 = ConditionalBatchNorm(cout, cond_dim)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x, cond)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.norm2(self.conv1(h), cond)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class SkipExcitation(nn.Module):
    """FastGAN's skip-layer excitation: channel gates for a fine map computed from a coarse
    one."""

    def __init__(self, coarse_channels: int, fine_channels: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), nn.Conv2d(coarse_channels, fine_channels, 4),
            nn.LeakyReLU(0.1), nn.Conv2d(fine_channels, fine_channels, 1), nn.Sigmoid())

    def forward(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        return fine * self.gate(coarse)


class FastGenerator(nn.Module):
    """``(z [B, z_dim], labels [B]) -> faces [B, 1, S, S]`` in [-1, 1]; ``z_dim`` must be a
    multiple of 4 (one chunk for the stem, one per up block)."""

    def __init__(self, num_classes: int, image_size: int = 48, z_dim: int = 128,
                 channels: tuple[int, int, int, int] = (128, 64, 32, 16),
                 embed_dim: int = 64) -> None:
        super().__init__()
        if z_dim % 4:
            raise ValueError(f"z_dim must be a multiple of 4, got {z_dim}")
        self.z_dim, self.base, chunk = z_dim, image_size // 8, z_dim // 4
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.stem = nn.Linear(chunk + embed_dim, channels[0] * self.base ** 2)
        self.ups = nn.ModuleList(UpBlock(channels[i], channels[i + 1], chunk + embed_dim)
                                 for i in range(3))
        self.excite_half = SkipExcitation(channels[0], channels[2])
        self.excite_full = SkipExcitation(channels[1], channels[3])
        self.out = nn.Sequential(nn.BatchNorm2d(channels[3]), nn.ReLU(),
                                 nn.Conv2d(channels[3], 1, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        e = self.embed(labels)
        zs = [torch.cat([part, e], dim=1) for part in z.chunk(4, dim=1)]
        h0 = self.stem(zs[0]).view(len(z), -1, self.base, self.base)
        h1 = self.ups[0](h0, zs[1])
        h2 = self.excite_half(h0, self.ups[1](h1, zs[2]))
        h3 = self.excite_full(h1, self.ups[2](h2, zs[3]))
        return self.out(h3)
