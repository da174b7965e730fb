"""Knowledge distillation (Hinton et al. 2015): a frozen teacher's softened predictions join
the training loss, so that one small model can learn what an ensemble of seeds (``feraug
ensemble``) or a larger network knows, beyond the hard labels.

The teacher sees exactly the augmented crops the student sees (so it must take the same crop
size), in eval mode and without gradients; it draws no random numbers, so a resumed run stays
exact.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.nn import functional as F

from feraug.errors import ConfigError
from feraug.models.checkpoint import load_frozen_classifier, output_index


class Teacher:
    """A frozen classifier whose temperature-softened probabilities the student matches."""

    def __init__(self, path: str | Path, classes: tuple[str, ...], image_size: int,
                 crop_size: int | None, device: torch.device, temperature: float,
                 weight: float) -> None:
        path = Path(path)
        loaded = load_frozen_classifier(path, device, "teacher")
        if set(loaded.classes) != set(classes):
            raise ConfigError(f"{path}: the teacher's classes ({', '.join(loaded.classes)}) "
                              f"differ from the data's ({', '.join(classes)})")
        if (loaded.image_size, loaded.crop_size) != (image_size, crop_size):
            raise ConfigError(f"{path}: the teacher takes {loaded.image_size} px faces cropped "
                              f"to {loaded.crop_size}; the student {image_size} cropped to "
                              f"{crop_size} (distillation needs the same inputs)")
        self.model = loaded.model
        #: data class index -> teacher logit index
        self.index = output_index(loaded, classes, device)
        self.temperature, self.weight = temperature, weight

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's logits for model inputs ``x``, in the data's class order."""
        return self.model(x).float()[:, self.index]

    def blend(self, hard_loss: torch.Tensor, logits: torch.Tensor,
              x: torch.Tensor) -> torch.Tensor:
        """``(1 - weight) * hard_loss + weight * T^2 * KL(teacher_T || student_T)``; the T^2
        keeps the soft term's gradient scale independent of the temperature."""
        t = self.temperature
        soft = F.kl_div(F.log_softmax(logits.float() / t, dim=1),
                        F.log_softmax(self.logits(x) / t, dim=1),
                        reduction="batchmean", log_target=True) * t * t
        return (1 - self.weight) * hard_loss + self.weight * soft
