"""What the editing translators (CycleGAN, StarGAN) share: the mask settings,
guidance (:mod:`feraug.gan.guide`), and the mask penalty.

See :mod:`feraug.gan.editnets` for the networks and :mod:`feraug.gan.guide` for guidance.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator

from feraug.gan.base import GanConfig
from feraug.gan.diffaugment import Policy
from feraug.gan.editnets import total_variation
from feraug.gan.guide import GuideConfig, GuidedGenerator


class EditConfig(GanConfig, GuideConfig):
    """Settings of a mask-editing translator."""

    ngf: int = Field(32, ge=4, description="generator base channels")
    n_blocks: int = Field(3, ge=1, description="residual blocks at 1/4 resolution")
    ndf: int = Field(32, ge=4, description="discriminator base channels")
    lr: float = Field(2e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    lambda_mask: float = Field(0.5, ge=0, description="weight of the mean mask (keeps the "
                               "edit local)")
    lambda_tv: float = Field(0.5, ge=0, description="weight of the mask's total variation")
    edit: Literal["replace", "residual", "warp", "local_warp", "paste"] = Field(
        "replace", description="replace: paint the generated colour over the masked region; "
        "residual: shift the face's own intensities there (keeps its texture); warp: move "
        "the face's own pixels by a smooth field first, then the residual edit; local_warp: "
        "as warp, but the moved pixels replace the face only where the mask is on, so the "
        "regions an emotion leaves alone keep their exact, unresampled pixels; paste "
        "(stargan): as local_warp, but the pixels moved into the masked region are a real "
        "face's of the target emotion (a reference), not the source's own")
    max_shift: float = Field(2.0, gt=0, le=2, description="residual and warp edits: the "
                             "largest change of a pixel's intensity (the range is [-1, 1]); "
                             "2 paints any pixel black or white, 0.5 allows shading only, so "
                             "an expression cannot be a painted bar or hole")
    residual_blur: float = Field(0.0, ge=0, le=4, description="residual and warp edits: "
                                 "Gaussian sigma (pixels) of a blur applied to the intensity "
                                 "change, so an edit is smooth shading rather than pixel-level "
                                 "texture; 0: off")
    diffaugment: Policy = Field("translation", description="DiffAugment policy applied to "
                                "everything the discriminator sees")

    @model_validator(mode="after")
    def _shift_needs_a_residual(self) -> EditConfig:
        if self.edit == "replace" and self.max_shift != 2.0:
            raise ValueError("max_shift bounds the residual and warp edits; edit: replace "
                             "paints colour and ignores it")
        if self.edit == "replace" and self.residual_blur:
            raise ValueError("residual_blur smooths the residual and warp edits; edit: replace "
                             "paints colour and ignores it")
        return self


class EditTranslator(GuidedGenerator):
    """A translator whose generator returns ``(edited, mask)``; optional guidance."""

    needs_sources = True
    config: EditConfig

    def mask_loss(self, mask: torch.Tensor) -> torch.Tensor:
        """Weighted mean mask plus total variation: edits stay small and smooth."""
        c = self.config
        return c.lambda_mask * mask.mean() + c.lambda_tv * total_variation(mask)
