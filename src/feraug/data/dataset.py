"""`FaceDataset`: a whole face data set as in-memory uint8 tensors.

Every reader produces one of these; training, synthesis and evaluation consume it. Images are
grayscale ``uint8`` tensors of shape ``[N, 1, S, S]``; labels index into ``classes`` (canonical
emotion names in canonical order). Each image belongs to one split (``train``, ``val`` or
``test``; ``""`` for not yet assigned) and may carry a subject id and a synthetic flag.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import torch

from feraug.errors import DataError

SPLITS: tuple[str, ...] = ("train", "val", "test")
UNASSIGNED = ""


@dataclass
class FaceDataset:
    """A face data set held entirely in memory."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    split: list[str]
    source_ids: list[str]
    subjects: list[str] | None = None
    synthetic: torch.Tensor | None = None
    format: str = "unknown"
    root: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[1] != 1:
            raise ValueError(f"images must be uint8 [N,1,H,W], got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if self.labels.shape != (n,) or len(self.split) != n or len(self.source_ids) != n:
            raise ValueError("images, labels, split and source_ids must have the same length")
        if self.subjects is not None and len(self.subjects) != n:
            raise ValueError("subjects must have one entry per image")
        if self.synthetic is None:
            self.synthetic = torch.zeros(n, dtype=torch.bool)
        self.labels = self.labels.to(torch.int64)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def size(self) -> int:
        """Image side length in pixels."""
        return int(self.images.shape[-1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split_names(self) -> list[str]:
        """Splits present, in canonical order."""
        present = set(self.split)
        return [s for s in (*SPLITS, UNASSIGNED) if s in present]

    def indices(self, split: str) -> torch.Tensor:
        """Indices of the images in ``split``."""
        return torch.tensor([i for i, s in enumerate(self.split) if s == split], dtype=torch.long)

    def select(self, index: torch.Tensor | list[int]) -> FaceDataset:
        """A new data set holding the given images (in the given order)."""
        idx = torch.as_tensor(index, dtype=torch.long)
        pick = idx.tolist()
        return replace(
            self,
            images=self.images[idx],
            labels=self.labels[idx],
            split=[self.split[i] for i in pick],
            source_ids=[self.source_ids[i] for i in pick],
            subjects=None if self.subjects is None else [self.subjects[i] for i in pick],
            synthetic=self.synthetic[idx],
            extra=dict(self.extra),
        )

    def subset(self, split: str) -> FaceDataset:
        """The images of one split; raises DataError naming the data set when it is empty."""
        idx = self.indices(split)
        if len(idx) == 0:
            raise DataError(f"{self.root or self.format}: split {split!r} has no images "
                            f"(splits present: {self.split_names()})")
        return self.select(idx)

    def class_counts(self, split: str | None = None) -> dict[str, int]:
        """Images per class, over one split or the whole data set."""
        labels = self.labels if split is None else self.labels[self.indices(split)]
        counts = torch.bincount(labels, minlength=self.num_classes).tolist()
        return {c: int(n) for c, n in zip(self.classes, counts, strict=True)}

    def with_split(self, split: list[str]) -> FaceDataset:
        """A copy with new split assignments."""
        if len(split) != len(self):
            raise ValueError("split must have one entry per image")
        return replace(self, split=list(split))

    def fingerprint(self) -> str:
        """Content fingerprint: SHA-256 over pixels, labels, classes, splits and synthetic flags."""
        h = hashlib.sha256()
        h.update(self.images.contiguous().numpy().tobytes())
        h.update(self.labels.numpy().tobytes())
        h.update("|".join(self.classes).encode())
        h.update("|".join(self.split).encode())
        h.update(self.synthetic.numpy().tobytes())
        return h.hexdigest()[:16]

    def content_fingerprint(self, with_splits: bool = False) -> str:
        """Which real faces with which labels (and, ``with_splits``, in which split),
        independent of image size and location (hashes ``source_ids``, not pixels). Without
        splits it is equal for two loads of one data set split differently."""
        rows = sorted(f"{s}\t{self.classes[int(y)]}\t{i}" if with_splits
                      else f"{self.classes[int(y)]}\t{i}"
                      for s, y, i in zip(self.split, self.labels.tolist(), self.source_ids,
                                         strict=True)
                      if not i.startswith("synthetic:"))
        return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]

    def split_differs_from(self, content: str | None, recorded: str | None,
                           train_only: bool = False) -> bool:
        """True when this is the data set a model recorded (``content`` =
        :meth:`content_fingerprint`) but split differently from its record: ``recorded`` is
        the ``with_splits`` fingerprint, or with ``train_only`` the train split's content
        fingerprint. Another data set, or a missing record (older checkpoints), is False."""
        if not content or not recorded or content != self.content_fingerprint():
            return False
        current = self.subset("train").content_fingerprint() if train_only \
            else self.content_fingerprint(with_splits=True)
        return current != recorded

    def summary(self) -> dict:
        """Per-split, per-class counts and basic facts, JSON-serialisable."""
        return {
            "format": self.format,
            "root": self.root,
            "num_images": len(self),
            "image_size": [self.size, self.size],
            "classes": list(self.classes),
            "splits": {
                (s or "unassigned"): {"total": len(self.indices(s)), **self.class_counts(s)}
                for s in self.split_names()
            },
            "synthetic": int(self.synthetic.sum()),
            "subjects": None if self.subjects is None else len(set(self.subjects)),
            "fingerprint": self.fingerprint(),
        }

    def to_state(self) -> dict:
        """Plain dict of tensors and strings (loadable with ``weights_only=True``).

        The per-image string lists are stored as one NUL-joined string each: unpickling
        35,887 separate strings with the weights-only unpickler takes about a second,
        one string takes microseconds.
        """
        return {
            "images": self.images,
            "labels": self.labels,
            "classes": list(self.classes),
            "split": _join(self.split),
            "source_ids": _join(self.source_ids),
            "subjects": None if self.subjects is None else _join(self.subjects),
            "synthetic": self.synthetic,
            "format": self.format,
            "root": self.root,
        }

    @classmethod
    def from_state(cls, state: dict) -> FaceDataset:
        """Inverse of :meth:`to_state`."""
        n = len(state["labels"])
        return cls(
            images=state["images"],
            labels=state["labels"],
            classes=tuple(state["classes"]),
            split=_split(state["split"], n),
            source_ids=_split(state["source_ids"], n),
            subjects=None if state["subjects"] is None else _split(state["subjects"], n),
            synthetic=state["synthetic"],
            format=state["format"],
            root=state["root"],
        )


def _join(items: list[str]) -> str:
    return "\0".join(items)


def _split(joined: str | list[str], n: int) -> list[str]:
    """Inverse of :func:`_join` for ``n`` items (also accepts a plain list)."""
    if isinstance(joined, list):
        return list(joined)
    return joined.split("\0") if n else []


def concat(datasets: list[FaceDataset]) -> FaceDataset:
    """Concatenate data sets with the same classes and image size (e.g. real + synthetic)."""
    if not datasets:
        raise ValueError("nothing to concatenate")
    first = datasets[0]
    for d in datasets[1:]:
        if d.classes != first.classes:
            raise DataError(f"{d.root}: classes {d.classes} differ from {first.classes}")
        if d.size != first.size:
            raise DataError(f"{d.root}: image size {d.size} differs from {first.size}")
    subjects = None
    if all(d.subjects is not None for d in datasets):
        subjects = [s for d in datasets for s in d.subjects]
    return FaceDataset(
        images=torch.cat([d.images for d in datasets]),
        labels=torch.cat([d.labels for d in datasets]),
        classes=first.classes,
        split=[s for d in datasets for s in d.split],
        source_ids=[s for d in datasets for s in d.source_ids],
        subjects=subjects,
        synthetic=torch.cat([d.synthetic for d in datasets]),
        format="+".join(dict.fromkeys(d.format for d in datasets)),
        root=first.root,
    )
