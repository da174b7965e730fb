"""Real faces a reference-guided translator keeps for sampling.

A translator that pastes regions of real faces of the target emotion (StarGAN's ``paste``
edit) needs such faces when it samples, where it is given source faces only. It keeps them
itself: :class:`ReferenceBank` holds up to ``size`` training faces per emotion, written from
the training batches it sees (a ring per emotion, so the last ``size`` faces of each emotion
stay), in the generator's checkpoint. The faces are the training split's, like everything
the generator learned from; sampling draws among them with the sample's seed.
"""

from __future__ import annotations

import torch
from torch import nn

from feraug.errors import ConfigError
from feraug.gan.base import quantise, to_float


class ReferenceBank(nn.Module):
    """``size`` uint8 faces per class (buffers, so checkpoints and ``.to`` carry them) and
    how many faces of each class were ever written."""

    def __init__(self, num_classes: int, size: int, image_size: int) -> None:
        super().__init__()
        self.register_buffer("faces", torch.zeros(num_classes, size, 1, image_size, image_size,
                                                  dtype=torch.uint8))
        self.register_buffer("seen", torch.zeros(num_classes, dtype=torch.long))

    @torch.no_grad()
    def add(self, faces: torch.Tensor, labels: torch.Tensor) -> None:
        """Write float faces in [-1, 1] into their classes' rings (the oldest are replaced)."""
        size = self.faces.shape[1]
        one_hot = nn.functional.one_hot(labels, self.faces.shape[0])
        rank = (one_hot.cumsum(0) - 1).gather(1, labels[:, None]).squeeze(1)  # within class
        slot = (self.seen[labels] + rank) % size
        self.faces[labels, slot] = quantise(faces)
        self.seen += one_hot.sum(0)

    def draw(self, label: int, n: int, seed: int) -> torch.Tensor:
        """``n`` float faces in [-1, 1] of class ``label``, drawn with replacement among those
        kept, the same for the same ``seed``."""
        kept = int(min(self.seen[label], self.faces.shape[1]))
        if kept == 0:
            raise ConfigError("this translator has kept no real face of the emotion asked for "
                              "(it saw none in training), so it has nothing to paste from")
        gen = torch.Generator().manual_seed(int(seed))
        pick = torch.randint(kept, (n,), generator=gen).to(self.faces.device)
        return to_float(self.faces[label, pick])
