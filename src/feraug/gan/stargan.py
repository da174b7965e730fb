"""StarGAN (Choi et al. 2018): one expression translator for all emotions, built to edit.

The generator is a mask-editing U-Net (:class:`~feraug.gan.editnets.MaskUNet`: ``mask *
colour + (1 - mask) * input``, resize-convolution upsampling) that receives the target emotion
through conditional instance norms in its bottleneck. The discriminator is a spectral-norm
PatchGAN with an emotion-classification head over its whole feature map. Losses: hinge adversarial
(DiffAugment translation on everything the discriminator sees), domain classification (real
faces' labels for the discriminator, target labels for the generator, ``lambda_cls``),
reconstruction (translate back to the original emotion, L1, ``lambda_rec``), optional
identity (translate into the face's own emotion: nothing should change, ``lambda_identity``),
the mask penalty (mean + total variation) and, with a ``guide`` classifier, its
cross-entropy towards the target. Targets are drawn uniformly among the emotions other than
the face's own; batches are class-balanced by default.

With ``ema_kimg`` > 0 the faces come from an exponential moving average of the generator's
weights (StarGAN v2, StyleGAN2): the last steps' oscillations average out of the edit.

The hinge loss needs no gradient penalty on every step and no 5 critic steps per generator
step, unlike the paper's WGAN-GP: about 5x less compute on a CPU. The default critic is
spectrally normalised; ``d_spectral_norm: false`` with ``r1_gamma`` trains a plain, optionally
deeper (``d_extra_layers``) critic held in check by a lazy R1 penalty on real faces instead
(StyleGAN2), which a 1-Lipschitz constraint does not limit in how steeply it may separate an
edit from a real face. A conditional critic learns "real face of emotion e" from real faces of
e and edits into e only, so it may take an untouched neutral face for a real angry one;
``d_mismatch`` adds real faces asked about another emotion to its negatives (Reed et al.
2016), so that passing as angry takes what angry faces have and neutral ones lack.

``edit: paste`` gives each edit a real face of its target emotion from the batch to paste
regions from (:class:`~feraug.gan.editnets.MaskUNet`); the way back pastes from another face
of the source's emotion, and a :class:`~feraug.gan.references.ReferenceBank` keeps training
faces for sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from feraug.emotions import canonical
from feraug.errors import ConfigError
from feraug.gan.base import SAMPLE_CHUNK, to_float, to_uint8
from feraug.gan.diffaugment import diff_augment
from feraug.gan.editing import EditTranslator
from feraug.gan.editnets import (
    MaskUNet,
    PatchDiscriminator,
    StyleEncoder,
    hinge_d_loss,
    r1_penalty,
)
from feraug.gan.references import ReferenceBank
from feraug.gan.stargan_config import StarGanConfig
from feraug.gan.steps import (
    balanced_streams,
    ema_beta,
    frozen_copy,
    set_requires_grad,
    update_ema,
)


def same_label_pick(labels: torch.Tensor, wanted: torch.Tensor,
                    other_than_self: bool = False) -> torch.Tensor:
    """For each ``wanted[i]``, the index of a random face of the batch labelled so (an
    arbitrary face where the batch has none); with ``other_than_self``, never face ``i``
    itself where another such face exists."""
    has = labels[None, :] == wanted[:, None]                 # wanted i x face j
    if other_than_self:
        has &= ~torch.eye(len(wanted), len(labels), dtype=torch.bool, device=labels.device)
    return (has.float() + torch.rand(has.shape, device=labels.device)).argmax(1)


@dataclass
class _Batch:
    """One training step's faces, their edits' targets and codes, and the edits made."""

    real: torch.Tensor
    labels: torch.Tensor
    target: torch.Tensor
    style: torch.Tensor | None
    pick: torch.Tensor | None = None  # per edit, a batch face of its target emotion
    ref: torch.Tensor | None = None   # the paste edit's references, and the way back's
    rev: torch.Tensor | None = None
    referenced: tuple[torch.Tensor, torch.Tensor] | None = None
    fake: torch.Tensor | None = None
    mask: torch.Tensor | None = None


class StarGan(EditTranslator):
    """Multi-domain expression translator: ``sample(emotion, n, seed, sources=faces)``.

    Every training step translates real faces of every emotion into another, so any emotion's
    faces can be its sources (``any_source``); ``source`` only sets the default."""

    name = "stargan"
    config_class = StarGanConfig
    any_source = True

    def __init__(self, config: StarGanConfig, classes: tuple[str, ...], image_size: int) -> None:
        super().__init__(config, classes, image_size)
        c, k = config, len(self.classes)
        if k < 2:
            raise ConfigError("stargan needs at least two emotions in the data")
        if c.lambda_feature_match > 0 and not c.guide:
            raise ConfigError("stargan: lambda_feature_match needs a guide (its features are "
                              "the guide's)")
        if (c.lambda_ds > 0 or c.lambda_sty > 0) and c.style_dim == 0:
            raise ConfigError("stargan: lambda_ds and lambda_sty need style_dim > 0 (without "
                              "a style code there is nothing to diversify or read back)")
        if c.style_reference and c.lambda_sty == 0:
            raise ConfigError("stargan: style_reference needs lambda_sty > 0 (its codes come "
                              "from the style encoder)")
        if c.lambda_reference_match > 0 and not (c.style_reference and c.guide):
            raise ConfigError("stargan: lambda_reference_match needs style_reference: true "
                              "and a guide (the features compared are the guide's)")
        if c.d_mismatch > 0 and not c.conditional_d:
            raise ConfigError("stargan: d_mismatch needs conditional_d: true (an "
                              "unconditional critic cannot score a face as an emotion)")
        if c.edit == "paste" and not (c.balanced and c.batch_size >= 2 * k):
            raise ConfigError(f"stargan: edit 'paste' takes each edit's references from the "
                              f"batch, so it needs balanced: true and batch_size >= {2 * k} "
                              "(two faces of every emotion per batch)")
        if c.edit == "paste" and c.reference_bank < c.batch_size:
            raise ConfigError("stargan: reference_bank must be at least batch_size (a batch's "
                              "faces of one emotion must fit in its bank)")
        if c.source is not None:
            self.source_emotion = canonical(c.source, "source")
            if self.source_emotion not in self.classes:
                raise ConfigError(f"stargan: source emotion {self.source_emotion!r} is not in "
                                  f"the data (classes: {', '.join(self.classes)})")
        with self.seeded():
            self.nets = {"g": MaskUNet(c.ngf, c.n_blocks, num_classes=k, edit=c.edit,
                                       max_shift=c.max_shift, residual_blur=c.residual_blur,
                                       style_dim=c.style_dim, style_init=c.style_init),
                         "d": PatchDiscriminator(c.ndf, num_classes=k, image_size=image_size,
                                                 conditional=c.conditional_d,
                                                 score_gain=c.d_score_gain,
                                                 spectral=c.d_spectral_norm,
                                                 extra_layers=c.d_extra_layers)}
            if c.lambda_sty > 0:  # trained by the generator's loss, in its optimiser
                self.nets["e"] = StyleEncoder(c.ndf, k, c.style_dim)
            if c.edit == "paste":  # no parameters: written from batches, read when sampling
                self.nets["bank"] = ReferenceBank(k, c.reference_bank, image_size)
        generator_side = [p for n in ("g", "e") if n in self.nets
                          for p in self.nets[n].parameters()]
        self.use_adam_with_linear_decay(
            {"g": generator_side, "d": list(self.nets["d"].parameters())},
            {"g": c.lr, "d": c.lr * c.d_lr_mult}, c.beta1)
        if c.ema_kimg > 0:  # a frozen copy, never given to an optimiser
            self.nets["g_ema"] = frozen_copy(self.nets["g"])

    def streams(self, labels: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
        if self.config.edit == "paste":
            counts = torch.bincount(labels, minlength=len(self.classes))
            if bool((counts < 2).any()):
                raise ConfigError("stargan: edit 'paste' needs at least two training faces "
                                  "of every emotion (it pastes from one, and from another on "
                                  "the way back); too few: " + ", ".join(
                                      e for e, n in zip(self.classes, counts.tolist(),
                                                        strict=True) if n < 2))
        if self.config.balanced:
            return balanced_streams(labels, len(self.classes), self.config.batch_size)
        return super().streams(labels)

    def _train_step(self, real: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = self._edit_batch(real, labels)
        losses = self._discriminator_step(batch)
        if self.step % self.config.n_critic:
            return losses
        return {**losses, **self._generator_step(batch)}

    def _edit_batch(self, real: torch.Tensor, labels: torch.Tensor) -> _Batch:
        """Draw each face's target emotion (never its own) and style code, and pick the
        references that the paste edit and reference styles need."""
        c, k = self.config, len(self.classes)
        target = (labels + torch.randint(1, k, labels.shape, device=labels.device)) % k
        style = torch.randn(real.shape[0], c.style_dim, device=real.device) \
            if c.style_dim else None
        # with the paste edit, each edit's reference is a real face of its target emotion,
        # and the way back pastes from another face of the source's emotion: pasting from the
        # source itself would let the way back restore anything by copying it
        batch = _Batch(real, labels, target, style)
        pick = same_label_pick(labels, target) if c.edit == "paste" or c.style_reference \
            else None
        batch.pick = pick
        if c.edit == "paste":
            self.nets["bank"].add(real, labels)
            batch.ref = real[pick]
            batch.rev = real[same_label_pick(labels, labels, other_than_self=True)]
        return batch

    def _discriminator_step(self, b: _Batch) -> dict[str, torch.Tensor]:
        """Make the batch's edits (kept in ``b``) and take one critic step: hinge real/fake,
        classification of real faces, optional mismatch negatives and lazy R1."""
        c, g, d = self.config, self.nets["g"], self.nets["d"]
        real, labels, target = b.real, b.labels, b.target
        lazy_r1 = c.r1_gamma > 0 and self.step % c.r1_every == 0
        with self.autocast():
            if c.style_reference:
                b.style, b.referenced = self._reference_styles(real, labels, target, b.style,
                                                               b.pick)
            b.fake, b.mask = g(real, target, b.style, b.ref)
            seen_real = self._aug(real).detach().requires_grad_(lazy_r1)
            src_real, cls_real = d(seen_real, labels)
            src_fake, _ = d(self._aug(b.fake.detach()), target)
            d_adv = hinge_d_loss(src_real, src_fake)
            d_cls = F.cross_entropy(cls_real.float(), labels)
            loss_d = d_adv + c.lambda_cls * d_cls
            if c.d_mismatch > 0:  # real faces asked about the random other emotion `target`
                # take that share of the negatives' weight from the edits: added on top,
                # the extra negatives pulled every score towards -1 (1,000 steps at 0.5)
                d_wrong = F.relu(1 + d(self._aug(real), target)[0].float()).mean()
                d_fake = F.relu(1 + src_fake.float()).mean()
                loss_d = loss_d + c.d_mismatch * (d_wrong - d_fake)
        losses = {"d_adv": d_adv.detach(), "d_cls": d_cls.detach()}
        if c.d_mismatch > 0:
            losses["d_wrong"] = d_wrong.detach()
        if c.r1_gamma > 0:  # logged every step (0 between lazy steps): the log's mean is
            # the penalty per step, comparable across r1_every
            r1 = r1_penalty(src_real.float(), seen_real) if lazy_r1 else loss_d.new_zeros(())
            r1_term = 0.5 * c.r1_gamma * c.r1_every * r1
            loss_d = loss_d + r1_term
            losses["d_r1"] = r1_term.detach()
        self.optims["d"].zero_grad(set_to_none=True)
        loss_d.backward()
        self.optims["d"].step()
        return losses

    def _generator_step(self, b: _Batch) -> dict[str, torch.Tensor]:
        """One generator step on the batch's edits: fool the critic, be classified as the
        target (by the critic and the guide), reconstruct the original, keep the edit small."""
        c, g, d = self.config, self.nets["g"], self.nets["d"]
        real, labels, target, fake = b.real, b.labels, b.target, b.fake
        set_requires_grad(d, False)
        with self.autocast():
            src_fake, cls_fake = d(self._aug(fake), target)
            g_adv = -src_fake.mean()
            g_cls = F.cross_entropy(cls_fake.float(), target)
            # back under the source face's own code when the encoder reads real faces,
            # else under the zero code
            source_style = self.nets["e"](real, labels) if c.style_reference else None
            rec = F.l1_loss(g(fake, labels, source_style, b.rev)[0], real)
            zero = rec.new_zeros(())
            idt = F.l1_loss(g(real, labels, None, b.rev)[0], real) if c.lambda_identity > 0 \
                else zero
            guide = self.guide_loss(fake, target)
            match = self.feature_match_loss(fake, target, real, labels,
                                            c.lambda_feature_match)
            ref_match = self.reference_match_loss(fake[b.referenced[0]],
                                                   real[b.referenced[1]],
                                                   c.lambda_reference_match) \
                if b.referenced is not None else zero
            ds = (fake - g(real, target, torch.randn_like(b.style), b.ref)[0]).abs().mean() \
                if c.lambda_ds > 0 else zero
            # the code is a fixed target: read back, not moved towards what is read
            sty = (self.nets["e"](fake, target).float() - b.style.detach().float()).abs().mean() \
                if c.lambda_sty > 0 else zero
            loss_g = c.lambda_adv * g_adv + c.lambda_cls * g_cls \
                + c.lambda_rec * (rec + c.lambda_identity * idt) + self.mask_loss(b.mask) \
                + guide + match + ref_match - c.lambda_ds * ds + c.lambda_sty * sty
        self.optims["g"].zero_grad(set_to_none=True)
        loss_g.backward()
        self.optims["g"].step()
        set_requires_grad(d, True)
        if "g_ema" in self.nets:
            update_ema(self.nets["g_ema"], g, ema_beta(self.step, real.shape[0], c.ema_kimg,
                                                       c.ema_rampup))
        optional = {"feature_match": (c.lambda_feature_match, match),
                    "diversity": (c.lambda_ds, ds), "style_rec": (c.lambda_sty, sty),
                    "reference_match": (c.lambda_reference_match, ref_match)}
        return {"g_adv": g_adv.detach(), "g_cls": g_cls.detach(), "rec": rec.detach(),
                "identity": idt.detach(), "mask": b.mask.detach().mean(),
                "guide": guide.detach(),
                **{name: v.detach() for name, (weight, v) in optional.items() if weight > 0}}

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        """What the critic sees of a face: DiffAugment's transforms (the same for real and
        generated faces)."""
        return diff_augment(x, self.config.diffaugment)

    def _reference_styles(self, real: torch.Tensor, labels: torch.Tensor, target: torch.Tensor,
                          random_styles: torch.Tensor, pick: torch.Tensor
                          ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Codes for the edits: for the first half of the batch, the style encoder's code of a
        random real face in the batch whose emotion is the edit's target (a random code where
        the batch has none); random codes for the rest. Also the indices of the edits made
        under a face's code and of those faces."""
        has_target = labels[None, :] == target[:, None]           # edit i x real face j
        found = has_target.any(1)
        found[real.shape[0] // 2:] = False
        edited = found.nonzero().flatten()
        if not len(edited):
            return random_styles, (edited, edited)
        ref = self.nets["e"](real[pick[edited]], target[edited])
        styles = random_styles.to(ref.dtype).clone()
        styles[edited] = ref
        return styles, (edited, pick[edited])

    @torch.no_grad()
    def translate(self, x: torch.Tensor, label: int, seed: int = 0) -> torch.Tensor:
        """Float faces in [-1, 1] on ``self.device`` -> the same faces showing class ``label``
        (by the EMA generator when there is one; with ``style_dim``, under style codes drawn
        from ``seed``; with the paste edit, pasting from kept training faces drawn by
        ``seed``)."""
        g = self.nets.get("g_ema", self.nets["g"])
        was_training = g.training
        g.eval()
        styles = self._noise(x.shape[0], self.config.style_dim, seed) \
            if self.config.style_dim else None
        refs = self.nets["bank"].draw(label, x.shape[0], seed) if "bank" in self.nets else None
        out = []
        for i in range(0, x.shape[0], SAMPLE_CHUNK):
            chunk = x[i : i + SAMPLE_CHUNK]
            labels = torch.full((chunk.shape[0],), label, dtype=torch.long, device=x.device)
            style = None if styles is None else styles[i : i + SAMPLE_CHUNK]
            ref = None if refs is None else refs[i : i + SAMPLE_CHUNK]
            out.append(g(chunk, labels, style, ref)[0])
        g.train(was_training)
        return torch.cat(out) if out else x.new_zeros(0, 1, *x.shape[2:])

    def sample(self, emotion: str, n: int, seed: int,
               sources: torch.Tensor | None = None) -> torch.Tensor:
        """Translate ``sources[i % len(sources)]`` (uint8 real faces, normally of
        ``source_emotion``) into ``emotion``; ``seed`` draws the style codes (without
        ``style_dim`` the edit is deterministic and ``seed`` unused)."""
        label = self.class_index(emotion)
        src = self.check_sources(sources, n)
        return to_uint8(self.translate(to_float(src.to(self.device)), label, seed))
