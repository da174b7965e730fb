"""What the class-conditional noise-to-face generators (``cgan``, ``fastgan``) share:
class-balanced batches, DiffAugment, the StyleGAN2-ADA discriminator phase (non-saturating
loss, lazy R1), an exponential moving average of the generator, and sampling from it.

A subclass builds ``nets = {"g", "d", "g_ema"}`` (``g(z, labels)``, ``d(x, labels)``) and
optimisers ``{"g", "d"}`` (:meth:`NoiseToFace.set_networks`), and its config extends
:class:`NoiseConfig`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from feraug.gan.base import SAMPLE_CHUNK, GanConfig, GeneratorModel, to_uint8
from feraug.gan.diffaugment import Policy, diff_augment
from feraug.gan.steps import balanced_streams, ema_beta, frozen_copy, r1_step, update_ema


class NoiseConfig(GanConfig):
    """Settings every noise-to-face generator has."""

    z_dim: int = Field(128, ge=8)
    r1_gamma: float = Field(0.05, ge=0, description="R1 weight (gamma); 0 disables it")
    r1_every: int = Field(16, ge=1, description="lazy regularisation interval")
    ema_kimg: float = Field(10.0, ge=0, description="EMA half-life in thousands of images")
    ema_rampup: float = Field(0.05, ge=0, description="EMA half-life <= rampup x images seen")
    diffaugment: Policy = Field("color,translation,cutout", description="DiffAugment policy")
    balanced: bool = Field(True, description="equal images per class in every batch")


class NoiseToFace(GeneratorModel):
    """Base of class-conditional noise -> face generators (sources are ignored)."""

    config: NoiseConfig

    def set_networks(self, g: nn.Module, d: nn.Module, lr_g: float, lr_d: float,
                     betas: tuple[float, float]) -> None:
        """``nets`` = the generator, the discriminator and a frozen EMA copy of the generator;
        one Adam each, the discriminator's corrected for lazy R1 (StyleGAN2: its steps run
        ``r1_every / (r1_every + 1)`` as often as the loss terms say)."""
        c = self.config
        self.nets = {"g": g, "d": d, "g_ema": frozen_copy(g)}
        ratio = c.r1_every / (c.r1_every + 1) if c.r1_gamma > 0 else 1.0
        self.optims = {
            "g": torch.optim.Adam(g.parameters(), lr_g, betas),
            "d": torch.optim.Adam(d.parameters(), lr_d * ratio,
                                  (betas[0] ** ratio, betas[1] ** ratio)),
        }

    def streams(self, labels: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
        if self.config.balanced:
            return balanced_streams(labels, len(self.classes), self.config.batch_size)
        return super().streams(labels)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.config.diffaugment)

    def discriminator_step(self, real: torch.Tensor, fake: torch.Tensor,
                           labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Non-saturating loss on augmented real and (detached) generated faces, then the
        lazy R1 penalty every ``r1_every`` steps; returns the detached losses."""
        c, d, opt = self.config, self.nets["d"], self.optims["d"]
        with self.autocast():
            d_fake = d(self._augment(fake.detach()), labels)
            d_real = d(self._augment(real), labels)
            loss_d = F.softplus(d_fake).mean() + F.softplus(-d_real).mean()
        opt.zero_grad(set_to_none=True)
        loss_d.backward()
        opt.step()
        losses = {"d": loss_d.detach(), "d_real": d_real.detach().float().mean(),
                  "d_fake": d_fake.detach().float().mean()}
        if c.r1_gamma > 0 and self.step % c.r1_every == 0:
            losses["r1"] = r1_step(d, self._augment(real).detach(), labels, opt,
                                   c.r1_gamma * c.r1_every)
        return losses

    def _update_ema(self, batch: int) -> None:
        c = self.config
        update_ema(self.nets["g_ema"], self.nets["g"],
                   ema_beta(self.step, batch, c.ema_kimg, c.ema_rampup))

    @torch.no_grad()
    def generate(self, label: int, n: int, seed: int) -> torch.Tensor:
        """Float faces in about [-1, 1] ``[n, 1, S, S]`` on ``self.device`` from the EMA
        generator, for class index ``label``."""
        z = self._noise(n, self.config.z_dim, seed)
        labels = torch.full((n,), label, dtype=torch.long, device=self.device)
        g = self.nets["g_ema"].eval()
        out = [g(z[i : i + SAMPLE_CHUNK], labels[i : i + SAMPLE_CHUNK])
               for i in range(0, n, SAMPLE_CHUNK)]
        return torch.cat(out) if out else z.new_zeros(0, 1, self.image_size, self.image_size)

    def sample(self, emotion: str, n: int, seed: int,
               sources: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` new faces of ``emotion`` from noise seeded by ``seed`` (``sources`` ignored)."""
        return to_uint8(self.generate(self.class_index(emotion), n, seed))
