"""The experiment's real data: loaded (or drawn) once and shared by every run."""

from __future__ import annotations

from pathlib import Path

from feraug.data.dataset import FaceDataset
from feraug.errors import DataError
from feraug.experiment.config import DataSpec, ExperimentConfig


def load_real_data(spec: DataSpec) -> FaceDataset:
    """The real data set of ``spec`` with its train/val/test splits.

    ``path: procedural`` draws the built-in procedural faces in memory (nothing is saved);
    anything else is read with :func:`feraug.data.load.load_dataset` (decode cache applies).
    The split seed is ``spec.seed``, so every training seed sees the same splits; with
    ``train_fraction`` < 1 only that share of each class's training faces is kept (drawn with
    ``subsample_seed``), validation and test untouched.
    """
    if spec.is_procedural:
        from feraug.data.procedural import make_procedural_faces

        ds = make_procedural_faces(spec.n_per_class, size=spec.size,
                                   n_identities=spec.n_identities, seed=spec.seed,
                                   folds=spec.folds, fold=spec.fold)
    else:
        from feraug.data.load import load_dataset

        ds = load_dataset(spec.path, format=spec.format, size=spec.size,
                          class_map=spec.class_map, folds=spec.folds, fold=spec.fold,
                          seed=spec.seed)
    if spec.train_fraction < 1.0:
        from feraug.data.splits import subsample_train

        ds = ds.select(subsample_train(ds.split, ds.labels, spec.train_fraction,
                                       spec.subsample_seed))
    return ds


def check_inputs(cfg: ExperimentConfig) -> list[str]:
    """Cheap checks for ``--dry-run``: the data path and every synthetic folder exist (and the
    folders have a ``feraug synth`` manifest). Returns the problems found (empty when none)."""
    from feraug.data.synthetic import read_manifest

    problems = []
    if not cfg.data.is_procedural and not Path(cfg.data.path).exists():
        problems.append(f"{cfg.data.path}: data set does not exist")
    built_here = {cfg.synthetic_dir(s.name) for s in cfg.synthetic}
    for folder in cfg.synthetic_dirs():
        if folder in built_here:  # made by this experiment's own synthetic stage
            continue
        try:
            read_manifest(folder)
        except DataError as exc:
            problems.append(str(exc))
    return problems
