"""Walking folders of images and fingerprinting a listing (names, sizes, mtimes) for caching."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from feraug.data.images import is_image_file
from feraug.errors import DataError


def require_dir(path: Path) -> Path:
    """Return ``path`` if it is an existing folder, else raise DataError naming it."""
    if not path.exists():
        raise DataError(f"{path}: path does not exist")
    if not path.is_dir():
        raise DataError(f"{path}: expected a folder")
    return path


def image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (sorted by name), optionally recursively."""
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.is_file() and is_image_file(p))


def subfolders(folder: Path) -> list[Path]:
    """Non-hidden sub-folders, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def listing_fingerprint(root: Path) -> str:
    """Fast fingerprint of a file tree: relative names, sizes and modification times.

    Used as the cache key, so a changed, added or removed file invalidates the cache without
    re-reading every image. (The *content* fingerprint of a loaded data set is
    :meth:`FaceDataset.fingerprint`.)
    """
    h = hashlib.sha256()
    if root.is_file():
        st = root.stat()
        h.update(f"{root.name}|{st.st_size}|{st.st_mtime_ns}".encode())
        return h.hexdigest()[:16]
    stack = [(root, "")]
    entries: list[str] = []
    seen: set[tuple[int, int]] = set()  # (device, inode) of every folder walked
    while stack:
        d, prefix = stack.pop()
        try:
            st_dir = d.stat()
            if (st_dir.st_dev, st_dir.st_ino) in seen:
                raise DataError(f"{d}: a symbolic link loops back to a folder above it; "
                                "remove the link or point it elsewhere")
            seen.add((st_dir.st_dev, st_dir.st_ino))
            with os.scandir(d) as it:
                for e in it:
                    rel = prefix + e.name
                    if e.is_dir(follow_symlinks=True):
                        stack.append((Path(e.path), rel + "/"))
                    else:
                        st = _stat(e)
                        entries.append(f"{rel}|{st.st_size}|{st.st_mtime_ns}")
        except OSError as exc:  # unreadable folder, a link that loops on itself, ...
            raise DataError(f"{d}: cannot list folder ({exc.strerror or exc})") from None
    for line in sorted(entries):
        # names that are not valid UTF-8 arrive as surrogate escapes: hash their raw bytes
        h.update(line.encode("utf-8", "surrogateescape"))
        h.update(b"\n")
    return h.hexdigest()[:16]


def _stat(entry: os.DirEntry) -> os.stat_result:
    try:
        return entry.stat()
    except OSError as exc:  # e.g. a link to a file that no longer exists
        raise DataError(f"{entry.path}: cannot read file ({exc.strerror})") from None
