"""What a generator knows about its own training: :class:`GeneratorMeta`.

A generator checkpoint stores it as a plain dict under ``meta`` (:meth:`GeneratorMeta.to_dict`),
and the dict keeps exactly the keys that were recorded, so checkpoints stay readable by any
version. Keys this version does not know (written by a later one) are kept and written back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class GeneratorMeta(BaseModel):
    """The record of a generator's training: its data, split, guide and origin.

    Immutable: a generator changes its record with
    :meth:`~feraug.gan.base.GeneratorModel.update_meta`, which builds a new one. Every field is
    optional, because a checkpoint holds only what was recorded when it was written (older ones
    lack the content fingerprints and ``data_spec``; a generator that never trained has none).
    """

    # strict: a stored "7" must stay "7" when written back, not become 7
    model_config = ConfigDict(extra="allow", frozen=True, strict=True, protected_namespaces=())

    data: str | None = Field(None, description="the data set path given for training")
    data_format: str | None = Field(None, description="the format it was read as")
    data_fingerprint: str | None = Field(
        None, description="FaceDataset.fingerprint() of the whole data set (pixels included)")
    data_spec: dict[str, Any] | None = Field(
        None, description="DataSpec dump: how the data set was read and split")
    split: dict[str, Any] | None = Field(
        None, description="the split record of generators written before data_spec existed")
    train_fingerprint: str | None = Field(
        None, description="fingerprint of the train split (resume refuses other data)")
    data_content: str | None = Field(
        None, description="content fingerprint (ids + labels) of the whole data set")
    train_content: str | None = Field(
        None, description="content fingerprint of the train split (split-leak checks)")
    guide_sha256: str | None = Field(
        None, description="SHA-256 of the guide classifier (it may never judge the generator)")
    guide_sha256s: list[str] | None = Field(
        None, description="SHA-256 of every member of a guide ensemble (none may judge it)")
    translator_from_step: int | None = Field(
        None, description="twostage: the step of the stargan copied as stage 2")
    translator_from_sha256: str | None = Field(
        None, description="twostage: SHA-256 of the stargan checkpoint copied as stage 2 (the "
        "path alone does not say which file it was once that run goes on or is replaced)")

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any] | None) -> GeneratorMeta:
        """The record a checkpoint or manifest holds (``None``: nothing recorded).

        A value of a type this version would not write is kept as stored rather than refused,
        because refusing it would make a checkpoint that loaded before unloadable.
        """
        values = dict(stored or {})
        try:
            return cls.model_validate(values)
        except ValidationError:
            return cls.model_construct(**values)

    def guide_hashes(self) -> tuple[str, ...]:
        """The SHA-256 of every classifier that guided the generator (none: unguided)."""
        if self.guide_sha256s:
            return tuple(self.guide_sha256s)
        return (self.guide_sha256,) if self.guide_sha256 else ()

    def guide_record(self) -> dict[str, Any]:
        """The recorded guide keys alone, to hand on to a generator built from this one."""
        return {k: v for k, v in self.to_dict().items() if k in ("guide_sha256", "guide_sha256s")}

    def to_dict(self) -> dict[str, Any]:
        """The stored form: exactly the recorded keys (unknown ones included)."""
        return self.model_dump(exclude_unset=True, warnings=False)

    def merged(self, values: Mapping[str, Any]) -> GeneratorMeta:
        """A copy with ``values`` added (they win over recorded ones). ``values`` are
        validated (ValidationError on a wrong type); the recorded ones are kept as they are."""
        new = type(self).model_validate(dict(values))
        return self.from_stored({**self.to_dict(), **new.to_dict()})
