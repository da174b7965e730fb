"""Decoding many image files into one uint8 tensor, in parallel threads with a progress bar."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from feraug.data.images import read_gray
from feraug.progress import progress_bar


def decode_files(paths: list[Path], size: int, desc: str = "decoding") -> torch.Tensor:
    """Decode image files into a uint8 tensor ``[N, 1, size, size]``.

    OpenCV releases the GIL while decoding, so threads use every core. The first bad file
    raises :class:`~feraug.errors.DataError` naming it.
    """
    out = np.empty((len(paths), size, size), dtype=np.uint8)
    workers = min(8, os.cpu_count() or 1)
    show = len(paths) > 2000

    def work(item: tuple[int, Path]) -> None:
        i, p = item
        out[i] = read_gray(p, size)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in progress_bar(pool.map(work, enumerate(paths),
                                       chunksize=256 if len(paths) > 5000 else 16),
                              total=len(paths), desc=desc, enabled=show, leave=False):
            pass
    return torch.from_numpy(out).unsqueeze(1)
