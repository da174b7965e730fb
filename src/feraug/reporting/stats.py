"""Interval statistics: how far a score could move by chance.

Two sources of chance are covered, and they answer different questions:

- **Seeds.** The same recipe trained with another seed lands elsewhere. Scores over seeds get a
  Student-t interval for their mean (:func:`mean_ci`, :func:`ci_summary`), and two recipes
  run with the same seeds get one for their paired difference (:func:`paired_delta`).
- **Test images.** A test split is a sample; the same model scored on another sample of faces
  would land elsewhere. Resampling the test images with replacement gives a percentile
  interval for one model's accuracy and macro-F1 (:func:`bootstrap_ci`) and, with the *same*
  resamples for two models, for the difference between them (:func:`paired_bootstrap`),
  which is what "model A beats model B on this test set" needs.

When images come in groups that are not independent (several frames or expressions of one
subject in CK+ or JAFFE), pass ``groups`` (one id per image) to the bootstrap: whole groups
are resampled (a cluster bootstrap), so the interval reflects how many *people* were tested.
Without ``groups`` every image is its own group.

Everything here is pure: numbers in, numbers out, no files and no models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from feraug.io import clean

CONFIDENCE = 0.95
RESAMPLES = 2000


# ----------------------------------------------------------------------------- over seeds


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval (half-width NaN for n < 2)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, math.nan
    if x.size < 2:
        return float(x.mean()), math.nan
    # scipy is slow to import and only this needs it.
    from scipy.stats import t

    half = t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean()), float(half)


def ci_summary(values: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """``mean``, ``ci95`` (half-width of the Student-t interval; None for n < 2), ``low``,
    ``high``, ``sd`` (sample standard deviation), ``n`` and the ``values`` themselves."""
    vals = [float(v) for v in values]
    mean, half = mean_ci(vals, confidence)
    n = len(vals)
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else math.nan
    # None rather than NaN: the summary goes into strict JSON (results.json).
    return clean({"mean": mean, "ci95": half, "low": mean - half, "high": mean + half,
                  "sd": sd, "n": n, "values": vals})


def paired_delta(arm: dict[int, float], baseline: dict[int, float],
                 confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Mean ± CI of ``arm[seed] - baseline[seed]`` over the seeds both have, plus the
    ``seeds`` used and ``excludes_zero`` (True/False; None when there is no interval)."""
    seeds = sorted(set(arm) & set(baseline))
    out = ci_summary([arm[s] - baseline[s] for s in seeds], confidence)
    out["seeds"] = seeds
    low, high = out["low"], out["high"]
    out["excludes_zero"] = None if low is None or high is None else bool(low > 0 or high < 0)
    return out


# ----------------------------------------------------------------------------- over test images


def _group_index(groups: Sequence | None, n: int) -> tuple[np.ndarray, int]:
    """Each image's group number and the number of groups (one group per image if none)."""
    if groups is None:
        return np.arange(n), n
    if len(groups) != n:
        raise ValueError("groups must have one entry per image")
    _, inverse = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    return inverse.ravel(), int(inverse.max()) + 1


def _confusions(y_true: np.ndarray, y_pred: np.ndarray, k: int, idx: np.ndarray,
                group: np.ndarray | None = None) -> np.ndarray:
    """Confusion matrices ``[B, k, k]`` of the resamples ``idx`` ``[B, G]`` of the groups
    (``group``: each image's group number; default one group per image): each group's
    confusion table, weighted by how often the resample drew it."""
    n_groups = idx.shape[1]
    group = np.arange(len(y_true)) if group is None else group
    cells = group * k * k + np.asarray(y_true, dtype=np.int64) * k + np.asarray(y_pred)
    tables = np.bincount(cells, minlength=n_groups * k * k).reshape(n_groups, k * k)
    rows = np.arange(idx.shape[0], dtype=np.int64)[:, None] * n_groups
    drawn = np.bincount((rows + idx).ravel(), minlength=idx.size).reshape(idx.shape)
    return (drawn.astype(np.float64) @ tables).reshape(-1, k, k)


def scores_from_confusions(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy and macro-F1 (classes with no true and no predicted image score 0, as
    scikit-learn's ``zero_division=0``) of confusion matrices ``[..., k, k]``."""
    cm = cm.astype(np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    total = cm.sum(axis=(-2, -1))
    denom = cm.sum(axis=-1) + cm.sum(axis=-2)  # 2tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"accuracy": tp.sum(-1) / np.maximum(total, 1), "macro_f1": f1.mean(-1)}


def _resampled_scores(y_true: np.ndarray, preds: list[np.ndarray], num_classes: int,
                      resamples: int, seed: int, groups: Sequence | None = None,
                      chunk: int = 250) -> list[dict[str, np.ndarray]]:
    """Scores of every prediction vector on the same ``resamples`` resamples of the groups
    (images by default), drawn ``chunk`` at a time to bound memory on large test sets."""
    if len(y_true) == 0:
        raise ValueError("no images to bootstrap")
    group, n_groups = _group_index(groups, len(y_true))
    rng = np.random.default_rng(seed)
    parts: list[list[dict[str, np.ndarray]]] = [[] for _ in preds]
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n_groups, size=(min(chunk, resamples - start), n_groups))
        for part, pred in zip(parts, preds, strict=True):
            part.append(scores_from_confusions(_confusions(y_true, pred, num_classes, idx,
                                                           group)))
    return [{name: np.concatenate([p[name] for p in part]) for name in part[0]}
            for part in parts]


def _interval(values: np.ndarray, confidence: float) -> list[float]:
    """The central ``confidence`` percentile interval of bootstrap values."""
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return [float(lo), float(hi)]


def bootstrap_ci(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int,
                 resamples: int = RESAMPLES, confidence: float = CONFIDENCE,
                 seed: int = 0, groups: Sequence | None = None) -> dict:
    """``{"accuracy": [lo, hi], "macro_f1": [lo, hi], "confidence", "resamples", "unit"}``;
    ``unit`` is ``"image"`` or ``"group"`` (``groups`` given: a cluster bootstrap)."""
    (scores,) = _resampled_scores(y_true, [y_pred], num_classes, resamples, seed, groups)
    return {**{name: _interval(v, confidence) for name, v in scores.items()},
            "confidence": confidence, "resamples": resamples,
            "unit": "image" if groups is None else "group"}


def paired_bootstrap(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray,
                     num_classes: int, resamples: int = RESAMPLES,
                     confidence: float = CONFIDENCE, seed: int = 0,
                     groups: Sequence | None = None) -> dict:
    """Difference A - B in accuracy and macro-F1 on the same resamples of the test images.

    Returns ``{metric: {"a", "b", "difference", "ci": [lo, hi], "p_b_at_least_a"}}`` plus
    ``confidence`` and ``resamples``; ``p_b_at_least_a`` is the share of resamples where B
    scores at least as well as A (small = A is reliably better on such test sets).
    """
    if not len(y_true) == len(pred_a) == len(pred_b):
        raise ValueError("labels and both predictions must have the same length")
    sa, sb = _resampled_scores(y_true, [pred_a, pred_b], num_classes, resamples, seed, groups)
    full = np.arange(len(y_true))[None, :]
    pa = scores_from_confusions(_confusions(y_true, pred_a, num_classes, full))
    pb = scores_from_confusions(_confusions(y_true, pred_b, num_classes, full))
    out: dict = {"confidence": confidence, "resamples": resamples,
                 "unit": "image" if groups is None else "group"}
    for name in sa:
        diff = sa[name] - sb[name]
        out[name] = {"a": float(pa[name][0]), "b": float(pb[name][0]),
                     "difference": float(pa[name][0] - pb[name][0]),
                     "ci": _interval(diff, confidence),
                     "p_b_at_least_a": float((diff <= 0).mean())}
    return out


def paired_seed_bootstrap(y_true: np.ndarray, preds_a: Sequence[np.ndarray],
                          preds_b: Sequence[np.ndarray], num_classes: int,
                          groups: Sequence | None = None, resamples: int = RESAMPLES,
                          confidence: float = CONFIDENCE, seed: int = 0) -> dict:
    """Mean over seeds of A - B (accuracy, macro-F1), ``preds_a[i]`` and ``preds_b[i]`` from
    the same seed, with a percentile interval from a two-level bootstrap: each resample draws
    the test images' ``groups`` (whole subjects when given) and, with replacement, the seeds
    whose paired differences it averages. The seeds share one test set, so all of them are
    scored on the same draw of subjects. The interval so covers which subjects were tested
    and how the seeds fell (with two or three seeds the second is coarse). Returns
    ``{metric: {"mean", "low", "high"}}`` plus ``unit``, ``n_units``, ``n_seeds``,
    ``confidence`` and ``resamples``."""
    n = len(preds_a)
    if n == 0 or n != len(preds_b):
        raise ValueError("one prediction vector per seed for both arms")
    scores = _resampled_scores(y_true, [*preds_a, *preds_b], num_classes, resamples, seed,
                               groups)
    full = np.arange(len(y_true))[None, :]
    points = [scores_from_confusions(_confusions(y_true, p, num_classes, full))
              for p in (*preds_a, *preds_b)]
    _, n_units = _group_index(groups, len(y_true))
    out: dict = {"unit": "image" if groups is None else "subject", "n_units": n_units,
                 "n_seeds": n, "confidence": confidence, "resamples": resamples}
    picks = np.random.default_rng(seed + 1).integers(0, n, size=(resamples, n))
    rows = np.arange(resamples)[:, None]
    for name in ("accuracy", "macro_f1"):
        per_seed = np.stack([sa[name] - sb[name]
                             for sa, sb in zip(scores[:n], scores[n:], strict=True)], axis=1)
        diff = per_seed[rows, picks].mean(axis=1)  # [resamples]: drawn seeds, averaged
        mean = float(np.mean([p[name][0] for p in points[:n]])
                     - np.mean([p[name][0] for p in points[n:]]))
        low, high = _interval(diff, confidence)
        out[name] = {"mean": mean, "low": low, "high": high}
    return out
