"""The scorer's figures: best and worst samples per emotion by judge confidence, the samples
closest to a real training face beside that face, and (translators) the first samples, not
chosen by any score, under their sources."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import make_grid

from feraug.report import pyplot, save_figure

COLUMNS = 8


def _labelled_grid(rows: list[tuple[str, torch.Tensor]], path: Path, title: str) -> Path:
    """One row of uint8 faces per label, white padding, row labels on the left."""
    size = max((r.shape[-1] for _, r in rows if len(r)), default=48)
    blank = torch.full((COLUMNS, 1, size, size), 255, dtype=torch.uint8)
    cells = torch.cat([torch.cat([r[:COLUMNS], blank[: COLUMNS - len(r[:COLUMNS])]])
                       for _, r in rows]) if rows else blank
    pad = 2
    grid = make_grid(cells, nrow=COLUMNS, padding=pad, pad_value=255)[0].numpy()
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.8 + 0.8 * COLUMNS, 0.5 + 0.8 * max(len(rows), 1)))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    step = size + pad
    ax.set_yticks([pad + step * i + size / 2 for i in range(len(rows))],
                  [name for name, _ in rows])
    ax.set_xticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title)
    return save_figure(fig, path)


def save_best_worst(figures: dict[str, dict], path: Path) -> Path:
    """Per emotion: the samples the judge is most and least sure show it."""
    rows = []
    for emotion, f in figures.items():
        order = f["confidence"].argsort(descending=True)
        rows += [(f"{emotion} best", f["faces"][order[:COLUMNS]]),
                 (f"{emotion} worst", f["faces"][order.flip(0)[:COLUMNS]])]
    return _labelled_grid(rows, path, "judge's most / least confident samples")


def save_nearest_pairs(figures: dict[str, dict], path: Path) -> Path:
    """Per emotion: the samples nearest to a real training face (pixel RMS), each above the
    real face it is nearest to."""
    rows = []
    for emotion, f in figures.items():
        order = f["rms"].argsort()[:COLUMNS]
        rows += [(f"{emotion} sample", f["faces"][order]),
                 ("nearest real", f["nearest"][order])]
    return _labelled_grid(rows, path, "samples closest to a real training face")


def save_first_pairs(figures: dict[str, dict], path: Path) -> Path | None:
    """Translators: the first samples per emotion (no selection) under the source faces they
    were made from; None for generators without sources."""
    rows = []
    for emotion, f in figures.items():
        if f.get("sources") is None:
            return None
        rows += [("source", f["sources"][:COLUMNS]), (f"{emotion}", f["faces"][:COLUMNS])]
    return _labelled_grid(rows, path, "first samples (unselected) under their sources")
