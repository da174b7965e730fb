"""Mini-batches straight from in-memory tensors: seeded shuffles or class-balanced sampling,
sharded across data-parallel ranks, resumable mid-epoch."""

from __future__ import annotations

import torch


def batches_per_epoch(n_images: int, batch_size: int, world_size: int = 1,
                      drop_last: bool = True) -> int:
    """Batches (optimiser steps) one rank takes in an epoch over ``n_images`` faces."""
    per_rank = n_images // world_size
    if drop_last:
        return max(per_rank // batch_size, 1)
    return -(-per_rank // batch_size)


class TensorBatches:
    """Index batches for one epoch at a time.

    The permutation of epoch ``e`` depends only on ``(seed, e)``, so a resumed run that knows
    its epoch and how many batches it already consumed sees exactly the same batches.
    With ``balanced=True`` each epoch draws ``len(labels)`` indices with probability inversely
    proportional to class frequency (with replacement).
    """

    def __init__(self, labels: torch.Tensor, batch_size: int, seed: int, balanced: bool = False,
                 rank: int = 0, world_size: int = 1, drop_last: bool = True) -> None:
        self.labels = labels.cpu()
        self.batch_size = batch_size
        self.seed = seed
        self.balanced = balanced
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        counts = torch.bincount(self.labels).clamp_min(1).double()
        self.weights = (1.0 / counts)[self.labels]

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """All indices of ``epoch`` for every rank, before sharding."""
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        n = len(self.labels)
        if self.balanced:
            return torch.multinomial(self.weights, n, replacement=True, generator=gen)
        return torch.randperm(n, generator=gen)

    def batches_per_epoch(self) -> int:
        return batches_per_epoch(len(self.labels), self.batch_size, self.world_size,
                                 self.drop_last)

    def epoch(self, epoch: int, skip: int = 0):
        """Yield this rank's index batches for ``epoch``, skipping the first ``skip``."""
        order = self.epoch_order(epoch)
        per_rank = len(order) // self.world_size
        mine = order[self.rank * per_rank : (self.rank + 1) * per_rank]
        for b in range(skip, self.batches_per_epoch()):
            idx = mine[b * self.batch_size : (b + 1) * self.batch_size]
            if len(idx):
                yield idx
