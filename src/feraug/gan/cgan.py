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

import copy

import torch
import torch.nn.functional as F
from pydantic import Field

from feraug.gan.base import (
    SAMPLE_CHUNK,
    GanConfig,
    GeneratorModel,
    balanced_streams,
    ema_beta,
    r1_step,
    set_requires_grad,
    to_uint8,
    update_ema,
)
from feraug.gan.diffaugment import Policy, diff_augment
from feraug.gan.stylenets import ProjectionDiscriminator, StyleGenerator


class CGanConfig(GanConfig):
    """cgan settings; channels are listed from the lowest resolution (S/8) to S."""

    z_dim: int = Field(128, ge=8)
    w_dim: int = Field(128, ge=8)
    map_layers: int = Field(2, ge=1)
    mapping_lr_mul: float = Field(0.01, gt=0)
    g_channels: tuple[int, int, int, int] = (128, 128, 64, 32)
    d_channels: tuple[int, int, int, int] = (128, 128, 64, 32)
    lr: float = Field(0.002, gt=0)
    beta2: float = Field(0.99, ge=0, lt=1)
    r1_gamma: float = Field(0.05, ge=0, description="R1 weight (gamma); 0 disables it")
    r1_every: int = Field(16, ge=1, description="lazy regularisation interval")
    ema_kimg: float = Field(10.0, ge=0, description="EMA half-life in thousands of images")
    ema_rampup: float = Field(0.05, ge=0, description="EMA half-life <= rampup x images seen")
    diffaugment: Policy = Field("color,translation,cutout", description="DiffAugment policy")
    balanced: bool = Field(True, description="equal images per class in every batch")


class CGan(GeneratorModel):
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
        g_ema = copy.deepcopy(g).eval()
        set_requires_grad(g_ema, False)
        self.nets = {"g": g, "d": d, "g_ema": g_ema}
        ratio = c.r1_every / (c.r1_every + 1) if c.r1_gamma > 0 else 1.0  # lazy-reg correction
        self.optims = {
            "g": torch.optim.Adam(g.parameters(), c.lr, (0.0, c.beta2)),
            "d": torch.optim.Adam(d.parameters(), c.lr * ratio, (0.0, c.beta2 ** ratio)),
        }

    def streams(self, labels: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
        if self.config.balanced:
            return balanced_streams(labels, len(self.classes), self.config.batch_size)
        return super().streams(labels)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.config.diffaugment)

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
        # phase 2: discriminator, non-saturating loss on augmented real and fake
        set_requires_grad(d, True)
        with self.autocast():
            d_fake = d(self._augment(fake.detach()), labels)
            d_real = d(self._augment(real), labels)
            loss_d = F.softplus(d_fake).mean() + F.softplus(-d_real).mean()
        o["d"].zero_grad(set_to_none=True)
        loss_d.backward()
        o["d"].step()
        # phase 3: lazy R1 penalty (fp32) on augmented reals
        losses = {"g": loss_g.detach(), "d": loss_d.detach(),
                  "d_real": d_real.detach().float().mean(),
                  "d_fake": d_fake.detach().float().mean()}
        if c.r1_gamma > 0 and self.step % c.r1_every == 0:
            losses["r1"] = r1_step(d, self._augment(real).detach(), labels, o["d"],
                                   c.r1_gamma * c.r1_every)
        self._update_ema(real.shape[0])
        return losses

    def _update_ema(self, batch: int) -> None:
        c = self.config
        update_ema(self.nets["g_ema"], self.nets["g"],
                   ema_beta(self.step, batch, c.ema_kimg, c.ema_rampup))

    @torch.no_grad()
    def generate(self, label: int, n: int, seed: int) -> torch.Tensor:
        """Float images in about [-1, 1] ``[n, 1, S, S]`` on ``self.device`` from the EMA
        generator, for class index ``label``."""
        z = self._noise(n, self.config.z_dim, seed)
        labels = torch.full((n,), label, dtype=torch.long, device=self.device)
        g = self.nets["g_ema"]
        out = [g(z[i : i + SAMPLE_CHUNK], labels[i : i + SAMPLE_CHUNK])
               for i in range(0, n, SAMPLE_CHUNK)]
        return torch.cat(out) if out else z.new_zeros(0, 1, self.image_size, self.image_size)

    def sample(self, emotion: str, n: int, seed: int,
               sources: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` new faces of ``emotion`` from noise seeded by ``seed`` (``sources`` ignored)."""
        return to_uint8(self.generate(self.class_index(emotion), n, seed))
