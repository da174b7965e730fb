"""Safe file writing: atomic replacement and refusal to overwrite what the user owns."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from feraug.errors import FeraugError


def _process_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


_UMASK = _process_umask()  # read once, at import: umask() can only be read by setting it


def _temporary_sibling(path: Path) -> tuple[int, str]:
    """A new temporary file beside ``path`` (same file system, so ``os.replace`` is atomic),
    with the permissions an ordinary new file would get (``mkstemp`` makes it 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
    except OSError:  # a file system without permissions (some network mounts): keep 0600
        pass
    return fd, tmp


def _write_failed(path: Path, exc: OSError) -> FeraugError:
    """One line for a failed save (full disk, quota, read-only or vanished folder); the
    previous file at ``path``, if any, is untouched."""
    return FeraugError(f"{path}: could not be written ({exc.strerror or exc}); the previous "
                       "version, if any, is unchanged")


def _atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, flush and sync it to disk, then
    rename it over ``path``; FeraugError naming ``path`` when the disk refuses. On any failure
    the temporary file goes and the previous file at ``path`` stays as it was."""
    try:
        fd, tmp = _temporary_sibling(path)
    except OSError as exc:
        raise _write_failed(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:  # one handle: written, flushed and synced to disk
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _write_failed(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(data: bytes, path: Path) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename);
    FeraugError naming ``path`` when the disk refuses."""
    _atomic_write(Path(path), lambda fh: fh.write(data))


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` atomically; FeraugError naming ``path`` when the disk
    refuses."""
    import torch

    _atomic_write(Path(path), lambda fh: torch.save(obj, fh))


def read_torch_checkpoint(path: str | Path, fmt: str, kind: str) -> dict:
    """Load a feraug checkpoint dict safely (``weights_only=True``) and check its format.

    Raises :class:`CheckpointError` naming the file when it is missing, unreadable, or not a
    ``kind`` checkpoint (its ``format`` key is not ``fmt``).
    """
    import torch

    from feraug.errors import CheckpointError

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated, corrupt or another kind "
            f"of file; torch.load: {type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise CheckpointError(f"{path}: not a feraug {kind} checkpoint")
    return state


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def png_bytes(image: Any) -> bytes:
    """PNG encoding of one uint8 grayscale image (tensor or array, ``[1, H, W]`` or ``[H, W]``)."""
    import cv2
    import numpy as np

    array = np.asarray(image)
    ok, buf = cv2.imencode(".png", array.reshape(array.shape[-2:]))
    if not ok:
        raise FeraugError("PNG encoding failed")
    return buf.tobytes()


def clean(obj: Any) -> Any:
    """Replace NaN/inf by None, recursively (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    return obj


def write_json(obj: Any, path: Path) -> None:
    """Write JSON (indented, sorted keys off) atomically."""
    atomic_write_bytes((json.dumps(obj, indent=2) + "\n").encode(), Path(path))


def lies_inside(path: str | Path, root: str | Path) -> bool:
    """Whether ``path`` is the existing folder ``root`` or below it, as written or with links
    resolved."""
    given, folder = Path(path).expanduser().absolute(), Path(root).expanduser().absolute()
    if not folder.is_dir():
        return False
    return any(a == b or a.is_relative_to(b)
               for a, b in ((given, folder), (given.resolve(), folder.resolve())))


def refuse_output_inside(out: str | Path, inputs: str | Path | list, what: str) -> None:
    """FeraugError when the output folder ``out`` lies inside (or is) an input folder: files
    written there would be read back as data (a training image, a test image, a photo to
    predict) the next time. ``what`` names the inputs in the message."""
    for root in inputs if isinstance(inputs, list) else [inputs]:
        if lies_inside(out, root):
            raise FeraugError(f"{out}: refusing to write inside {what} "
                              f"{Path(root).expanduser().absolute()}; its files would be read "
                              "back as input; choose an --out outside it")


def prepare_output_dir(path: Path, allow_existing_run: bool = False,
                       ignore: frozenset[str] = frozenset()) -> Path:
    """Create an output folder, refusing to write into an existing non-empty one.

    ``allow_existing_run`` permits a folder that feraug itself created earlier (it holds
    ``manifest.json``), which is how ``--resume`` continues a run in place; files named in
    ``ignore`` (the run's own lock) do not make a folder non-empty.
    """
    path = check_output_dir(path, allow_existing_run, ignore)
    path.mkdir(parents=True, exist_ok=True)
    if allow_existing_run:
        remove_stale_temporaries(path)
    return path


def check_output_dir(path: Path, allow_existing_run: bool = False,
                     ignore: frozenset[str] = frozenset()) -> Path:
    """Refuse, as :func:`prepare_output_dir` would, an output folder that cannot be used,
    without creating it: for commands that work for minutes before they write anything."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FeraugError(f"{path}: exists and is not a folder")
    if path.is_dir() and any(p.name not in ignore for p in path.iterdir()):
        if not (allow_existing_run and (path / "manifest.json").is_file()):
            raise FeraugError(f"{path}: folder exists and is not empty; refusing to overwrite "
                              "(choose a new --out, or --resume a feraug run)")
    return path


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the half-written ``.NAME.*.tmp`` files that killed atomic saves left in a run
    folder (a finished save renames its temporary file; only a killed one leaves it)."""
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
