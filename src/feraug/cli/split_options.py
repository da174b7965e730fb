"""Command-line options that fix how a data set is split, shared by every command that reads
one for training (``feraug synth``, ``feraug gan train``, ``feraug gan sample``).

Data sets without official splits (CK+, JAFFE, plain image folders) are cut into folds with a
seed; a generator, a synthetic set and a classifier must all use the *same* cut, or test-fold
faces leak into training. These options are therefore identical everywhere, and the values a
generator was trained with are stored in its checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from feraug.cli.data_cmd import check_format, parse_class_map
from feraug.errors import ConfigError

if TYPE_CHECKING:
    from feraug.data.dataset import FaceDataset

ClassMapOpt = Annotated[str | None, typer.Option(
    "--class-map", metavar="FOLDER=EMOTION,...",
    help="Map class folder names to emotions (as for training).")]
FoldsOpt = Annotated[int | None, typer.Option(
    min=2, help="Folds for data sets without splits (must match training; default: the "
         "generator's or resumed run's, else 5).")]
FoldOpt = Annotated[int | None, typer.Option(
    min=0, help="Test fold for data sets without splits (must match training; default: the "
         "generator's or resumed run's, else 0).")]
DataSeedOpt = Annotated[int | None, typer.Option(
    help="Seed of carved-out validation and folds (must match training; default: the "
         "generator's or resumed run's, else 0).")]

DEFAULT_SPLIT = {"class_map": None, "folds": 5, "fold": 0, "seed": 0}


def split_options(class_map: str | None, folds: int | None, fold: int | None,
                  data_seed: int | None, base: dict | None = None) -> dict:
    """The split as ``{"class_map", "folds", "fold", "seed"}``: the values given on the command
    line, the rest from ``base`` (e.g. a resumed run's) or the defaults. Checks the fold."""
    given = {"class_map": parse_class_map(class_map), "folds": folds, "fold": fold,
             "seed": data_seed}
    split = {**DEFAULT_SPLIT, **(base or {})}
    split.update({k: v for k, v in given.items() if v is not None})
    if split["fold"] >= split["folds"]:
        raise ConfigError(f"--fold: {split['fold']} is out of range for --folds "
                          f"{split['folds']}")
    return split


def load_split_dataset(data: Path, format: str | None, size: int, split: dict) -> FaceDataset:
    """Load ``data`` at ``size`` px, split as ``split`` (from :func:`split_options`) says."""
    from feraug.data.load import load_dataset

    return load_dataset(data, format=check_format(format), size=size,
                        class_map=split["class_map"], folds=split["folds"],
                        fold=split["fold"], seed=split["seed"])
