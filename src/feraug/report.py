"""Small, reusable Markdown report writing: tables, mean ± CI cells, figures.

Everything here is generic: the demo uses it for one run, the experiment runner for tables
comparing methods over seeds. Figures are written with matplotlib's Agg backend (no display
needed); paths in the Markdown are relative to the report's folder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from feraug.data.dataset import FaceDataset
from feraug.io import atomic_write_bytes
from feraug.reporting.stats import CONFIDENCE, mean_ci

Section = tuple[str, str]


def pyplot():
    """matplotlib.pyplot on the Agg backend (imported lazily: it is slow to import)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


# ----------------------------------------------------------------------------- text helpers


def fmt(value: object, digits: int = 3) -> str:
    """A table cell: floats with ``digits`` decimals, ``None``/NaN as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, float | np.floating):
        return "—" if math.isnan(float(value)) else f"{float(value):.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]],
                   align: Sequence[str] | None = None, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table. ``align`` holds ``"l"``, ``"r"`` or ``"c"`` per
    column (default: first column left, the rest right)."""
    align = list(align or ["l"] + ["r"] * (len(headers) - 1))
    if len(align) != len(headers):
        raise ValueError("align must have one entry per column")
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(str(h) for h in headers) + " |",
             "| " + " | ".join(marks[a] for a in align) + " |"]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row {row!r} has {len(row)} cells, expected {len(headers)}")
        cells = [fmt(c, digits).replace("|", "\\|") for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fmt_mean_ci(values: Sequence[float], digits: int = 3,
                confidence: float = CONFIDENCE) -> str:
    """``"0.712 ± 0.013"`` (mean ± CI half-width); just the mean for a single value."""
    mean, half = mean_ci(values, confidence)
    if math.isnan(mean):
        return "—"
    return fmt(mean, digits) if math.isnan(half) else f"{mean:.{digits}f} ± {half:.{digits}f}"


def image_md(path: str | Path, alt: str, report_dir: str | Path) -> str:
    """Markdown image link to ``path``, relative to ``report_dir``."""
    path, report_dir = Path(path), Path(report_dir)
    try:
        rel = path.resolve().relative_to(report_dir.resolve())
    except ValueError:
        rel = path
    return f"![{alt}]({rel.as_posix()})"


def dataset_table(ds: FaceDataset) -> str:
    """Images per class (rows) and split (columns), with totals."""
    splits = ds.split_names()
    counts = {s: ds.class_counts(s) for s in splits}
    rows = [[c, *(counts[s][c] for s in splits), sum(counts[s][c] for s in splits)]
            for c in ds.classes]
    rows.append(["**total**", *(len(ds.indices(s)) for s in splits), len(ds)])
    return markdown_table(["class", *(s or "unassigned" for s in splits), "total"], rows)


def per_class_table(metrics: dict, digits: int = 3) -> str:
    """Precision, recall, F1 and support per class from an ``evaluate_classifier`` result."""
    rows = [[name, m.get("precision"), m.get("recall"), m.get("f1"), m.get("support")]
            for name, m in metrics["per_class"].items()]
    return markdown_table(["class", "precision", "recall", "F1", "support"], rows,
                          digits=digits)


def confusion_table(metrics: dict) -> str:
    """The confusion matrix (rows = true class, columns = predicted) as a Markdown table."""
    classes = list(metrics["classes"])
    rows = [[f"**{c}**", *row] for c, row in zip(classes, metrics["confusion_matrix"],
                                                 strict=True)]
    return markdown_table(["true \\ predicted", *classes], rows)


def write_report(out_dir: str | Path, title: str, sections: Sequence[Section],
                 name: str = "report.md", intro: str = "") -> Path:
    """Write ``out_dir/name``: a ``# title``, an optional intro paragraph, then one
    ``## heading`` per ``(heading, markdown body)`` section; and beside it the same report as
    one self-contained HTML page (figures embedded). Returns the markdown file's path."""
    from feraug.reporting.html import markdown_to_html

    parts = [f"# {title}\n"]
    if intro:
        parts.append(intro.strip() + "\n")
    for heading, body in sections:
        parts.append(f"## {heading}\n\n{body.strip()}\n")
    path = Path(out_dir) / name
    text = "\n".join(parts)
    atomic_write_bytes(text.encode(), path)
    page = markdown_to_html(text, path.parent, title)
    atomic_write_bytes(page.encode(), path.with_suffix(".html"))
    return path


# ----------------------------------------------------------------------------- figures


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
