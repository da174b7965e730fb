"""Every `feraug` command the documentation shows parses with today's CLI.

Commands are read from fenced code blocks of the Markdown files and from the indented
comment lines of the bundled configs (``#   feraug ...``: how each config says to run it;
prose comments start right after ``# ``). Each is parsed, not run, by
the command it names: an option renamed or removed, a required one missing, or a value of
the wrong type fails here instead of in a reader's terminal. Config files a command names
must exist. Shell variables (``$S``) stand for values the test cannot know and are read as
``0``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from markdown_lines import markdown_lines

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
        *sorted((ROOT / "configs").rglob("*.md")), *sorted((ROOT / "configs").rglob("*.yaml"))]
#: words that may come before a command on its line (besides VAR=value settings)
LEADERS = {"nohup", "time", "exec"}
#: where a command's own arguments end: redirections and backgrounding
ARGS_END = re.compile(r"^\d?>|^&$|^<")


def _doc_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of the lines that may hold commands: inside fenced code blocks
    of Markdown, the indented comment lines (without ``#``) of YAML."""
    if path.suffix == ".md":
        yield from ((number, line) for number, line, code in markdown_lines(path) if code)
        return
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith("#  "):
            yield number, stripped.lstrip("#")


def _logical_lines(lines: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """Join backslash continuations; the number is the first line's."""
    text, first = "", None
    for number, line in lines:
        first = number if first is None else first
        if line.rstrip().endswith("\\"):
            text += line.rstrip()[:-1] + " "
            continue
        yield first, text + line
        text, first = "", None


def doc_commands(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, arguments after ``feraug``) of each feraug command in ``path``, also
    when run as ``python -m feraug`` or ``torchrun ... -m feraug``."""
    for number, line in _logical_lines(_doc_lines(path)):
        for segment in re.split(r"&&|\|\||;|\|", line):
            try:
                words = shlex.split(segment, comments=True)
            except ValueError:  # prose with an apostrophe, not a command
                continue
            if "feraug" not in words:
                continue
            at = words.index("feraug")
            before = words[:at]
            if not (before[-1:] == ["-m"] or all(
                    ("=" in w and not w.startswith("-")) or w in LEADERS for w in before)):
                continue
            args = []
            for word in words[at + 1:]:
                if ARGS_END.match(word):
                    break
                args.append("0" if "$" in word else word)
            yield number, args


def _all_commands() -> list[tuple[str, list[str]]]:
    return [(f"{path.relative_to(ROOT)}:{number}", args)
            for path in DOCS for number, args in doc_commands(path)]


COMMANDS = _all_commands()


@cache
def _cli():  # noqa: ANN202 (typer's click command)
    from typer.main import get_command

    from feraug.cli.main import app

    return get_command(app)


def test_the_documents_show_commands_at_all() -> None:
    # the README's two set-up lines and its usage examples at least
    assert sum(where.startswith("README.md") for where, _ in COMMANDS) >= 10
    assert len(COMMANDS) >= 100


@pytest.mark.parametrize("where, args", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_a_documented_command_parses(where: str, args: list[str]) -> None:
    command, names, rest = _cli(), ["feraug"], list(args)
    while hasattr(command, "get_command") and rest and not rest[0].startswith("-"):
        sub = command.get_command(None, rest[0])
        assert sub is not None, f"{where}: no command `{' '.join([*names, rest[0]])}`"
        names.append(rest.pop(0))
        command = sub
    try:
        command.make_context(" ".join(names), rest)
    except Exception as exc:  # the CLI's own usage errors, reported with the document's line
        pytest.fail(f"{where}: `feraug {' '.join(args)}`: {type(exc).__name__}: {exc}")
    for word in rest:
        if re.fullmatch(r"configs/\S+\.ya?ml", word):
            assert (ROOT / word).is_file(), f"{where}: {word} does not exist"


def test_the_reader_finds_commands_and_their_ends(tmp_path: Path) -> None:
    config = tmp_path / "x.yaml"
    config.write_text("# feraug can make it itself\n#   feraug train \\\n#     -c a.yaml\n")
    assert list(doc_commands(config)) == [(2, ["train", "-c", "a.yaml"])]
    doc = tmp_path / "x.md"
    doc.write_text("feraug train -c a.yaml\n```bash\nOMP_NUM_THREADS=1 feraug train \\\n"
                   "    -c b.yaml --seed $S > log 2>&1 &\npip install 'feraug[cluster]'\n"
                   "torchrun --nproc-per-node 2 -m feraug gan train -c c.yaml  # two\n```\n")
    assert list(doc_commands(doc)) == [(3, ["train", "-c", "b.yaml", "--seed", "0"]),
                                       (6, ["gan", "train", "-c", "c.yaml"])]
