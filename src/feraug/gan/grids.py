"""Sample grids of a generator: the picture a training run saves every so often.

One row per emotion the generator makes, fixed real faces of that emotion on the left and
generated ones on the right; translators get a first row with the source faces they
translate. The real and source faces are drawn once per run with a fixed seed, so grids of
successive steps show the same faces.
"""

from __future__ import annotations

import torch
from torchvision.utils import make_grid

from feraug.data.dataset import FaceDataset
from feraug.gan.base import GeneratorModel

GRID_COLUMNS = 8


def grid_material(model: GeneratorModel, train: FaceDataset, k: int = GRID_COLUMNS
                  ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Fixed real faces per emotion and (for translators) fixed source faces for the grid."""
    gen = torch.Generator().manual_seed(1234)
    order = torch.randperm(len(train), generator=gen)
    labels = train.labels[order]
    real = {e: train.images[order[labels == train.classes.index(e)][:k]]
            for e in model.emotions()}
    sources = None
    if model.needs_sources:
        pick = order if model.source_emotion is None else \
            order[labels == train.classes.index(model.source_emotion)]
        sources = train.images[pick[:k]]
    return real, sources


def sample_grid(model: GeneratorModel, real: dict[str, torch.Tensor],
                sources: torch.Tensor | None, seed: int = 0) -> torch.Tensor:
    """uint8 ``[1, H, W]`` grid: per emotion, real faces then generated ones."""
    k = max([len(v) for v in real.values()] + [1])
    s = model.image_size
    blank = torch.full((k, 1, s, s), 255, dtype=torch.uint8)

    def pad(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, blank[: k - len(x)]])

    rows = [] if sources is None else [pad(sources), blank]
    for emotion, faces in real.items():
        rows += [pad(faces), pad(model.sample(emotion, k, seed, sources))]
    grid = make_grid(torch.cat(rows).float() / 255.0, nrow=2 * k, padding=2, pad_value=1.0)
    return (grid[:1] * 255).round().to(torch.uint8)
