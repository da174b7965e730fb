"""Command-line options that fix which data set is read and how it is split, shared by every
command that reads one (``feraug train``, ``evaluate``, ``synth``, ``gan train|sample|score``).

Data sets without official splits (CK+, JAFFE, plain image folders) are cut into folds with a
seed; a generator, a synthetic set and a classifier must all use the *same* cut, or test-fold
faces leak into training. These options are therefore identical everywhere, they build one
:class:`~feraug.data.spec.DataSpec`, and what a generator or classifier was trained with is
stored with it and becomes the default.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from feraug.cli.data_cmd import check_format, parse_class_map
from feraug.data.spec import DataSpec
from feraug.errors import ConfigError, validate_config

if TYPE_CHECKING:
    from feraug.gan.meta import GeneratorMeta

ClassMapOpt = Annotated[str | None, typer.Option(
    "--class-map", metavar="FOLDER=EMOTION,...",
    help="Map class folder names to emotions (as for training).")]
FoldsOpt = Annotated[int | None, typer.Option(
    min=2, help="Folds for data sets without their own splits (must match training; default: "
         "the config's, or the split recorded by the generator, checkpoint or resumed run, "
         "else 5).")]
FoldOpt = Annotated[int | None, typer.Option(
    min=0, help="Test fold for data sets without their own splits (must match training; "
         "default: the config's, or the recorded split's, else 0).")]
DataSeedOpt = Annotated[int | None, typer.Option(
    help="Seed of carved-out validation and folds (must match training; default: the "
         "recorded split's, else 0; `feraug train`: the config's, else --seed).")]


def data_spec_from_options(data: str | Path, format: str | None, size: int,
                           class_map: str | None = None, folds: int | None = None,
                           fold: int | None = None, data_seed: int | None = None,
                           base: DataSpec | None = None) -> DataSpec:
    """The :class:`DataSpec` of ``data`` read at ``size`` px: the split values given on the
    command line, the rest from ``base`` (the split a generator, checkpoint or resumed run
    recorded) or the defaults. ConfigError naming the flag for a bad format or fold."""
    given = {"class_map": parse_class_map(class_map), "folds": folds, "fold": fold,
             "seed": data_seed}
    values = {**(base.split_key() if base is not None else {}),
              **{k: v for k, v in given.items() if v is not None}}
    n_folds, test_fold = values.get("folds", 5), values.get("fold", 0)
    if test_fold >= n_folds:
        raise ConfigError(f"--fold: {test_fold} is out of range for --folds {n_folds} "
                          f"(use 0..{n_folds - 1})")
    values.update(path=str(data), format=check_format(format), size=size)
    return validate_config(DataSpec, values, "data options")


def generator_data_spec(meta: GeneratorMeta, image_size: int, data: str | Path, format: str | None,
                        class_map: str | None, folds: int | None, fold: int | None,
                        data_seed: int | None, inherit_elsewhere: bool = True) -> DataSpec:
    """The spec a command that uses a trained generator reads ``data`` with, at the
    generator's image size: the split options given, the rest from the split stored in the
    generator's ``meta`` (on another data set only with ``inherit_elsewhere``) or the
    defaults. Refuses (ConfigError naming the values) another cut of the data set the
    generator was trained on."""
    from feraug.data.spec import stored_spec
    from feraug.synth.safety import check_generator_spec

    recorded = stored_spec(meta.to_dict(), size=int(image_size))
    inherit = recorded is not None and (inherit_elsewhere or recorded.same_data(data))
    spec = data_spec_from_options(data, format, int(image_size), class_map, folds, fold,
                                  data_seed, base=recorded if inherit else None)
    check_generator_spec(recorded, spec)
    return spec
