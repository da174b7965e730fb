"""CycleGAN (Zhu et al. 2017) for expression transfer, as used by Zhu et al. 2018 for FER
augmentation: unpaired translation between a source emotion A (default neutral) and a target
emotion B, redesigned so that it edits faces instead of redrawing them.

Two mask-editing U-Net generators (A->B, B->A; :class:`~feraug.gan.editnets.MaskUNet`:
``mask * colour + (1 - mask) * input``, resize-convolution upsampling) and two spectral-norm
PatchGAN discriminators with the hinge loss and DiffAugment translation. Generator losses:
adversarial, cycle consistency (L1, ``lambda_cycle``), optional identity (L1 of B->B through
A->B), the mask penalty (mean + total variation: edits stay local) and, with a ``guide``
classifier, its cross-entropy towards B for A->B and towards A for B->A. A history pool of
generated images feeds the discriminators. Adam (beta1 0.5); LR constant for the first half of
training then linearly decayed to zero. One checkpoint per (source, target) pair; sampling
translates real source faces: ``sample(emotion=target, n, seed, sources=neutral_faces)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from feraug.emotions import canonical
from feraug.errors import ConfigError
from feraug.gan.base import SAMPLE_CHUNK, to_float, to_uint8
from feraug.gan.diffaugment import diff_augment
from feraug.gan.editing import EditConfig, EditTranslator
from feraug.gan.editnets import MaskUNet, PatchDiscriminator, hinge_d_loss
from feraug.gan.nets import ImagePool
from feraug.gan.steps import set_requires_grad


class CycleGanConfig(EditConfig):
    """CycleGAN settings (networks sized for 48 px)."""

    batch_size: int = Field(16, ge=1)
    source: str = Field("neutral", description="emotion A (faces that get translated)")
    target: str = Field("disgust", description="emotion B (the emotion generated)")
    lambda_cycle: float = Field(10.0, ge=0)
    lambda_identity: float = Field(0.0, ge=0, description="times lambda_cycle")
    pool_size: int = Field(50, ge=0)


class CycleGan(EditTranslator):
    """Unpaired source <-> target expression translator."""

    name = "cyclegan"
    config_class = CycleGanConfig
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
        if c.edit == "paste":
            raise ConfigError("cyclegan: edit 'paste' takes regions of real target faces, "
                              "which only stargan draws (use replace, residual, warp or "
                              "local_warp)")
        self.source_emotion, self.target_emotion = src, tgt
        with self.seeded():
            self.nets = {
                "g_ab": MaskUNet(c.ngf, c.n_blocks, edit=c.edit, max_shift=c.max_shift,
                                 residual_blur=c.residual_blur),
                "g_ba": MaskUNet(c.ngf, c.n_blocks, edit=c.edit, max_shift=c.max_shift,
                                 residual_blur=c.residual_blur),
                "d_a": PatchDiscriminator(c.ndf),
                "d_b": PatchDiscriminator(c.ndf),
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
        src = torch.full((len(real_a),), self.classes.index(self.source_emotion),
                         device=real.device)
        tgt = torch.full_like(src, self.classes.index(self.target_emotion))

        def aug(x: torch.Tensor) -> torch.Tensor:
            return diff_augment(x, c.diffaugment)

        def score(d: str, x: torch.Tensor) -> torch.Tensor:
            return n[d](aug(x))[0]

        # generators: adversarial + cycle (+ identity) + mask penalty + guidance
        set_requires_grad(n["d_a"], False)
        set_requires_grad(n["d_b"], False)
        with self.autocast():
            (fake_b, mask_ab), (fake_a, mask_ba) = n["g_ab"](real_a), n["g_ba"](real_b)
            adv = -score("d_b", fake_b).mean() - score("d_a", fake_a).mean()
            cyc = F.l1_loss(n["g_ba"](fake_b)[0], real_a) + F.l1_loss(n["g_ab"](fake_a)[0], real_b)
            idt = F.l1_loss(n["g_ab"](real_b)[0], real_b) if c.lambda_identity > 0 \
                else real.new_zeros(())
            mask = self.mask_loss(mask_ab) + self.mask_loss(mask_ba)
            guide = self.guide_loss(fake_b, tgt) + self.guide_loss(fake_a, src)
            loss_g = (adv + c.lambda_cycle * (cyc + c.lambda_identity * idt) + mask + guide)
        o["g"].zero_grad(set_to_none=True)
        loss_g.backward()
        o["g"].step()
        # discriminators: hinge on real faces and pooled fakes
        set_requires_grad(n["d_a"], True)
        set_requires_grad(n["d_b"], True)
        pooled_b = self.pools["b"].query(fake_b.float())
        pooled_a = self.pools["a"].query(fake_a.float())
        with self.autocast():
            loss_d = hinge_d_loss(score("d_b", real_b), score("d_b", pooled_b)) + \
                hinge_d_loss(score("d_a", real_a), score("d_a", pooled_a))
        o["d"].zero_grad(set_to_none=True)
        loss_d.backward()
        o["d"].step()
        return {"g_adv": adv.detach(), "cycle": cyc.detach(), "identity": idt.detach(),
                "mask": mask_ab.detach().mean(), "guide": guide.detach(), "d": loss_d.detach()}

    @torch.no_grad()
    def sample(self, emotion: str, n: int, seed: int,
               sources: torch.Tensor | None = None) -> torch.Tensor:
        """Translate ``sources[i % len(sources)]`` (uint8 source-emotion faces) into the
        target emotion; ``seed`` is unused (translation is deterministic)."""
        self.class_index(emotion)
        src = self.check_sources(sources, n)
        g = self.nets["g_ab"].eval()
        out = [to_uint8(g(to_float(src[i : i + SAMPLE_CHUNK].to(self.device)))[0])
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
