"""Markdown reports: table cells, tables, mean ± CI cells, image links, and the writer that
puts a titled report and its self-contained HTML rendering side by side.

Everything here is generic: the demo uses it for one run, the experiment runner for tables
comparing methods over seeds. Paths in the Markdown are relative to the report's folder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from feraug.data.dataset import FaceDataset
from feraug.io import atomic_write_bytes
from feraug.reporting.stats import CONFIDENCE, mean_ci

Section = tuple[str, str]


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
