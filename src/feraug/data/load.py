"""Loading a data set from disk: format detection, the on-disk cache and split completion."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from feraug.data.dataset import FaceDataset
from feraug.data.listing import listing_fingerprint
from feraug.data.readers import detect_format, get_reader
from feraug.data.readers.options import ReaderOptions
from feraug.data.splits import assign_splits, stratified_holdout, subject_holdout
from feraug.errors import DataError, FeraugError
from feraug.io import atomic_torch_save

CACHE_VERSION = "3"  # 3: EXIF orientation applied when decoding


def cache_dir() -> Path:
    """Where decoded data sets are cached (``$FERAUG_CACHE`` or ``~/.cache/feraug``)."""
    env = os.environ.get("FERAUG_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "feraug"


def _cache_key(path: Path, fmt: str, size: int, options: ReaderOptions) -> str:
    parts = [CACHE_VERSION, str(path.resolve()), fmt, str(size), repr(options.class_map),
             listing_fingerprint(path)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def read_dataset(path: Path, fmt: str | None, size: int, options: ReaderOptions,
                 use_cache: bool = True) -> FaceDataset:
    """Read a data set as its reader gives it (splits may be incomplete), through the cache."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: path does not exist")
    fmt = fmt or detect_format(path)
    reader = get_reader(fmt)
    if not reader.detect(path):
        raise DataError(f"{path}: does not look like format {fmt!r}")
    if not use_cache:
        return reader.read(path, size, options)
    cache_file = cache_dir() / f"{fmt}-{size}-{_cache_key(path, fmt, size, options)}.pt"
    if cache_file.is_file():
        try:
            cached = FaceDataset.from_state(torch.load(cache_file, weights_only=True))
            cached.root = str(path)  # the cache key is the resolved path; keep this spelling
            return cached
        except Exception:  # a damaged cache entry is rebuilt, never trusted
            cache_file.unlink(missing_ok=True)
    ds = reader.read(path, size, options)
    try:
        atomic_torch_save(ds.to_state(), cache_file)
    except (FeraugError, OSError, RuntimeError):
        # caching is an optimisation: a read-only or full cache folder must not break loading
        # (a refused write is a FeraugError; torch can also report one as RuntimeError)
        pass
    return ds


def finalize_splits(ds: FaceDataset, options: ReaderOptions, folds: int = 5,
                    fold: int = 0) -> FaceDataset:
    """Complete the splits so that train, val and test all exist.

    - No splits at all: subject-disjoint (where subjects are known) stratified k-fold;
      fold ``fold`` is test, the next fold val.
    - Train and test but no val: a stratified ``val_fraction`` of train becomes val
      (subject-disjoint when subjects are known).
    """
    names = set(ds.split)
    if names == {""}:
        try:
            split = assign_splits(ds.labels, ds.subjects, folds, fold, options.seed)
        except DataError as exc:
            raise DataError(f"{ds.root}: {exc}") from None
        return ds.with_split(split)
    if "" in names:
        raise DataError(f"{ds.root}: some images have no split")
    if "val" not in names and "train" in names:
        train_idx = ds.indices("train")
        if ds.subjects is not None:  # whole subjects (e.g. SFEW's films) on one side only
            hold = subject_holdout(ds.labels[train_idx],
                                   [ds.subjects[i] for i in train_idx.tolist()],
                                   options.val_fraction, options.seed)
        else:
            hold = stratified_holdout(ds.labels[train_idx], options.val_fraction, options.seed)
        split = list(ds.split)
        for i in train_idx[torch.as_tensor(hold)].tolist():
            split[i] = "val"
        ds = ds.with_split(split)
    return ds


def load_dataset(
    path: str | Path,
    format: str | None = None,
    size: int = 48,
    class_map: dict[str, str] | None = None,
    folds: int = 5,
    fold: int = 0,
    seed: int = 0,
    use_cache: bool = True,
) -> FaceDataset:
    """Load any supported data set as grayscale uint8 tensors with train/val/test splits.

    The format is auto-detected unless ``format`` names a reader. Decoded images are cached
    on disk keyed by the file listing, so a second load is fast.
    """
    options = ReaderOptions(class_map=class_map, seed=seed)
    ds = read_dataset(Path(path), format, size, options, use_cache=use_cache)
    return finalize_splits(ds, options, folds=folds, fold=fold)
