"""A training run's folder: how a run begins in it, its manifest and its JSON-lines log.

Classifier and generator training follow the same rule. Without ``resume`` the folder must be
new or empty. With ``resume`` it must hold a run of the same kind (its ``manifest.json``, see
:mod:`feraug.resume`); a run with a checkpoint continues exactly where that checkpoint
stopped, and a run stopped before or during its first save starts again from step 0 in its
own folder. Rank 0 alone writes; every rank reaches the same decision from the same files.
:meth:`RunFolder.begin` takes the folder's lock (:mod:`feraug.engine.run_lock`) for the caller,
who holds it until the run ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from feraug.engine.run_lock import LOCK_FILES, run_lock
from feraug.errors import CheckpointError
from feraug.io import atomic_write_bytes, prepare_output_dir
from feraug.manifest import write_manifest
from feraug.resume import read_run_manifest, start_again


class Start(StrEnum):
    """How a run begins in its folder."""

    NEW = "new"  # a new or empty folder
    RESUME = "resume"  # a run with a checkpoint: continue it exactly
    RESTART = "restart"  # a run with no checkpoint yet: again from step 0, same folder


def _accept(manifest: dict, start: Start) -> None:
    """The default check: any run of the right kind may be continued."""


@dataclass(frozen=True)
class RunFolder:
    """The folder of one run of ``kind`` (its manifest kind; ``what`` names it for people).
    ``main``: this process writes the folder (rank 0 of a multi-process run)."""

    out: Path
    kind: str
    what: str
    main: bool = True
    #: holds the folder's lock from :meth:`begin` until the caller closes it (the run's end)
    hold: ExitStack | None = None

    def begin(self, resume: bool, checkpoint: str, partial: Iterable[str],
              check: Callable[[dict, Start], None] = _accept) -> Start:
        """Decide how the run begins and ready the folder for it.

        ``checkpoint`` is the file name (inside the folder) a run resumes from; ``partial``
        the files and folders a run writes after its manifest, deleted when it starts again
        from step 0. ``check(manifest, start)`` sees the stored manifest before anything
        changes and raises to refuse (settings or data that differ). Refusals are one-line
        :class:`~feraug.errors.FeraugError` subclasses: no run to resume, another kind of
        run, a non-empty folder for a new run, a folder another process trains into now
        (the lock, taken into ``hold``). Only the main process deletes or creates files; the
        caller waits on a barrier after.
        """
        start = Start.NEW
        if resume:
            manifest = read_run_manifest(self.out, self.kind, self.what)
        elif self.main:  # a new run into someone's folder is refused before any lock file
            prepare_output_dir(self.out, ignore=LOCK_FILES)
        if self.hold is not None:  # before a file changes; after refusals that change none
            self.hold.enter_context(run_lock(self.out, enabled=self.main))
        if resume:
            start = Start.RESUME if (self.out / checkpoint).is_file() else Start.RESTART
            check(manifest, start)
            if start is Start.RESTART and self.main:
                start_again(self.out, partial)
        if self.main:
            # a continued run keeps its files; stale temporaries of killed saves go
            prepare_output_dir(self.out, allow_existing_run=start is not Start.NEW,
                               ignore=LOCK_FILES)
        return start

    def write_manifest(self, config: dict, seed: int, data_fingerprint: str | None,
                       **extra: Any) -> None:
        """Write ``manifest.json`` (config, seed, data, code and machine) from the main
        process."""
        if self.main:
            write_manifest(self.out, self.kind, config, seed, data_fingerprint, **extra)

    def log(self, name: str) -> JsonLines:
        """The JSON-lines log ``name`` inside the folder."""
        return JsonLines(self.out / name)


class JsonLines:
    """A run's log: one JSON object per line, each with the ``step`` it was written at.

    A process killed (or a disk filled) mid-write leaves a torn last line; it is dropped when
    the log is read, since the row it began is written again by the resumed run. Any other
    line that is not JSON means the file was damaged some other way, and reading refuses.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, row: dict) -> None:
        """Add ``row`` as the last line."""
        with self.path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")

    def _lines(self) -> list[tuple[str, dict]]:
        """Every intact line with its row, oldest first (none when there is no log)."""
        if not self.path.is_file():
            return []
        numbered = [(n, ln) for n, ln in enumerate(self.path.read_text().splitlines(), 1)
                    if ln.strip()]
        parsed = []
        for i, (n, ln) in enumerate(numbered):
            try:
                parsed.append((ln, json.loads(ln)))
            except ValueError:
                if i == len(numbered) - 1:  # torn by a kill mid-write: the run redoes it
                    break
                raise CheckpointError(f"{self.path}: line {n} is not JSON; the log is "
                                      "damaged") from None
        return parsed

    def rows(self) -> list[dict]:
        """Every row, oldest first (none when the log does not exist yet)."""
        return [row for _, row in self._lines()]

    def last(self) -> dict:
        """The newest row, or ``{}``."""
        rows = self.rows()
        return rows[-1] if rows else {}

    def _rewrite(self, lines: list[str]) -> None:
        atomic_write_bytes("".join(f"{ln}\n" for ln in lines).encode(), self.path)

    def truncate_after(self, step: int) -> None:
        """Drop the rows written after ``step``: a resumed run continues from its checkpoint's
        step and writes those rows again, so keeping them would log those steps twice."""
        if self.path.is_file():
            self._rewrite([ln for ln, row in self._lines() if row.get("step", 0) <= step])

    def keep_first(self, n: int) -> None:
        """Keep only the first ``n`` rows: those a checkpoint says were written before it, for
        a log whose rows can share a step with a checkpoint saved before them."""
        if self.path.is_file():
            self._rewrite([ln for ln, _ in self._lines()[:n]])
