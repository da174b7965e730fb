"""What the editing translators (CycleGAN, StarGAN) share: the mask and guidance settings,
the lazily loaded guide, and the mask penalty.

See :mod:`feraug.gan.editnets` for the networks and :mod:`feraug.gan.guide` for guidance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from feraug.gan.base import GanConfig, GeneratorModel
from feraug.gan.diffaugment import Policy, diff_augment
from feraug.gan.editnets import total_variation
from feraug.gan.guide import Guide


class EditConfig(GanConfig):
    """Settings of a mask-editing translator."""

    ngf: int = Field(32, ge=4, description="generator base channels")
    n_blocks: int = Field(3, ge=1, description="residual blocks at 1/4 resolution")
    ndf: int = Field(32, ge=4, description="discriminator base channels")
    lr: float = Field(2e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    lambda_mask: float = Field(0.5, ge=0, description="weight of the mean mask (keeps the "
                               "edit local)")
    lambda_tv: float = Field(0.5, ge=0, description="weight of the mask's total variation")
    guide: str | None = Field(None, description="frozen classifier checkpoint (or "
                              "'bundled': feraug's default model) whose cross-entropy "
                              "towards the target emotion guides the generator")
    lambda_guide: float = Field(1.0, ge=0, description="weight of the guide's loss")
    guide_blur: bool = Field(True, description="show the guide the edited faces through a "
                             "half-resolution bottleneck: expressions survive it, the "
                             "high-frequency textures that fool a classifier do not")
    guide_augment: Policy = Field("translation,color", description="DiffAugment policy "
                                  "applied (with a random flip) to the faces the guide sees: "
                                  "an edit must show the emotion under small shifts, so "
                                  "pixel patterns that only fool the guide pay less")
    diffaugment: Policy = Field("translation", description="DiffAugment policy applied to "
                                "everything the discriminator sees")


class EditTranslator(GeneratorModel):
    """A translator whose generator returns ``(edited, mask)``; optional guidance."""

    needs_sources = True
    config: EditConfig

    def __init__(self, config: EditConfig, classes: tuple[str, ...], image_size: int) -> None:
        super().__init__(config, classes, image_size)
        self._guide: Guide | None = None

    def prepare(self) -> None:
        """Load the guide (when configured) and record its hash in the generator's meta."""
        if self.config.guide:
            self.guide()

    def guide(self) -> Guide | None:
        """The frozen guide classifier, loaded on first use (a resumed run loads it here)."""
        if self.config.guide and self._guide is None:
            # building the classifier draws initial weights: keep the training RNG untouched
            # so that a resumed run continues exactly
            with torch.random.fork_rng(devices=[]):
                self._guide = Guide(self.config.guide, self.classes, self.image_size,
                                    self.device)
            self.meta["guide_sha256"] = self._guide.sha256
        return self._guide

    def to(self, device: str | torch.device) -> EditTranslator:
        super().to(device)
        if self._guide is not None:
            self._guide.to(self.device)
        return self

    def guide_loss(self, faces: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Weighted guide cross-entropy towards ``labels`` (0 without a guide)."""
        guide = self.guide()
        if guide is None or self.config.lambda_guide == 0:
            return faces.new_zeros(())
        views = faces
        if self.config.guide_blur:
            size = faces.shape[-2:]
            views = F.interpolate(F.interpolate(views, scale_factor=0.5, mode="bilinear",
                                                antialias=True, align_corners=False),
                                  size=size, mode="bilinear", align_corners=False)
        views = diff_augment(views, self.config.guide_augment)
        flip = torch.rand(len(views), 1, 1, 1, device=views.device) < 0.5
        views = torch.where(flip, views.flip(-1), views)
        return self.config.lambda_guide * guide.loss(views, labels)

    def mask_loss(self, mask: torch.Tensor) -> torch.Tensor:
        """Weighted mean mask plus total variation: edits stay small and smooth."""
        c = self.config
        return c.lambda_mask * mask.mean() + c.lambda_tv * total_variation(mask)
