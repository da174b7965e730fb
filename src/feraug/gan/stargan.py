"""StarGAN (Choi et al. 2018): one expression translator for all emotions.

The generator sees a face and the target emotion; the emotion enters through conditional
instance norms (a per-emotion scale and shift after each encoder/decoder norm) rather than the
paper's one-hot maps tiled onto the input, which reflection padding plus instance norm erase
(see :mod:`feraug.gan.nets`). The discriminator has two heads: a PatchGAN real/fake map and
an emotion classifier.
Losses: adversarial, domain classification (real faces' labels for the discriminator, target
labels for the generator, weight ``lambda_cls``) and reconstruction (translate back to the
original emotion, L1, ``lambda_rec`` = 10).

The adversarial loss is least squares (LSGAN) rather than the paper's WGAN-GP: it needs no
gradient penalty (a double backward) and no 5 critic steps per generator step, about 5x less
compute on a CPU, and it is the loss the CycleGAN baseline uses too. ``n_critic`` and
DiffAugment for the discriminator are available in the config. Targets are drawn uniformly
among the emotions other than the face's own, and batches are class-balanced by default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from feraug.emotions import canonical
from feraug.errors import ConfigError
from feraug.gan.base import (
    SAMPLE_CHUNK,
    GanConfig,
    GeneratorModel,
    balanced_streams,
    set_requires_grad,
    to_float,
    to_uint8,
)
from feraug.gan.diffaugment import Policy, diff_augment
from feraug.gan.nets import ResnetGenerator, init_normal


class StarGanConfig(GanConfig):
    """stargan settings (networks sized for 48 px)."""

    batch_size: int = Field(16, ge=1)
    source: str | None = Field("neutral", description="emotion of the real faces sample() "
                               "translates (null: any emotion)")
    ngf: int = Field(32, ge=4)
    n_blocks: int = Field(4, ge=1)
    ndf: int = Field(32, ge=4)
    d_layers: int = Field(4, ge=2, le=5, description="stride-2 discriminator layers")
    lr: float = Field(1e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    lambda_cls: float = Field(1.0, ge=0)
    lambda_rec: float = Field(10.0, ge=0)
    n_critic: int = Field(1, ge=1, description="discriminator steps per generator step")
    diffaugment: Policy = Field("", description="DiffAugment policy for the discriminator")
    balanced: bool = Field(True, description="equal images per class in every batch")


class StarDiscriminator(nn.Module):
    """Strided 4 x 4 convs, then a 3 x 3 real/fake patch head and a full-size class head."""

    def __init__(self, num_classes: int, image_size: int, ndf: int = 32,
                 n_layers: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch_in, ch = 1, ndf
        for i in range(n_layers):
            ch = ndf * min(2 ** i, 8)
            layers += [nn.Conv2d(ch_in, ch, 4, 2, 1), nn.LeakyReLU(0.01, True)]
            ch_in = ch
        self.main = nn.Sequential(*layers)
        self.src = nn.Conv2d(ch, 1, 3, 1, 1)
        self.cls = nn.Conv2d(ch, num_classes, image_size // 2 ** n_layers)
        init_normal(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        return self.src(h), self.cls(h).flatten(1)


class StarGan(GeneratorModel):
    """Multi-domain expression translator: ``sample(emotion, n, seed, sources=faces)``."""

    name = "stargan"
    config_class = StarGanConfig
    needs_sources = True

    def __init__(self, config: StarGanConfig, classes: tuple[str, ...], image_size: int) -> None:
        super().__init__(config, classes, image_size)
        c, k = config, len(self.classes)
        if k < 2:
            raise ConfigError("stargan needs at least two emotions in the data")
        if c.source is not None:
            self.source_emotion = canonical(c.source, "source")
            if self.source_emotion not in self.classes:
                raise ConfigError(f"stargan: source emotion {self.source_emotion!r} is not in "
                                  f"the data (classes: {', '.join(self.classes)})")
        with self.seeded():
            self.nets = {"g": ResnetGenerator(1, 1, c.ngf, c.n_blocks, num_classes=k),
                         "d": StarDiscriminator(k, image_size, c.ndf, c.d_layers)}
        self.use_adam_with_linear_decay(
            {n: list(net.parameters()) for n, net in self.nets.items()}, c.lr, c.beta1)

    def streams(self, labels: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
        if self.config.balanced:
            return balanced_streams(labels, len(self.classes), self.config.batch_size)
        return super().streams(labels)

    def _train_step(self, real: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        c, g, d, o = self.config, self.nets["g"], self.nets["d"], self.optims
        k = len(self.classes)
        target = (labels + torch.randint(1, k, labels.shape, device=labels.device)) % k

        def aug(x: torch.Tensor) -> torch.Tensor:
            return diff_augment(x, c.diffaugment)

        # discriminator: real/fake (least squares) + classification of real faces
        with self.autocast():
            fake = g(real, target)
            src_real, cls_real = d(aug(real))
            src_fake, _ = d(aug(fake.detach()))
            d_adv = F.mse_loss(src_real, torch.ones_like(src_real)) + \
                F.mse_loss(src_fake, torch.zeros_like(src_fake))
            d_cls = F.cross_entropy(cls_real.float(), labels)
            loss_d = d_adv + c.lambda_cls * d_cls
        o["d"].zero_grad(set_to_none=True)
        loss_d.backward()
        o["d"].step()
        losses = {"d_adv": d_adv.detach(), "d_cls": d_cls.detach()}
        if self.step % c.n_critic:
            return losses
        # generator: fool D, be classified as the target, reconstruct the original
        set_requires_grad(d, False)
        with self.autocast():
            src_fake, cls_fake = d(aug(fake))
            g_adv = F.mse_loss(src_fake, torch.ones_like(src_fake))
            g_cls = F.cross_entropy(cls_fake.float(), target)
            rec = F.l1_loss(g(fake, labels), real)
            loss_g = g_adv + c.lambda_cls * g_cls + c.lambda_rec * rec
        o["g"].zero_grad(set_to_none=True)
        loss_g.backward()
        o["g"].step()
        set_requires_grad(d, True)
        return {**losses, "g_adv": g_adv.detach(), "g_cls": g_cls.detach(), "rec": rec.detach()}

    @torch.no_grad()
    def translate(self, x: torch.Tensor, label: int) -> torch.Tensor:
        """Float faces in [-1, 1] on ``self.device`` -> the same faces showing class ``label``."""
        g = self.nets["g"].eval()
        out = []
        for i in range(0, x.shape[0], SAMPLE_CHUNK):
            chunk = x[i : i + SAMPLE_CHUNK]
            labels = torch.full((chunk.shape[0],), label, dtype=torch.long, device=x.device)
            out.append(g(chunk, labels))
        g.train()
        return torch.cat(out) if out else x.new_zeros(0, 1, *x.shape[2:])

    def sample(self, emotion: str, n: int, seed: int,
               sources: torch.Tensor | None = None) -> torch.Tensor:
        """Translate ``sources[i % len(sources)]`` (uint8 real faces, normally of
        ``source_emotion``) into ``emotion``; ``seed`` is unused (deterministic)."""
        label = self.class_index(emotion)
        src = self.check_sources(sources, n)
        return to_uint8(self.translate(to_float(src.to(self.device)), label))
