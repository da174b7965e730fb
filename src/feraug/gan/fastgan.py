"""Light class-conditional noise-to-face GAN for small data and small compute.

Generator: :class:`feraug.gan.fastnets.FastGenerator` (conditional-batch-norm residual
blocks with skip-layer excitation). Discriminator: the residual projection discriminator with
equalised learning rate and minibatch standard deviation that ``cgan`` uses, trained with the
non-saturating loss and a lazy R1 penalty. A spectral-norm projection discriminator with the
hinge loss was measured first: with DiffAugment it could not tell real procedural faces from
an untrained generator's noise after 100 steps (loss 1.7-2.0 of 2.0 at chance), while this
one reached 0.36-0.5 of 1.39 at chance, so the generator got no face signal in a CPU budget.
DiffAugment on everything the discriminator sees (Zhao et al. 2020), class-balanced batches,
an exponential moving average of the generator (what ``sample`` uses) and, optionally, a
frozen guide classifier whose cross-entropy towards the requested emotion is added to the
generator loss (:mod:`feraug.gan.guide`). A guided generator is scored by a different
classifier; the scorer refuses its guide.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from feraug.gan.fastnets import FastGenerator
from feraug.gan.guide import GuideConfig, GuidedGenerator
from feraug.gan.noise import NoiseConfig, NoiseToFace
from feraug.gan.steps import set_requires_grad
from feraug.gan.stylenets import ProjectionDiscriminator


class FastGanConfig(NoiseConfig, GuideConfig):
    """fastgan settings; channels run from S/8 to S (the discriminator's are listed in the
    same order)."""

    batch_size: int = Field(64, ge=2, description="images per step (batch norm needs >= 2)")
    z_dim: int = Field(128, ge=8, multiple_of=4, description="noise size (four chunks)")
    g_channels: tuple[int, int, int, int] = (128, 64, 32, 16)
    d_channels: tuple[int, int, int, int] = (128, 128, 64, 32)
    lr_g: float = Field(2e-4, gt=0)
    lr_d: float = Field(2e-3, gt=0, description="equalised learning rate: the StyleGAN2 value")
    beta1: float = Field(0.0, ge=0, lt=1)
    beta2: float = Field(0.99, ge=0, lt=1)
    ema_kimg: float = Field(5.0, ge=0, description="EMA half-life in thousands of images")
    lambda_ms: float = Field(1.0, ge=0, description="mode-seeking weight (Mao et al. 2019): "
                             "two noises of one emotion must give different faces")


class FastGan(GuidedGenerator, NoiseToFace):
    """Class-conditional noise -> face generator (sources are ignored)."""

    name = "fastgan"
    config_class = FastGanConfig
    config: FastGanConfig

    def __init__(self, config: FastGanConfig, classes: tuple[str, ...],
                 image_size: int) -> None:
        super().__init__(config, classes, image_size)
        c, k = config, len(self.classes)
        with self.seeded():
            g = FastGenerator(k, image_size, c.z_dim, c.g_channels)
            d = ProjectionDiscriminator(k, image_size, c.d_channels)
        self.set_networks(g, d, c.lr_g, c.lr_d, (c.beta1, c.beta2))

    def _train_step(self, real: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        c, g, d, o = self.config, self.nets["g"], self.nets["d"], self.optims
        z = torch.randn(real.shape[0], c.z_dim, device=real.device)
        with self.autocast():
            fake = g(z, labels)
        losses = self.discriminator_step(real, fake, labels)
        # generator: raise the discriminator's score, be recognised by the guide, vary
        set_requires_grad(d, False)
        with self.autocast():
            adv = F.softplus(-d(self._augment(fake), labels)).mean()
            guide = self.guide_loss(fake, labels)
            seeking = self.mode_seeking_loss(fake, z, labels)
            loss_g = adv + guide + seeking
        o["g"].zero_grad(set_to_none=True)
        loss_g.backward()
        o["g"].step()
        set_requires_grad(d, True)
        self._update_ema(real.shape[0])
        return {"g": adv.detach(), "guide": guide.detach(), "ms": seeking.detach(), **losses}

    def mode_seeking_loss(self, fake: torch.Tensor, z: torch.Tensor, labels: torch.Tensor
                          ) -> torch.Tensor:
        """``lambda_ms / (image distance / noise distance)`` over neighbouring samples of the
        same emotion (a batch holds each emotion's samples side by side): small when
        different noises give different faces, large when the generator collapses."""
        same = labels[:-1] == labels[1:]
        if self.config.lambda_ms == 0 or not bool(same.any()):
            return fake.new_zeros(())
        faces = (fake[:-1] - fake[1:]).abs().flatten(1).mean(dim=1)
        noise = (z[:-1] - z[1:]).abs().mean(dim=1)
        ratio = (faces / noise)[same].mean()
        return self.config.lambda_ms / (ratio + 1e-5)
