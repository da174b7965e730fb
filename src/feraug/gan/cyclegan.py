"""CycleGAN (Zhu et al. 2017) for expression transfer, as used by Zhu et al. 2018 for FER
augmentation: unpaired translation between a source emotion A (default neutral) and a target
emotion B.

Two ResNet generators (A->B, B->A), two PatchGAN discriminators, least-squares adversarial
loss, cycle-consistency loss (lambda 10), identity loss (0.5 x lambda), a history pool of 50
generated images per discriminator, Adam 2e-4 (beta1 0.5), LR constant for the first half of
training then linearly decayed to zero. One checkpoint per (source, target) pair; sampling
translates real source faces: ``sample(emotion=target, n, seed, sources=neutral_faces)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from feraug.emotions import canonical
from feraug.errors import ConfigError
from feraug.gan.base import (
    SAMPLE_CHUNK,
    GanConfig,
    GeneratorModel,
    set_requires_grad,
    to_float,
    to_uint8,
)
from feraug.gan.nets import ImagePool, PatchDiscriminator, ResnetGenerator


class CycleGanConfig(GanConfig):
    """CycleGAN settings (defaults follow the paper, networks sized for 48 px)."""

    batch_size: int = Field(16, ge=1)
    source: str = Field("neutral", description="emotion A (faces that get translated)")
    target: str = Field("disgust", description="emotion B (the emotion generated)")
    ngf: int = Field(32, ge=4, description="generator base channels")
    n_blocks: int = Field(4, ge=1, description="residual blocks at 1/4 resolution")
    ndf: int = Field(32, ge=4, description="discriminator base channels")
    d_layers: int = Field(2, ge=1, le=4, description="strided PatchGAN layers")
    lr: float = Field(2e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    lambda_cycle: float = Field(10.0, ge=0)
    lambda_identity: float = Field(0.5, ge=0, description="times lambda_cycle")
    pool_size: int = Field(50, ge=0)


class CycleGan(GeneratorModel):
    """Unpaired source <-> target expression translator."""

    name = "cyclegan"
    config_class = CycleGanConfig
    needs_sources = True

    def __init__(self, config: CycleGanConfig, classes: tuple[str, ...], image_size: int) -> None:
        super().__init__(config, classes, image_size)
        c = config
        src, tgt = canonical(c.source, "source"), canonical(c.target, "target")
        for role, emo in (("source", src), ("target", tgt)):
            if emo not in self.classes:
                raise ConfigError(f"cyclegan: {role} emotion {emo!r} is not in the data "
                                  f"(classes: {', '.join(self.classes)})")
        if src == tgt:
            raise ConfigError("cyclegan: source and target emotions must differ")
        self.source_emotion, self.target_emotion = src, tgt
        with self.seeded():
            self.nets = {
                "g_ab": ResnetGenerator(1, 1, c.ngf, c.n_blocks),
                "g_ba": ResnetGenerator(1, 1, c.ngf, c.n_blocks),
                "d_a": PatchDiscriminator(1, c.ndf, c.d_layers),
                "d_b": PatchDiscriminator(1, c.ndf, c.d_layers),
            }
        n = self.nets
        self.use_adam_with_linear_decay(
            {"g": [*n["g_ab"].parameters(), *n["g_ba"].parameters()],
             "d": [*n["d_a"].parameters(), *n["d_b"].parameters()]}, c.lr, c.beta1)
        self.pools = {"a": ImagePool(c.pool_size), "b": ImagePool(c.pool_size)}

    def streams(self, labels: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
        """A batch of source faces, then a batch of target faces."""
        out = []
        for emo in (self.source_emotion, self.target_emotion):
            idx = (labels == self.classes.index(emo)).nonzero().flatten()
            if len(idx) == 0:
                raise ConfigError(f"cyclegan: no training faces of {emo!r}")
            out.append((idx, self.config.batch_size))
        return out

    def emotions(self) -> tuple[str, ...]:
        return (self.target_emotion,)

    def _train_step(self, real: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        c, n, o = self.config, self.nets, self.optims
        real_a, real_b = real.chunk(2)
        lam, lam_idt = c.lambda_cycle, c.lambda_cycle * c.lambda_identity
        # generators: adversarial + cycle + identity
        set_requires_grad(n["d_a"], False)
        set_requires_grad(n["d_b"], False)
        with self.autocast():
            fake_b, fake_a = n["g_ab"](real_a), n["g_ba"](real_b)
            pred_b, pred_a = n["d_b"](fake_b), n["d_a"](fake_a)
            adv = F.mse_loss(pred_b, torch.ones_like(pred_b)) + \
                F.mse_loss(pred_a, torch.ones_like(pred_a))
            cyc = F.l1_loss(n["g_ba"](fake_b), real_a) + F.l1_loss(n["g_ab"](fake_a), real_b)
            idt = F.l1_loss(n["g_ab"](real_b), real_b) + F.l1_loss(n["g_ba"](real_a), real_a) \
                if lam_idt > 0 else torch.zeros((), device=real.device)
            loss_g = adv + lam * cyc + lam_idt * idt
        o["g"].zero_grad(set_to_none=True)
        loss_g.backward()
        o["g"].step()
        # discriminators: real -> 1, pooled fakes -> 0
        set_requires_grad(n["d_a"], True)
        set_requires_grad(n["d_b"], True)
        pooled_b = self.pools["b"].query(fake_b.float())
        pooled_a = self.pools["a"].query(fake_a.float())
        with self.autocast():
            loss_d = sum(
                0.5 * (F.mse_loss(pr := d(r), torch.ones_like(pr))
                       + F.mse_loss(pf := d(f), torch.zeros_like(pf)))
                for d, r, f in ((n["d_b"], real_b, pooled_b), (n["d_a"], real_a, pooled_a))
            )
        o["d"].zero_grad(set_to_none=True)
        loss_d.backward()
        o["d"].step()
        return {"g_adv": adv.detach(), "cycle": cyc.detach(), "identity": idt.detach(),
                "d": loss_d.detach()}

    @torch.no_grad()
    def sample(self, emotion: str, n: int, seed: int,
               sources: torch.Tensor | None = None) -> torch.Tensor:
        """Translate ``sources[i % len(sources)]`` (uint8 source-emotion faces) into the
        target emotion; ``seed`` is unused (translation is deterministic)."""
        self.class_index(emotion)
        src = self.check_sources(sources, n)
        g = self.nets["g_ab"].eval()
        out = [to_uint8(g(to_float(src[i : i + SAMPLE_CHUNK].to(self.device))))
               for i in range(0, n, SAMPLE_CHUNK)]
        g.train()
        return torch.cat(out) if out else torch.zeros(0, 1, self.image_size, self.image_size,
                                                      dtype=torch.uint8)

    def extra_state(self) -> dict:
        return {k: p.state_dict() for k, p in self.pools.items()}

    def load_extra_state(self, state: dict) -> None:
        for k, p in self.pools.items():
            if k in state:
                p.load_state_dict(state[k], self.device)
