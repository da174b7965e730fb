"""Building blocks shared by the translators beyond :mod:`feraug.gan.editnets`.

- :class:`ImagePool`: the history of generated images that CycleGAN's discriminators see.
"""

from __future__ import annotations

import torch


class ImagePool:
    """A buffer of up to ``size`` generated images (Shrivastava et al. 2017).

    Once full, each incoming image is, with probability 1/2, swapped for a random stored one
    (which is returned instead). Uses torch's global RNG, so it resumes exactly.
    """

    def __init__(self, size: int = 50) -> None:
        self.size = size
        self.images: torch.Tensor | None = None

    def query(self, batch: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same size mixing new and historical images."""
        batch = batch.detach()
        if self.size == 0:
            return batch
        out = batch.clone()
        for i in range(batch.shape[0]):
            n = 0 if self.images is None else self.images.shape[0]
            if n < self.size:
                img = batch[i : i + 1]
                self.images = img.clone() if self.images is None else torch.cat([self.images, img])
            elif torch.rand(()) < 0.5:
                j = int(torch.randint(n, ()))
                out[i] = self.images[j]
                self.images[j] = batch[i]
        return out

    def state_dict(self) -> dict:
        """Pool contents (CPU) for checkpoints."""
        return {"images": None if self.images is None else self.images.cpu()}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        """Restore :meth:`state_dict` output onto ``device``."""
        images = state.get("images")
        self.images = None if images is None else images.to(device)
