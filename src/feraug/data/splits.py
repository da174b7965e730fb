"""Stratified (and, where subjects are known, subject-disjoint) splits and k-fold assignment."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit

from feraug.errors import DataError


def stratified_holdout(labels: torch.Tensor, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask selecting a stratified ``fraction`` of the items (at least one per class
    where a class has two or more items)."""
    y = labels.numpy()
    if not 0.0 < fraction < 1.0:
        raise DataError(f"holdout fraction must be in (0, 1), got {fraction}")
    mask = np.zeros(len(y), dtype=bool)
    counts = np.bincount(y)
    if (counts[counts > 0] < 2).any() or len(y) * fraction < len(counts[counts > 0]):
        rng = np.random.default_rng(seed)
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            k = int(round(len(idx) * fraction)) if len(idx) > 1 else 0
            mask[rng.permutation(idx)[: max(k, 1 if len(idx) > 1 else 0)]] = True
        return mask
    sss = StratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    _, hold = next(sss.split(np.zeros(len(y)), y))
    mask[hold] = True
    return mask


def subject_holdout(labels: torch.Tensor, subjects: list[str], fraction: float,
                    seed: int) -> np.ndarray:
    """Boolean mask of about a ``fraction`` of the items made of whole subjects (stratified
    as far as subjects allow), so that no subject is on both sides; a plain stratified
    hold-out when there are too few subjects for that."""
    k = max(2, round(1 / fraction))
    try:
        folds = subject_folds(labels, subjects, k, seed)
    except DataError:
        return stratified_holdout(labels, fraction, seed)
    return folds == 0


def subject_folds(labels: torch.Tensor, subjects: list[str], k: int, seed: int) -> np.ndarray:
    """Fold number (0..k-1) for each item: subject-disjoint, stratified as far as possible."""
    uniq = sorted(set(subjects))
    if len(uniq) < k:
        raise DataError(f"cannot make {k} subject-disjoint folds from {len(uniq)} subjects")
    groups = np.array([uniq.index(s) for s in subjects])
    sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    fold = np.zeros(len(subjects), dtype=np.int64)
    for f, (_, test_idx) in enumerate(sgkf.split(np.zeros(len(groups)), labels.numpy(), groups)):
        fold[test_idx] = f
    return fold


def stratified_folds(labels: torch.Tensor, k: int, seed: int) -> np.ndarray:
    """Fold number for each item when subjects are unknown (stratified k-fold)."""
    from sklearn.model_selection import StratifiedKFold

    if len(labels) < k:
        raise DataError(f"cannot make {k} folds from {len(labels)} images")
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    fold = np.zeros(len(labels), dtype=np.int64)
    for f, (_, test_idx) in enumerate(skf.split(np.zeros(len(labels)), labels.numpy())):
        fold[test_idx] = f
    return fold


def assign_splits(
    labels: torch.Tensor,
    subjects: list[str] | None,
    k: int,
    fold: int,
    seed: int,
) -> list[str]:
    """Split names for a data set without its own splits, using k-fold cross-validation.

    Fold ``fold`` is the test split, fold ``(fold + 1) % k`` the validation split, the rest
    train. Folds are subject-disjoint when subjects are known, so no person appears in two
    splits.
    """
    if not 0 <= fold < k:
        raise DataError(f"fold must be in 0..{k - 1}, got {fold}")
    if subjects is not None:
        folds = subject_folds(labels, subjects, k, seed)
    else:
        folds = stratified_folds(labels, k, seed)
    val_fold = (fold + 1) % k
    return ["test" if f == fold else "val" if f == val_fold else "train" for f in folds.tolist()]


def subsample_train(split: list[str], labels: torch.Tensor, fraction: float,
                    seed: int) -> torch.Tensor:
    """Indices to keep: ``fraction`` of each class's ``train`` images (at least one, drawn
    with ``seed``) and every image of the other splits, in the original order. For low-data
    protocols: validation and test stay whole, so scores stay comparable."""
    if not 0.0 < fraction <= 1.0:
        raise DataError(f"train fraction must be in (0, 1], got {fraction}")
    keep = torch.tensor([s != "train" for s in split], dtype=torch.bool)
    train = torch.tensor([s == "train" for s in split], dtype=torch.bool)
    gen = torch.Generator().manual_seed(int(seed))
    for c in labels[train].unique().tolist():
        members = (train & (labels == c)).nonzero().flatten()
        k = max(1, round(len(members) * fraction))
        keep[members[torch.randperm(len(members), generator=gen)[:k]]] = True
    return keep.nonzero().flatten()
