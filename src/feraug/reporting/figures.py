"""Report figures: sample grids, training curves, bar charts, labelled image grids.

Written with matplotlib's Agg backend (no display needed), atomically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from feraug.data.dataset import FaceDataset
from feraug.io import atomic_write_bytes


def pyplot():
    """matplotlib.pyplot on the Agg backend (imported lazily: it is slow to import)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def sample_grid_tensor(ds: FaceDataset, per_class: int = 8, split: str | None = None,
                       seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """A ``[R * per_class, 1, S, S]`` uint8 batch: one row of random samples per class that
    has images (white cells where a class has fewer), and those class names in row order
    (every class when none has images)."""
    gen = torch.Generator().manual_seed(seed)
    pool = ds.indices(split) if split is not None else torch.arange(len(ds))
    labels = ds.labels[pool]
    rows = [c for c in range(ds.num_classes) if bool((labels == c).any())] or \
        list(range(ds.num_classes))
    cells = torch.full((len(rows) * per_class, 1, ds.size, ds.size), 255, dtype=torch.uint8)
    for r, c in enumerate(rows):
        idx = pool[labels == c]
        pick = idx[torch.randperm(len(idx), generator=gen)[:per_class]]
        cells[r * per_class : r * per_class + len(pick)] = ds.images[pick]
    return cells, [ds.classes[c] for c in rows]


def save_sample_grid(ds: FaceDataset, path: str | Path, per_class: int = 8,
                     split: str | None = None, seed: int = 0, title: str | None = None) -> Path:
    """Save a PNG with one row of sample faces per class, labelled with the class name."""
    from torchvision.utils import make_grid

    cells, names = sample_grid_tensor(ds, per_class, split, seed)
    pad = 2
    grid = make_grid(cells, nrow=per_class, padding=pad, pad_value=255)[0].numpy()
    plt = pyplot()
    scale = max(ds.size / 48, 1.0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * per_class * scale,
                                    0.3 + 0.8 * len(names) * scale))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    step = ds.size + pad
    ax.set_yticks([pad + step * i + ds.size / 2 for i in range(len(names))], names)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def save_training_curves(history: Sequence[dict], path: str | Path, title: str | None = None
                         ) -> Path:
    """Plot per-epoch ``train_loss``, validation ``val_accuracy``/``val_macro_f1`` and ``lr``
    (whichever are present) from a training history to a PNG."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]

    def series(key: str) -> list[float] | None:
        vals = [h.get(key) for h in history]
        return None if all(v is None for v in vals) else [math.nan if v is None else v
                                                          for v in vals]

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    panels = [
        (axes[0], [("train_loss", "train loss"), ("val_loss", "val loss")], "loss", False),
        (axes[1], [("val_accuracy", "val accuracy"), ("val_macro_f1", "val macro-F1")],
         "score", False),
        (axes[2], [("lr", "learning rate")], "learning rate", True),
    ]
    for ax, keys, ylabel, log in panels:
        for key, label in keys:
            ys = series(key)
            if ys is not None:
                ax.plot(epochs, ys, marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ylabel == "score":
            ax.set_ylim(0.0, 1.02)
        if log and ax.lines:
            ax.set_yscale("log")
        if ax.lines:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def save_bar_chart(labels: Sequence[str], values: Sequence[float], path: str | Path,
                   errors: Sequence[float] | None = None, ylabel: str = "",
                   title: str | None = None) -> Path:
    """A simple bar chart (e.g. per-class recall, or methods' mean with CI error bars)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(labels) + 1.5), 3.4))
    ax.bar(range(len(labels)), values, yerr=errors, capsize=3 if errors is not None else 0)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def save_figure(fig, path: str | Path) -> Path:
    """Write a matplotlib figure as PNG atomically (then close it); returns the path."""
    import io

    plt = pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    path = Path(path)
    atomic_write_bytes(buf.getvalue(), path)
    return path


def save_labelled_grid(rows: Sequence[tuple[str, torch.Tensor]], path: str | Path, title: str,
                       columns: int = 8) -> Path:
    """A PNG of uint8 faces ``[n, 1, S, S]``, one row per ``(label, faces)`` (at most
    ``columns`` each, white padding), row labels on the left and ``title`` on top."""
    from torchvision.utils import make_grid

    size = max((r.shape[-1] for _, r in rows if len(r)), default=48)
    blank = torch.full((columns, 1, size, size), 255, dtype=torch.uint8)
    cells = torch.cat([torch.cat([r[:columns], blank[: columns - len(r[:columns])]])
                       for _, r in rows]) if rows else blank
    pad = 2
    grid = make_grid(cells, nrow=columns, padding=pad, pad_value=255)[0].numpy()
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.8 + 0.8 * columns, 0.5 + 0.8 * max(len(rows), 1)))
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
