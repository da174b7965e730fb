"""The experiment's real data: its spec, loaded (or drawn) once and shared by every run."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from feraug.data import spec as data_spec
from feraug.errors import DataError

if TYPE_CHECKING:
    from feraug.data.dataset import FaceDataset
    from feraug.experiment.config import ExperimentConfig

PROCEDURAL = "procedural"


class DataSpec(data_spec.DataSpec):
    """The real data set shared by every arm (loaded once, same splits for every run).

    :class:`feraug.data.spec.DataSpec` plus the built-in procedural faces (``path:
    procedural``). They are added here rather than there because ``procedural`` is a name
    only experiment configs reserve: on the command line a path is always a path.
    """

    seed: int = Field(0, ge=0, description="split seed (data sets without their own splits); "
                                           "fixed across training seeds so runs are paired")
    n_per_class: dict[str, int] | None = Field(None, description="procedural only")
    n_identities: int = Field(40, ge=2, description="procedural only")

    @model_validator(mode="after")
    def _procedural_only(self) -> DataSpec:
        if not self.is_procedural and self.n_per_class is not None:
            raise ValueError("n_per_class is only for `path: procedural`")
        return self

    @property
    def is_procedural(self) -> bool:
        """True for the built-in procedural faces."""
        return self.path == PROCEDURAL

    def read(self, cache: bool = True) -> FaceDataset:
        """The procedural faces drawn in memory (nothing is saved, ``seed`` draws them and
        cuts the folds), or the data set on disk."""
        if not self.is_procedural:
            return super().read(cache)
        from feraug.data.procedural import make_procedural_faces

        return make_procedural_faces(self.n_per_class, size=self.size,
                                     n_identities=self.n_identities, seed=self.seed,
                                     folds=self.folds, fold=self.fold)


def load_real_data(spec: DataSpec) -> FaceDataset:
    """The real data set of ``spec`` with its train/val/test splits (:meth:`DataSpec.load`).

    The split seed is ``spec.seed``, so every training seed sees the same splits; with
    ``train_fraction`` < 1 only that share of each class's training faces is kept (drawn with
    ``subsample_seed``), validation and test untouched.
    """
    return spec.load()


def check_inputs(cfg: ExperimentConfig, arms: list[str] | None = None) -> list[str]:
    """Cheap checks for ``--dry-run``: the data path and every synthetic folder exist (and the
    folders have a ``feraug synth`` manifest); with ``arms``, only the folders those arms train
    with. Returns the problems found (empty when none)."""
    from feraug.data.synthetic import read_manifest
    from feraug.experiment.step_match import synthetic_dirs_read

    problems = []
    if not cfg.data.is_procedural and not Path(cfg.data.path).exists():
        problems.append(f"{cfg.data.path}: data set does not exist")
    built_here = {cfg.synthetic_dir(s.name) for s in cfg.synthetic}
    used = cfg.synthetic_dirs() if arms is None else list(dict.fromkeys(
        d for a in arms for d in synthetic_dirs_read(cfg, a)))
    for folder in used:
        if folder in built_here:  # made by this experiment's own synthetic stage
            continue
        try:
            read_manifest(folder)
        except DataError as exc:
            problems.append(str(exc))
    return problems
