"""``DataSpec``: one typed description of a data set and of how it is split.

Data sets without official splits (CK+, JAFFE, plain image folders) are cut into folds with a
seed, and low-data protocols keep only a share of the training faces. A generator, a
synthetic set and a classifier made from one data set must all cut it the same way, or
test-fold faces leak into training. So every command builds its data from a ``DataSpec``
and compares two specs with :func:`require_same_split`. Generators, their samples, scores
and synthetic sets store ``spec.model_dump()`` beside what they write; a classifier's
checkpoint records the same values as its TrainConfig fields (:meth:`DataSpec.from_stored`
reads both, and the older records).

Only pydantic is imported here; the data layer (and torch) load when :meth:`DataSpec.load`
runs, so configs and the command line stay fast to import.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from feraug.errors import ConfigError, validate_config

if TYPE_CHECKING:
    from feraug.data.dataset import FaceDataset

#: Values that must agree between everything made from one data set: they decide which
#: faces are training faces. The image size is added where a comparison needs it.
SPLIT_FIELDS = ("class_map", "folds", "fold", "seed", "train_fraction", "subsample_seed")


class DataSpec(BaseModel):
    """A data set on disk, the size it is read at, and its train/val/test split."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="data set folder or FER2013 CSV")
    format: str | None = Field(None, description="reader name (None: detect)")
    size: int = Field(48, ge=16, le=256, description="image side in pixels")
    class_map: dict[str, str] | None = Field(None, description="class folder -> emotion")
    folds: int = Field(5, ge=2, description="folds for data sets without their own splits")
    fold: int = Field(0, ge=0, description="test fold (data sets without their own splits)")
    seed: int = Field(0, description="split seed: carved-out validation and folds")
    train_fraction: float = Field(1.0, gt=0, le=1, description="keep this share of each "
                                  "class's training faces (low-data protocols); validation "
                                  "and test stay whole")
    subsample_seed: int = Field(0, ge=0, description="seed of that draw")

    @model_validator(mode="after")
    def _fold_in_range(self) -> DataSpec:
        if self.fold >= self.folds:
            raise ValueError(f"fold {self.fold} is out of range for {self.folds} folds "
                             f"(use 0..{self.folds - 1})")
        return self

    def read(self, cache: bool = True) -> FaceDataset:
        """The whole data set with its splits, before any ``train_fraction`` subsample
        (through the decode cache unless ``cache`` is false)."""
        from feraug.data.load import load_dataset

        return load_dataset(self.path, format=self.format, size=self.size,
                            class_map=self.class_map, folds=self.folds, fold=self.fold,
                            seed=self.seed, use_cache=cache)

    def load(self, cache: bool = True) -> FaceDataset:
        """The data set as this spec describes it: :meth:`read`, then with
        ``train_fraction`` < 1 only that share of each class's training faces (drawn with
        ``subsample_seed``; validation and test untouched)."""
        ds = self.read(cache)
        if self.train_fraction < 1.0:
            from feraug.data.splits import subsample_train

            ds = ds.select(subsample_train(ds.split, ds.labels, self.train_fraction,
                                           self.subsample_seed))
        return ds

    def split_key(self, include_size: bool = False) -> dict[str, Any]:
        """The values that decide which faces are training faces (:data:`SPLIT_FIELDS`, plus
        ``size`` when ``include_size``): equal keys, same cut of the same data set."""
        fields = SPLIT_FIELDS + (("size",) if include_size else ())
        return {name: getattr(self, name) for name in fields}

    def split_differences(self, other: DataSpec, include_size: bool = False) -> list[str]:
        """``"field: mine vs other's"`` for each value of :meth:`split_key` that differs."""
        mine, theirs = self.split_key(include_size), other.split_key(include_size)
        return [f"{name}: {mine[name]!r} vs {theirs[name]!r}" for name in mine
                if mine[name] != theirs[name]]

    def same_data(self, path: str | Path | None) -> bool:
        """True when ``path`` names this spec's data set (links and ``..`` resolved)."""
        if not path or not self.path:
            return False
        return Path(self.path).resolve() == Path(path).resolve()

    @classmethod
    def from_train_config(cls, values: Mapping[str, Any], source: str = "config") -> DataSpec:
        """The spec of TrainConfig-style values (``data``, ``format``, ``image_size``,
        ``class_map``, ``folds``, ``fold``, ``seed``, ``data_seed``)."""
        spec = {"path": values.get("data"), "format": values.get("format"),
                "size": values.get("image_size"), "class_map": values.get("class_map"),
                "folds": values.get("folds"), "fold": values.get("fold"),
                "seed": split_seed(values)}
        return validate_config(cls, _given(spec), source)

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any], path: str | Path | None = None,
                    size: int | None = None, source: str = "stored data spec") -> DataSpec:
        """Read a spec back from what a checkpoint, run folder or manifest stored.

        Accepts a ``DataSpec`` dump (what is written now; keys it does not know, such as
        an experiment's procedural settings, are skipped), TrainConfig fields (a classifier
        checkpoint's ``config``: ``data``, ``image_size``, ``data_seed``, ...), or the split
        dictionary older generators and synthetic sets stored (``class_map``, ``folds``,
        ``fold``, ``seed``). ``path`` and ``size`` fill in what the record lacks.
        ConfigError naming ``source`` when the values are invalid.
        """
        if "path" in stored:
            values = {k: v for k, v in stored.items() if k in cls.model_fields}
        elif "data" in stored:
            values = cls.from_train_config(stored, source).model_dump()
        else:
            values = {k: stored.get(k) for k in ("class_map", "folds", "fold", "seed")}
        values = _given(values)
        for name, fallback in (("path", path), ("size", size)):
            if values.get(name) is None and fallback is not None:
                values[name] = str(fallback) if name == "path" else fallback
        values.setdefault("path", "")
        return validate_config(cls, values, source)


def split_seed(values: Mapping[str, Any]) -> int:
    """The split seed of TrainConfig-style values: ``data_seed``, or the training ``seed``
    when none was set (the behaviour before ``data_seed`` existed)."""
    data_seed = values.get("data_seed")
    return int(values.get("seed") or 0) if data_seed is None else int(data_seed)


def stored_spec(meta: Mapping[str, Any], size: int | None = None) -> DataSpec | None:
    """The spec a generator's or classifier's checkpoint meta records: its ``data_spec``
    (what is written now), a classifier's TrainConfig ``config``, or an older generator's
    ``split`` beside its ``data`` path. None when nothing is recorded. ``size`` fills in a
    record without one (a generator's image size)."""
    if meta.get("data_spec"):
        return DataSpec.from_stored(meta["data_spec"], size=size)
    config = meta.get("config")
    if isinstance(config, Mapping) and config.get("data") is not None:
        return DataSpec.from_stored(config, size=size)
    if meta.get("split"):
        return DataSpec.from_stored(meta["split"], path=meta.get("data"), size=size)
    return None


def require_same_split(expected: DataSpec, given: DataSpec, problem: str,
                       advice: str = "", include_size: bool = False) -> None:
    """ConfigError ``"PROBLEM (field: expected vs given, ...); ADVICE"`` unless both specs
    cut their data set the same way (:meth:`DataSpec.split_key`)."""
    differences = expected.split_differences(given, include_size)
    if differences:
        raise ConfigError(f"{problem} ({', '.join(differences)})"
                          + (f"; {advice}" if advice else ""))


def _given(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without the ``None`` entries, so the model's defaults apply to them."""
    return {k: v for k, v in values.items() if v is not None}
