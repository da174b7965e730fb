"""Every relative link in the documentation leads somewhere: the file it names exists, and a
``#section`` part names a heading of that Markdown file (GitHub's anchors). Reports,
figures and sections are renamed and moved as results are rewritten; a reader following a
dead link from docs/results.md to its report is what this catches."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from markdown_lines import markdown_lines

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+)$")


def _outside_code(path: Path) -> list[str]:
    """The lines of a Markdown file outside fenced code blocks."""
    return [line for _, line, code in markdown_lines(path) if not code]


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, repeated headings numbered as GitHub does."""
    seen: Counter[str] = Counter()
    out = set()
    for line in _outside_code(path):
        match = HEADING.match(line)
        if match:
            base = github_anchor(match.group(1))
            out.add(base if not seen[base] else f"{base}-{seen[base]}")
            seen[base] += 1
    return out


def _links(path: Path) -> list[str]:
    return [target for line in _outside_code(path)
            for target in LINK.findall(line)
            if not re.match(r"^[a-z]+:", target)]  # http:, https:, mailto:, file:


def test_anchor_matches_github_rules():
    assert (github_anchor("A default model (2026-11-29) — the new default")
            == "a-default-model-2026-11-29--the-new-default")
    assert (github_anchor("`feraug demo` (the embedded default)")
            == "feraug-demo-the-embedded-default")


def test_the_documents_have_links():
    # the test below would pass on documents it failed to read
    assert sum(len(_links(p)) for p in DOCS) > 20


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path):
    dead = []
    for target in _links(doc):
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            dead.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            dead.append(f"{target} (no such section)")
    assert not dead, f"{doc.relative_to(ROOT)}: dead links: {dead}"


def test_results_contents_lists_every_section():
    results = ROOT / "docs" / "results.md"
    lines = _outside_code(results)
    sections = [line[3:] for line in lines if line.startswith("## ") and line != "## Contents"]
    start = lines.index("## Contents") + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("## "))
    listed = [target[1:] for line in lines[start:end] for target in LINK.findall(line)]
    assert listed == [github_anchor(s) for s in sections], \
        ("docs/results.md: its Contents list does not match its sections (order included); "
         "each section needs a line `- [its title](#its-github-anchor)` there")
