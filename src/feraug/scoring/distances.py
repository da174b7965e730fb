"""Distribution and set distances between feature matrices: KID, FID, diversity.

KID (Binkowski et al. 2018) is the unbiased MMD^2 estimate with the cubic polynomial kernel
``k(x, y) = (x.y / d + 1)^3``, averaged over random equal-size subsets (torchmetrics'
``poly_mmd``); its standard error is the subsets' standard deviation over sqrt(subsets), an
approximation because subsets overlap. FID (Heusel et al. 2017) is the Frechet distance of
Gaussians fitted to the features (torchmetrics' ``_compute_fid``); it is biased upwards for
small sets, so compare FIDs only at equal set sizes.
"""

from __future__ import annotations

import math

import torch
from torchmetrics.image.fid import _compute_fid
from torchmetrics.image.kid import poly_mmd


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = 50,
        subset_size: int = 1000, seed: int = 0) -> dict[str, float] | None:
    """``{"kid", "se", "subset_size"}`` between feature sets ``[N, D]`` and ``[M, D]``
    (float64); None when either set has fewer than two rows."""
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        return None
    gen = torch.Generator().manual_seed(seed)
    real, fake = real.double(), fake.double()
    values = []
    for _ in range(subsets):
        r = real[torch.randperm(len(real), generator=gen)[:m]]
        f = fake[torch.randperm(len(fake), generator=gen)[:m]]
        values.append(float(poly_mmd(r, f, degree=3, gamma=None, coef=1.0)))
    t = torch.tensor(values, dtype=torch.float64)
    se = float(t.std(unbiased=True)) / math.sqrt(subsets) if subsets > 1 else float("nan")
    return {"kid": float(t.mean()), "se": se, "subset_size": m}


def fid(real: torch.Tensor, fake: torch.Tensor) -> float | None:
    """Frechet distance of the two feature sets (float64); None with fewer than two rows."""
    if len(real) < 2 or len(fake) < 2:
        return None
    real, fake = real.double(), fake.double()
    value = _compute_fid(real.mean(0), torch.cov(real.T), fake.mean(0), torch.cov(fake.T))
    return float(value)


def mean_pairwise_distance(features: torch.Tensor) -> float | None:
    """Mean Euclidean distance over all distinct pairs of rows (a diversity measure)."""
    n = len(features)
    if n < 2:
        return None
    d = torch.cdist(features.double(), features.double())
    return float(d.sum() / (n * (n - 1)))


def nearest_distance(queries: torch.Tensor, reference: torch.Tensor, chunk: int = 4096
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(distance, index)`` of each query row's nearest reference row (Euclidean)."""
    best = torch.full((len(queries),), math.inf, dtype=torch.float64)
    where = torch.zeros(len(queries), dtype=torch.long)
    q = queries.double()
    for start in range(0, len(reference), chunk):
        d, i = torch.cdist(q, reference[start : start + chunk].double()).min(1)
        better = d < best
        best = torch.where(better, d, best)
        where = torch.where(better, i + start, where)
    return best, where
