"""Shared by the documentation tests: a Markdown file's lines, each marked as inside a fenced
code block or not (the fence lines themselves are left out)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def markdown_lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line number, text, inside a fenced code block) of every line but the fences."""
    inside = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            inside = not inside
        else:
            yield number, line, inside
