"""Where translators' inputs come from: real *train* faces in a seeded, reproducible order."""

from __future__ import annotations

import hashlib

import torch

from feraug.data.dataset import FaceDataset
from feraug.errors import DataError


def derive_seed(seed: int, emotion: str, batch: int) -> int:
    """The seed of one generation batch: a stable 31-bit hash of plan seed, emotion, batch."""
    digest = hashlib.sha256(f"feraug-synth/{seed}/{emotion}/{batch}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def source_mask(labels: torch.Tensor, classes: tuple[str, ...], source: str | None,
                emotion: str) -> torch.Tensor:
    """Which faces (by label) a translator may turn into ``emotion``: those of its
    ``source`` emotion, or without one those of every emotion but ``emotion`` itself."""
    if source is not None:
        return labels == classes.index(source)
    return labels != (classes.index(emotion) if emotion in classes else -1)


class TranslatorSources:
    """Real *train* faces a translator starts from, handed out in a seeded order: those of its
    source emotion, or (no fixed source emotion) those of every emotion but the requested one."""

    def __init__(self, real: FaceDataset, emotion: str | None, seed: int) -> None:
        self.real, self.source, self.seed = real, emotion, seed
        self.train = real.indices("train")
        self._pool: tuple[str, torch.Tensor] | None = None
        self._order: tuple[tuple[str, int], list[int]] | None = None

    def pool(self, emotion: str) -> torch.Tensor:
        """Indices into the real data set of the source faces for ``emotion``."""
        if self._pool is None or self._pool[0] != emotion:
            labels = self.real.labels[self.train]
            where = self.real.root or self.real.format
            if self.source is not None and self.source not in self.real.classes:
                raise DataError(f"{where}: has no {self.source!r} faces to translate")
            idx = self.train[source_mask(labels, self.real.classes, self.source, emotion)]
            what = f"{self.source!r} faces" if self.source is not None \
                else f"faces of emotions other than {emotion!r}"
            if len(idx) == 0:
                raise DataError(f"{where}: the train split has no "
                                f"{what} for the translator to start from")
            self._pool = (emotion, idx)
        return self._pool[1]

    def _permutation(self, emotion: str, cycle: int, m: int) -> list[int]:
        if self._order is None or self._order[0] != (emotion, cycle):
            g = torch.Generator().manual_seed(derive_seed(self.seed, f"src-{emotion}", cycle))
            self._order = ((emotion, cycle), torch.randperm(m, generator=g).tolist())
        return self._order[1]

    def take_indices(self, emotion: str, start: int, n: int) -> list[int]:
        """Indices into the real data set of the sources for candidates ``start ..
        start+n-1`` of ``emotion``; each pass over the pool uses every face once, passes in
        different seeded orders."""
        pool = self.pool(emotion)
        picks = []
        for j in range(start, start + n):
            cycle, pos = divmod(j, len(pool))
            picks.append(int(pool[self._permutation(emotion, cycle, len(pool))[pos]]))
        return picks

    def take(self, emotion: str, start: int, n: int) -> tuple[torch.Tensor, list[str]]:
        """Sources for candidates ``start .. start+n-1`` of ``emotion`` (one per candidate)
        and their source ids."""
        picks = self.take_indices(emotion, start, n)
        return self.real.images[picks], [self.real.source_ids[p] for p in picks]
