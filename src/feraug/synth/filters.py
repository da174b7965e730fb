"""The sample filters of ``feraug synth``: a classifier-confidence quality filter, a
memorisation guard (distance to the nearest real training image) and, for translators, the
size of the edit (how much a sample differs from its own source face)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from feraug.classifier.infer import predict_proba
from feraug.errors import ConfigError
from feraug.models.checkpoint import LoadedClassifier, load_classifier


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize uint8 ``[N,1,S,S]`` faces to ``size`` (area when shrinking, bilinear otherwise)."""
    if images.shape[-1] == size:
        return images
    mode = "area" if images.shape[-1] > size else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    out = F.interpolate(images.float(), size=(size, size), mode=mode, **kwargs)
    return out.round_().clamp_(0, 255).to(torch.uint8)


class QualityFilter:
    """Keep a sample only when a trained classifier gives its requested emotion a probability
    of at least ``tau`` (with the classifier's own crop and test-time augmentation).
    ``checkpoint`` ``"bundled"`` is the default model that ships inside feraug."""

    def __init__(self, checkpoint: str | Path, tau: float, device: str | torch.device = "cpu",
                 batch_size: int = 512) -> None:
        from feraug.bundled import checkpoint_path

        self.checkpoint = checkpoint_path(checkpoint)
        self.tau = float(tau)
        self.tau_by_emotion: dict[str, float] = {}
        self.batch_size = batch_size
        self.loaded: LoadedClassifier = load_classifier(self.checkpoint, device)

    def check_emotions(self, emotions: list[str]) -> None:
        """ConfigError when the classifier cannot judge one of ``emotions``."""
        missing = [e for e in emotions if e not in self.loaded.classes]
        if missing:
            raise ConfigError(f"{self.checkpoint}: filter classifier has no class "
                              f"{', '.join(missing)} (its classes: "
                              f"{', '.join(self.loaded.classes)})")

    def probabilities(self, images: torch.Tensor, emotion: str) -> torch.Tensor:
        """Probability of ``emotion`` for each uint8 face ``[N,1,S,S]``."""
        x = resize_uint8(images, self.loaded.image_size)
        probs = predict_proba(self.loaded.model, x, self.loaded.crop_size, self.loaded.tta,
                              self.batch_size)
        return probs[:, self.loaded.classes.index(emotion)].float()

    def calibrate(self, images: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...],
                  emotions: list[str], quantile: float) -> dict[str, float]:
        """One tau per emotion: the ``quantile`` of this classifier's probability of the
        emotion on the real faces ``images`` of that emotion (``labels`` index ``classes``,
        which hold every emotion); an emotion without such faces keeps ``tau``. Sets and
        returns ``tau_by_emotion``."""
        for emotion in emotions:
            mine = images[labels == classes.index(emotion)]
            if len(mine):
                p = self.probabilities(mine, emotion)
                self.tau_by_emotion[emotion] = float(torch.quantile(p, quantile))
        return dict(self.tau_by_emotion)

    def tau_for(self, emotion: str) -> float:
        """The threshold ``emotion`` is held to (its calibrated tau, else ``tau``)."""
        return self.tau_by_emotion.get(emotion, self.tau)

    def keep(self, images: torch.Tensor, emotion: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mask of samples to keep, their probabilities)``."""
        p = self.probabilities(images, emotion)
        return p >= self.tau_for(emotion), p


class MemorisationGuard:
    """Drop samples that are (near) copies of a real training image.

    Distance is the RMS pixel difference with pixels scaled to [0, 1] (L2 distance divided by
    the square root of the pixel count), to the nearest of *all* real training images. The
    search is batched and chunked over the real set (``||x||^2 + ||r||^2 - 2 x.r`` with one
    matrix product per chunk, i.e. ``torch.cdist``'s fast path without its overhead); the
    distance to the nearest found is then recomputed exactly. The real images are kept as
    float when that takes at most ``cache_bytes``, else converted chunk by chunk.
    """

    def __init__(self, real_train: torch.Tensor, delta: float,
                 device: str | torch.device = "cpu", chunk: int = 8192,
                 cache_bytes: int = 1 << 30) -> None:
        if real_train.dim() != 4 or real_train.dtype != torch.uint8:
            raise ValueError("real_train must be uint8 [N,1,S,S]")
        self.delta = float(delta)
        self.device = torch.device(device)
        self.size = int(real_train.shape[-1])
        self.chunk = max(1, chunk)
        self.pixels = self.size * self.size
        flat = real_train.reshape(real_train.shape[0], -1).to(self.device)
        self.cached = flat.numel() * 4 <= cache_bytes
        self.real = flat.float().div_(255.0) if self.cached else flat
        self.real_sq = torch.cat([self._ref(s).pow(2).sum(1)
                                  for s in range(0, flat.shape[0], self.chunk)]) \
            if flat.shape[0] else torch.zeros(0, device=self.device)

    def _ref(self, start: int) -> torch.Tensor:
        ref = self.real[start : start + self.chunk]
        return ref if self.cached else ref.float().div_(255.0)

    @torch.no_grad()
    def nearest(self, images: torch.Tensor, exclude: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(RMS distance, index into the real train images)`` of each sample's nearest.
        ``exclude`` (one index per sample, -1 for none) leaves that real image out of the
        sample's search: a translator's own source face."""
        if images.shape[-1] != self.size:
            raise ValueError(f"samples are {images.shape[-1]} px, real images {self.size} px")
        x = images.reshape(images.shape[0], -1).to(self.device).float().div_(255.0)
        best = torch.full((x.shape[0],), math.inf, device=self.device)
        where = torch.zeros(x.shape[0], dtype=torch.long, device=self.device)
        for start in range(0, self.real.shape[0], self.chunk):
            ref = self._ref(start)
            # squared distance minus ||x||^2, which does not change the arg-min
            part = torch.addmm(self.real_sq[start : start + len(ref)][None], x, ref.T,
                               alpha=-2.0)
            if exclude is not None:
                rows = ((exclude >= start) & (exclude < start + len(ref))).nonzero().flatten()
                part[rows.to(self.device), (exclude[rows] - start).to(self.device)] = math.inf
            d, i = part.min(dim=1)
            better = d < best
            best = torch.where(better, d, best)
            where = torch.where(better, i + start, where)
        nearest = self.real[where]
        nearest = nearest if self.cached else nearest.float().div_(255.0)
        rms = (x - nearest).pow(2).mean(1).sqrt()
        return rms.cpu(), where.cpu()

    def keep(self, images: torch.Tensor, exclude: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mask of samples far enough from every real training image, their distances)``;
        ``exclude`` as in :meth:`nearest`."""
        if images.shape[0] == 0 or self.real.shape[0] <= (exclude is not None):
            return torch.ones(images.shape[0], dtype=torch.bool), torch.full(
                (images.shape[0],), math.inf)
        rms, _ = self.nearest(images, exclude)
        return rms >= self.delta, rms


EDIT_QUANTILE = 0.99  # a local edit (brows, mouth) moves a few percent of the pixels


def edit_size(images: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """How much each translated face differs from its source: the 99th percentile of the
    absolute pixel change (pixels in [0, 1]). A whole-face RMS would call a clear but local
    edit (a lowered brow, a smile) a copy; this asks that at least 1% of the pixels moved."""
    change = (images.float() - sources.float()).abs().div_(255.0).flatten(1)
    if change.shape[0] == 0:
        return change.new_zeros(0)
    return change.quantile(EDIT_QUANTILE, dim=1)
