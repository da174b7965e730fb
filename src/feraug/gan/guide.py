"""Expression guidance: a frozen FER classifier whose cross-entropy towards the target emotion
is a generator loss.

A discriminator alone gives a translator a weak, late signal about *which* expression it
draws; a classifier trained on the same train split gives a strong one from the first step.
Guided generators can learn features that fool their guide without showing the expression to
anyone else, so a generator is always scored by a different classifier (``feraug gan score``
refuses the guide as judge; its SHA-256 is stored in the generator's meta for that check).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from feraug.bundled import default_model_path
from feraug.errors import ConfigError
from feraug.io import file_sha256

#: ``guide: bundled`` names the default model that ships inside the package.
BUNDLED = "bundled"


class Guide:
    """A frozen classifier checkpoint used as a differentiable expression loss."""

    def __init__(self, path: str | Path, classes: tuple[str, ...], image_size: int,
                 device: torch.device) -> None:
        from feraug.training.checkpoint import load_classifier

        path = default_model_path() if str(path) == BUNDLED else Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: guide classifier checkpoint not found")
        loaded = load_classifier(path, device)
        missing = [c for c in classes if c not in loaded.classes]
        if missing:
            raise ConfigError(f"{path}: the guide classifier lacks classes {missing} "
                              f"(it has {', '.join(loaded.classes)})")
        if loaded.image_size != image_size:
            raise ConfigError(f"{path}: the guide expects {loaded.image_size} px faces, the "
                              f"generator makes {image_size} px")
        self.path, self.sha256 = path, file_sha256(path)
        self.model = loaded.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.crop = loaded.crop_size
        #: generator class index -> guide class index
        self.index = torch.tensor([loaded.classes.index(c) for c in classes], device=device)

    def to(self, device: torch.device) -> Guide:
        """Move the frozen classifier to ``device``."""
        self.model.to(device)
        self.index = self.index.to(device)
        return self

    def logits(self, faces: torch.Tensor) -> torch.Tensor:
        """Guide logits for float faces in [-1, 1] (the classifiers' own input scale),
        centre-cropped as the classifier was trained; differentiable w.r.t. ``faces``."""
        if self.crop is not None and self.crop < faces.shape[-1]:
            off = (faces.shape[-1] - self.crop) // 2
            faces = faces[..., off : off + self.crop, off : off + self.crop]
        return self.model(faces.contiguous(memory_format=torch.channels_last))

    def loss(self, faces: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the guide's prediction towards ``labels`` (generator indices)."""
        return F.cross_entropy(self.logits(faces).float(), self.index[labels])
