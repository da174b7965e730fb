"""The scorer's figures: best and worst samples per emotion by judge confidence, the samples
closest to a real training face beside that face, and (translators) the first samples, not
chosen by any score, under their sources."""

from __future__ import annotations

from pathlib import Path

from feraug.reporting.figures import save_labelled_grid

COLUMNS = 8


def save_best_worst(figures: dict[str, dict], path: Path) -> Path:
    """Per emotion: the samples the judge is most and least sure show it."""
    rows = []
    for emotion, f in figures.items():
        order = f["confidence"].argsort(descending=True)
        rows += [(f"{emotion} best", f["faces"][order[:COLUMNS]]),
                 (f"{emotion} worst", f["faces"][order.flip(0)[:COLUMNS]])]
    return save_labelled_grid(rows, path, "judge's most / least confident samples")


def save_nearest_pairs(figures: dict[str, dict], path: Path) -> Path:
    """Per emotion: the samples nearest to a real training face (pixel RMS), each above the
    real face it is nearest to."""
    rows = []
    for emotion, f in figures.items():
        order = f["rms"].argsort()[:COLUMNS]
        rows += [(f"{emotion} sample", f["faces"][order]),
                 ("nearest real", f["nearest"][order])]
    return save_labelled_grid(rows, path, "samples closest to a real training face")


def save_first_pairs(figures: dict[str, dict], path: Path) -> Path | None:
    """Translators: the first samples per emotion (no selection) under the source faces they
    were made from; None for generators without sources."""
    rows = []
    for emotion, f in figures.items():
        if f.get("sources") is None:
            return None
        rows += [("source", f["sources"][:COLUMNS]), (f"{emotion}", f["faces"][:COLUMNS])]
    return save_labelled_grid(rows, path, "first samples (unselected) under their sources")
