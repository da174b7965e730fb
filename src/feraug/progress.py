"""Progress bars only where a person watches them.

On a terminal a bar redraws itself in place; written to a file or a pipe every redraw becomes
another carriage-return frame, thousands per run. So bars show only when stderr is a
terminal and ``FERAUG_QUIET`` is unset; log files get the one line per epoch or stage that
the trainers print anyway.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm


def bars_wanted() -> bool:
    """True when progress bars should be drawn (stderr is a terminal, not quiet)."""
    return not os.environ.get("FERAUG_QUIET") and sys.stderr.isatty()


def progress_bar(iterable: Any = None, enabled: bool = True, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)``, disabled unless ``enabled`` and :func:`bars_wanted`."""
    return tqdm(iterable, disable=not (enabled and bars_wanted()), **kwargs)


def duration_text(seconds: float) -> str:
    """A rough duration for progress lines: minutes below 1.5 h, hours above."""
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def runs_left_text(expected: Sequence[float | None], pace: Sequence[float],
                   parallel: int = 1) -> str:
    """``N run(s) left, about T ...`` for progress lines. Each run left counts its
    ``expected`` seconds (from finished runs like it, e.g. of its arm) or, where none is
    known, the mean of ``pace`` (runs finished by this call); ``parallel`` runs at a time.
    Runs with neither are named, not guessed."""
    mean = sum(pace) / len(pace) if pace else None
    known = [e if e is not None else mean for e in expected]
    guessed = [k for k in known if k is not None]
    text = f"{len(expected)} run(s) left"
    if not guessed:
        return text + "; no estimate yet"
    # ``parallel`` at a time, but never less than the longest run left takes
    text += f", about {duration_text(max(sum(guessed) / max(1, parallel), max(guessed)))}"
    if len(guessed) < len(expected):
        text += f" for {len(guessed)} of them"
    return text + " at the pace of finished runs like them"
