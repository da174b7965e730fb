"""Progress bars only where a person watches them.

On a terminal a bar redraws itself in place; written to a file or a pipe every redraw becomes
another carriage-return frame, thousands per run. So bars show only when stderr is a
terminal and ``FERAUG_QUIET`` is unset; log files get the one line per epoch or stage that
the trainers print anyway.
"""

from __future__ import annotations

import os
import sys
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
