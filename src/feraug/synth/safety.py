"""Where a synthetic set may be written: never into a validation/test split folder, never
inside the real data set, never over an existing non-empty folder."""

from __future__ import annotations

from pathlib import Path

from feraug.errors import FeraugError
from feraug.io import prepare_output_dir
from feraug.synth.plan import HELD_OUT_NAMES


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def check_out_dir(out_dir: str | Path, real_root: str | Path | None = None) -> Path:
    """Refuse an output folder that would mix synthetic images into real data.

    Raises :class:`FeraugError` when ``out_dir`` (as given or with links resolved) has a path
    component named like a validation/test split (``PublicTest``, ``PrivateTest``, ``val``,
    ``valid``, ``validation``, ``test``, ``testing``; any case), or lies inside the real data
    set's root folder. Returns the absolute path. Does not create anything.
    """
    given = Path(out_dir).expanduser().absolute()
    resolved = given.resolve()
    for candidate in (given, resolved):
        for part in candidate.parts:
            if part.lower() in HELD_OUT_NAMES:
                raise FeraugError(
                    f"{out_dir}: refusing to write synthetic images under a folder named "
                    f"{part!r}, which looks like a validation/test split; choose an --out "
                    "outside every data set's val/test folders")
    if real_root:
        root = Path(real_root).expanduser().absolute()
        if root.is_dir() and (_inside(given, root) or _inside(resolved, root.resolve())):
            raise FeraugError(f"{out_dir}: refusing to write synthetic images inside the real "
                              f"data set {root}; choose an --out outside it")
    return given


def prepare_synth_dir(out_dir: str | Path, real_root: str | Path | None = None) -> Path:
    """:func:`check_out_dir`, then create the folder (refusing an existing non-empty one)."""
    path = check_out_dir(out_dir, real_root)
    if path.is_dir() and any(path.iterdir()):
        raise FeraugError(f"{out_dir}: folder exists and is not empty; refusing to overwrite "
                          "(choose a new --out)")
    return prepare_output_dir(path)
