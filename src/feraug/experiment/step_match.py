"""Training length matched between arms (``match_steps``).

An arm that adds synthetic faces trains on a larger set for the same epochs, so it takes
more optimiser steps than the real-only arms it is compared with; a gain can then be
training length, not the faces (on FER2013 with zhu-cnn, a real-only arm trained 1.7x longer
matched the whole gain of CycleGAN class balancing: docs/results.md). An arm with
``match_steps: OTHER`` trains for the number of epochs that gives it as many optimiser steps
as ``OTHER`` takes, computed from the two train-set sizes (real faces plus the files in
the synthetic sets), so the comparison is fair by construction.
"""

from __future__ import annotations

from pathlib import Path

from feraug.classifier.batches import batches_per_epoch
from feraug.classifier.config import TrainConfig
from feraug.data.listing import image_files, subfolders
from feraug.data.synthetic import kept_nothing
from feraug.errors import ConfigError
from feraug.experiment.config import ExperimentConfig


def synthetic_images(folder: str | Path) -> int | None:
    """Faces a finished synthetic set adds to training (the files the loader reads, counted
    without decoding them); None while the set is not made (no manifest yet)."""
    folder = Path(folder)
    if not (folder / "manifest.json").is_file():
        return None
    if kept_nothing(folder):
        return 0
    return sum(len(image_files(d)) for d in subfolders(folder))


def train_images(tc: TrainConfig, n_real: int) -> int | None:
    """Training faces of the run ``tc`` given ``n_real`` real ones; None while one of its
    synthetic sets is not made."""
    counts = [synthetic_images(folder) for folder in tc.synthetic]
    if any(c is None for c in counts):
        return None
    return (0 if tc.synthetic_only else n_real) + sum(counts)


def synthetic_dirs_read(cfg: ExperimentConfig, arm: str) -> list[str]:
    """The synthetic folders a run of ``arm`` reads: its own and, with ``match_steps``, those
    of the arm it matches (their sizes decide its epochs)."""
    spec = cfg.arm(arm)
    names = [*spec.synthetic, *(cfg.arm(spec.match_steps).synthetic if spec.match_steps else [])]
    return list(dict.fromkeys(cfg.synthetic_dir(d) for d in names))


def matched_epochs(cfg: ExperimentConfig, arm: str, n_real: int) -> int | None:
    """The epochs of ``arm`` (None: the recipe's own, for an arm with no ``match_steps``).

    ConfigError when the arm it matches has a synthetic set that is not made yet (the runner
    makes every set before any arm trains). The config refuses ``extra_train`` folders (their
    size is not known here) and the plateau scheduler (its patience counts epochs) for such
    arms; with cosine the schedule stretches over the matched epochs.
    """
    spec = cfg.arm(arm)
    if spec.match_steps is None:
        return None
    ref = cfg.train_config(spec.match_steps, cfg.seeds[0], "unused")
    own = cfg.train_config(arm, cfg.seeds[0], "unused")
    n_ref, n_own = train_images(ref, n_real), train_images(own, n_real)
    if n_ref is None or n_own is None:
        raise ConfigError(f"arm {arm!r}: match_steps needs the synthetic sets of arm "
                          f"{spec.match_steps!r} and its own to be made first")
    target = ref.epochs * batches_per_epoch(n_ref, ref.batch_size)
    if ref.max_steps is not None:
        target = min(target, ref.max_steps)
    return max(1, round(target / batches_per_epoch(n_own, own.batch_size)))


def arm_train_config(cfg: ExperimentConfig, arm: str, seed: int, folder: str | Path,
                     n_real: int) -> TrainConfig:
    """The TrainConfig of one arm x seed run, a ``match_steps`` arm's epochs included."""
    return cfg.train_config(arm, seed, folder, epochs=matched_epochs(cfg, arm, n_real))
