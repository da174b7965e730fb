"""Expression guidance: a frozen FER classifier whose cross-entropy towards the target emotion
is a generator loss.

A discriminator alone gives a translator a weak, late signal about *which* expression it
draws; a classifier trained on the same train split gives a strong one from the first step.
Guided generators can learn features that fool their guide without showing the expression to
anyone else, so a generator is always scored by a different classifier (``feraug gan score``
refuses the guide as judge; its SHA-256 is stored in the generator's meta for that check).

``guide`` may name several checkpoints, an ensemble: the loss is the mean of the members'
losses, so a face must convince every member, and a shortcut that fools one network (a dark
bar where its eyes are expected) pays only its share.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field, field_validator

from feraug.bundled import BUNDLED, checkpoint_path
from feraug.errors import ConfigError
from feraug.gan.base import GeneratorModel
from feraug.gan.diffaugment import Policy, diff_augment
from feraug.io import file_sha256
from feraug.models.checkpoint import load_frozen_classifier, output_index

__all__ = ["BUNDLED", "Guide", "GuideConfig", "GuidedGenerator", "guide_paths"]


class Guide:
    """A frozen classifier checkpoint used as a differentiable expression loss."""

    def __init__(self, path: str | Path, classes: tuple[str, ...], image_size: int,
                 device: torch.device) -> None:
        path = checkpoint_path(path)
        loaded = load_frozen_classifier(path, device, "guide classifier")
        missing = [c for c in classes if c not in loaded.classes]
        if missing:
            raise ConfigError(f"{path}: the guide classifier lacks classes {missing} "
                              f"(it has {', '.join(loaded.classes)})")
        if loaded.image_size != image_size:
            raise ConfigError(f"{path}: the guide expects {loaded.image_size} px faces, the "
                              f"generator makes {image_size} px")
        self.path, self.sha256 = path, file_sha256(path)
        self.model, self.crop = loaded.model, loaded.crop_size
        #: generator class index -> guide class index
        self.index = output_index(loaded, classes, device)

    def to(self, device: torch.device) -> Guide:
        """Move the frozen classifier to ``device``."""
        self.model.to(device)
        self.index = self.index.to(device)
        return self

    def logits(self, faces: torch.Tensor) -> torch.Tensor:
        """Guide logits for float faces in [-1, 1] (the classifiers' own input scale),
        centre-cropped as the classifier was trained; differentiable w.r.t. ``faces``."""
        return self.model(self._input(faces))

    def features(self, faces: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``[N, D]`` for float faces in [-1, 1], cropped as for
        :meth:`logits`; differentiable w.r.t. ``faces``."""
        return self.model.embed(self._input(faces)).flatten(1)

    def _input(self, faces: torch.Tensor) -> torch.Tensor:
        """``faces`` centre-cropped to the classifier's crop, channels-last."""
        if self.crop is not None and self.crop < faces.shape[-1]:
            off = (faces.shape[-1] - self.crop) // 2
            faces = faces[..., off : off + self.crop, off : off + self.crop]
        return faces.contiguous(memory_format=torch.channels_last)

    def loss(self, faces: torch.Tensor, labels: torch.Tensor,
             confidence: float | None = None) -> torch.Tensor:
        """Cross-entropy of the guide's prediction towards ``labels`` (generator indices).

        With ``confidence``, a face whose wanted emotion already has at least that
        probability contributes nothing (its cross-entropy is cut at ``-log(confidence)``)."""
        ce = F.cross_entropy(self.logits(faces).float(), self.index[labels], reduction="none")
        if confidence is not None:
            ce = F.relu(ce + math.log(confidence))
        return ce.mean()


class GuideConfig(BaseModel):
    """Guidance settings, mixed into the config of every generator that can be guided."""

    guide: str | list[str] | None = Field(
        None, description="frozen classifier checkpoint (or 'bundled': feraug's default "
        "model) whose cross-entropy towards the wanted emotion guides the generator; a list "
        "of checkpoints is an ensemble (the mean of their losses guides)")
    lambda_guide: float = Field(1.0, ge=0, description="weight of the guide's loss")
    guide_blur: bool = Field(True, description="show the guide the generated faces through a "
                             "half-resolution bottleneck: expressions survive it, the "
                             "high-frequency textures that fool a classifier do not")
    guide_augment: Policy = Field("translation,color", description="DiffAugment policy "
                                  "applied (with a random flip) to the faces the guide sees: "
                                  "a face must show the emotion under small shifts, so "
                                  "pixel patterns that only fool the guide pay less")
    guide_confidence: float | None = Field(None, gt=0, lt=1, description="stop pushing a "
                                           "face once the guide gives its wanted emotion at "
                                           "least this probability: the expression is there, "
                                           "and a stronger push buys only a caricature "
                                           "(none: push all the way)")

    @field_validator("guide")
    @classmethod
    def _one_entry_per_guide(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError("a guide ensemble names at least one checkpoint, each once")
        return value


def guide_paths(guide: str | list[str] | None) -> list[str]:
    """The checkpoints a ``guide`` value names (one, an ensemble's, or none)."""
    if not guide:
        return []
    return [guide] if isinstance(guide, str) else list(guide)


class GuidedGenerator(GeneratorModel):
    """A generator with an optional frozen guide or guide ensemble (``config`` has
    :class:`GuideConfig`'s fields). The guides' SHA-256 go into ``meta`` so the scorer can
    refuse any of them as judge."""

    _guides: list[Guide] | None = None

    def prepare(self) -> None:
        """Load the guide (when configured) and record its hash in the generator's meta."""
        self.guides()

    def guides(self) -> list[Guide]:
        """The frozen guide classifiers (none: unguided), loaded on first use (a resumed run
        loads them here)."""
        paths = guide_paths(self.config.guide)
        if paths and self._guides is None:
            # building a classifier draws initial weights: keep the training RNG untouched
            # so that a resumed run continues exactly
            with torch.random.fork_rng(devices=[]):
                guides = [Guide(p, self.classes, self.image_size, self.device) for p in paths]
            hashes = tuple(g.sha256 for g in guides)
            recorded = self.meta.guide_hashes()
            if recorded and recorded != hashes:  # a resumed run must keep its guides
                changed = [str(g.path) for i, g in enumerate(guides)
                           if i >= len(recorded) or recorded[i] != g.sha256]
                raise ConfigError(f"{', '.join(changed) or guides[0].path}: this generator was "
                                  "trained with another guide file (its hash differs from the "
                                  "one recorded); restore that file or train a new generator")
            self._guides = guides
            self.update_meta({"guide_sha256": hashes[0]} if len(hashes) == 1
                             else {"guide_sha256s": list(hashes)})
        return self._guides or []

    def to(self, device: str | torch.device) -> GuidedGenerator:
        super().to(device)
        for guide in self._guides or []:
            guide.to(self.device)
        return self

    def guide_loss(self, faces: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Weighted guide cross-entropy towards ``labels``, averaged over an ensemble's
        members, which all see the same views (0 without a guide)."""
        guides = self.guides()
        if not guides or self.config.lambda_guide == 0:
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
        losses = [g.loss(views, labels, self.config.guide_confidence) for g in guides]
        return self.config.lambda_guide * torch.stack(losses).mean()

    def feature_match_loss(self, faces: torch.Tensor, labels: torch.Tensor,
                           real: torch.Tensor, real_labels: torch.Tensor,
                           weight: float) -> torch.Tensor:
        """``weight`` x the feature-matching loss: per emotion with at
        least two made and two real faces in the batch, the unbiased squared MMD with a
        linear kernel (the squared distance of the feature means, without the noise terms
        that would reward identical faces) between the guides' features of ``faces`` made
        as that emotion and of the ``real`` faces of it, divided by the real features' mean
        squared norm; averaged over emotions and guides (0 when off or none qualifies)."""
        guides = self.guides()
        if not guides or weight == 0:
            return faces.new_zeros(())
        wanted = [k for k in labels.unique().tolist()
                  if int((labels == k).sum()) >= 2 and int((real_labels == k).sum()) >= 2]
        if not wanted:
            return faces.new_zeros(())
        losses = []
        for g in guides:
            made = g.features(faces).float()
            with torch.no_grad():
                ref = g.features(real).float()
            scale = ref.square().sum(1).mean().clamp_min(1e-8)
            losses += [linear_mmd2(made[labels == k], ref[real_labels == k]) / scale
                       for k in wanted]
        return weight * torch.stack(losses).mean()


    def reference_match_loss(self, faces: torch.Tensor, references: torch.Tensor,
                             weight: float) -> torch.Tensor:
        """``weight`` x the mean cosine distance between the guides' features of each made
        face and of the real face whose style code made it, so that a code read from a face
        asks for that face's version of the emotion (0 when off, unguided or no pair)."""
        guides = self.guides()
        if not guides or weight == 0 or len(faces) == 0:
            return faces.new_zeros(())
        losses = []
        for g in guides:
            with torch.no_grad():
                ref = g.features(references).float()
            losses.append(1 - F.cosine_similarity(g.features(faces).float(), ref).mean())
        return weight * torch.stack(losses).mean()


def linear_mmd2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased squared MMD of samples ``x [n, D]`` and ``y [m, D]`` (n, m >= 2) with the
    linear kernel: ``|mean x - mean y|^2`` with each mean's own-sample terms left out."""
    n, m = len(x), len(y)
    sx, sy = x.sum(0), y.sum(0)
    kxx = (sx.dot(sx) - x.square().sum()) / (n * (n - 1))
    kyy = (sy.dot(sy) - y.square().sum()) / (m * (m - 1))
    return kxx + kyy - 2 * sx.dot(sy) / (n * m)
