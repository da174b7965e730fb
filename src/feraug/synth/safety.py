"""Where a synthetic set may be written: never into a validation/test split folder, never
inside the real data set, never over an existing non-empty folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from feraug.data.dataset import FaceDataset
from feraug.data.spec import SPLIT_FIELDS, DataSpec, require_same_split
from feraug.errors import DataError, FeraugError
from feraug.io import lies_inside, prepare_output_dir
from feraug.synth.plan import HELD_OUT_NAMES

if TYPE_CHECKING:
    from feraug.gan.meta import GeneratorMeta


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
    if real_root and lies_inside(given, real_root):
        root = Path(real_root).expanduser().absolute()
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


SAME_SPLIT_ADVICE = ("its faces may come from this split's validation/test faces; use the same "
                     "--class-map/--folds/--fold/--data-seed as `feraug gan train`")


def check_generator_spec(recorded: DataSpec | None, given: DataSpec) -> None:
    """Refuse, before anything is loaded, ``given`` when it cuts the data set a generator was
    trained on (``recorded``, its stored spec) differently: ConfigError naming the differing
    values. Another data set, or a generator without the record, passes;
    :func:`check_generator_split` then compares the faces themselves."""
    if recorded is not None and recorded.same_data(given.path):
        require_same_split(recorded, given, f"{given.path}: the generator was trained on a "
                           "different train split of this data set", SAME_SPLIT_ADVICE)


def check_generator_split(generator_meta: GeneratorMeta, real: FaceDataset) -> None:
    """Refuse a generator trained on *another split of the same data set*: its training faces
    may be ``real``'s validation or test faces (e.g. CK+ fold 0 versus fold 1), and images made
    from them would leak into the classifier's training set. A generator trained on another
    data set, or one without the record (older checkpoints), passes. Faces are compared by
    file identity and label (``content_fingerprint``), not pixels, so a re-encoded or
    re-aligned copy of the same data set counts as the same data set."""
    if real.split_differs_from(generator_meta.data_content, generator_meta.train_content,
                               train_only=True):
        stored = generator_meta.data_spec or generator_meta.split or {}
        split = {k: stored[k] for k in SPLIT_FIELDS if k in stored}
        raise DataError(
            f"{real.root or real.format}: the generator was trained on a different train split "
            f"of this data set{f' ({split})' if split else ''}; {SAME_SPLIT_ADVICE}")
