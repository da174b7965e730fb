"""Class-conditional StyleGAN2-style GAN for limited data (the StyleGAN2 role in Kusunose et
al. 2022), as a documented simplification (see :mod:`feraug.gan.stylenets`).

Training follows StyleGAN2-ADA's phases: generator step (non-saturating loss), discriminator
step (non-saturating loss), lazy R1 penalty on real images every ``r1_every`` steps, then the
exponential moving average (EMA) of the generator weights, which is what ``sample`` uses.
DiffAugment (colour, translation, cutout) is applied to every image the discriminator sees,
and batches are class-balanced by default, so a class with a few hundred faces still trains
without the discriminator memorising it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from feraug.gan.noise import NoiseConfig, NoiseToFace
from feraug.gan.steps import set_requires_grad
from feraug.gan.stylenets import ProjectionDiscriminator, StyleGenerator


class CGanConfig(NoiseConfig):
    """cgan settings; channels are listed from the lowest resolution (S/8) to S."""

    w_dim: int = Field(128, ge=8)
    map_layers: int = Field(2, ge=1)
    mapping_lr_mul: float = Field(0.01, gt=0)
    g_channels: tuple[int, int, int, int] = (128, 128, 64, 32)
    d_channels: tuple[int, int, int, int] = (128, 128, 64, 32)
    lr: float = Field(0.002, gt=0)
    beta2: float = Field(0.99, ge=0, lt=1)


class CGan(NoiseToFace):
    """Class-conditional noise -> face generator (sources are ignored)."""

    name = "cgan"
    config_class = CGanConfig

    def __init__(self, config: CGanConfig, classes: tuple[str, ...], image_size: int) -> None:
        super().__init__(config, classes, image_size)
        c, k = config, len(self.classes)
        with self.seeded():
            g = StyleGenerator(k, image_size, c.z_dim, c.w_dim, c.map_layers, c.g_channels,
                               c.mapping_lr_mul)
            d = ProjectionDiscriminator(k, image_size, c.d_channels)
        self.set_networks(g, d, c.lr, c.lr, (0.0, c.beta2))

    def _train_step(self, real: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        c, g, d, o = self.config, self.nets["g"], self.nets["d"], self.optims
        z = torch.randn(real.shape[0], c.z_dim, device=real.device)
        # phase 1: generator, non-saturating loss
        set_requires_grad(d, False)
        with self.autocast():
            fake = g(z, labels)
            loss_g = F.softplus(-d(self._augment(fake), labels)).mean()
        o["g"].zero_grad(set_to_none=True)
        loss_g.backward()
        o["g"].step()
        # phase 2: discriminator (and lazy R1), then the EMA
        set_requires_grad(d, True)
        losses = {"g": loss_g.detach(), **self.discriminator_step(real, fake, labels)}
        self._update_ema(real.shape[0])
        return losses
