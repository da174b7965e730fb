"""One trainer per run folder at a time.

Two processes that train into the same folder interleave their logs and overwrite each
other's checkpoints, and nothing would say so: a resumed run started while an earlier one
(an orphaned job, say) still trains. The main process of a run therefore holds an exclusive
operating-system lock on ``<run>/.feraug.lock`` for as long as it trains; a second trainer
gets one error line naming the folder and the process that holds it. The operating system
drops the lock when its holder exits, however it exits, so a killed run never leaves a stale
lock behind (the file itself stays: deleting a lock file on release races with a process
that has just opened it). ``filelock`` gives the same behaviour on POSIX and Windows.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from feraug.errors import FeraugError

LOCK_NAME = ".feraug.lock"
OWNER_NAME = ".feraug.lock.owner"  # who holds the lock, for the error message
LOCK_FILES = frozenset({LOCK_NAME, OWNER_NAME})


class RunInUseError(FeraugError):
    """Another process is training into the same run folder now."""


def _owner(out: Path) -> str:
    """``process N on HOST`` from the owner file, or a plain ``another process``."""
    try:
        text = (out / OWNER_NAME).read_text().strip()
    except OSError:
        return "another process"
    return f"process {text}" if text else "another process"


def _may_lock(out: Path) -> bool:
    """Whether taking the lock may create files in ``out``: a new, empty or feraug folder.

    A folder of the user's that a run will refuse to write into gets no lock file; the run's
    own check then refuses it with its usual message.
    """
    if not out.exists():
        return True
    if not out.is_dir():
        return False
    names = {p.name for p in out.iterdir()}
    return not (names - LOCK_FILES) or "manifest.json" in names


@contextmanager
def run_lock(out: str | Path, enabled: bool = True, checked: bool = False) -> Iterator[None]:
    """Hold the run folder ``out``'s lock inside the ``with`` block (creating the folder).

    ``enabled=False`` (every rank but the main one of a multi-process run) does nothing: the
    main process holds the lock for the whole job. ``checked``: the caller has already
    accepted the folder as its own (otherwise only a new, empty or feraug folder gets a lock
    file). Raises :class:`RunInUseError` at once when another process holds it; never waits.
    """
    out = Path(out)
    if not enabled or not (checked or _may_lock(out)):
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(out / LOCK_NAME, blocking=False)
    try:
        lock.acquire()
    except Timeout:
        raise RunInUseError(
            f"{out}: {_owner(out)} is training this run now; wait for it to finish or stop "
            "it first (an interrupted `experiment run` can leave its jobs running)") from None
    except (NotImplementedError, OSError) as exc:  # a file system without locks
        print(f"warning: {out}: cannot lock the run folder ({exc}); nothing stops a second "
              "process from training into it", file=sys.stderr)
        yield
        return
    try:
        (out / OWNER_NAME).write_text(f"{os.getpid()} on {socket.gethostname()}\n")
        yield
    finally:
        lock.release()
