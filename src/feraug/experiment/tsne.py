"""t-SNE of a classifier's penultimate features (``model.embed``): real test faces coloured by
class and, when synthetic sets are used, real vs synthetic *training* faces of the classes the
synthetic sets hold, in one shared embedding. The sample is capped so it runs in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from feraug.classifier.infer import embed_images
from feraug.data.dataset import FaceDataset
from feraug.models.checkpoint import LoadedClassifier

MIN_POINTS = 8


def _sample(pool: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """Up to ``n`` random entries of ``pool`` (sorted, so the choice is easy to audit)."""
    if len(pool) <= n:
        return pool
    return pool[torch.randperm(len(pool), generator=gen)[:n]].sort().values


def tsne_points(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE (scikit-learn) after PCA to at most 50 dimensions.

    scikit-learn runs single-threaded here: its OpenMP runtime and torch's compete for the
    same cores otherwise (measured: 6 s instead of 0.2 s for 30 points on 2 cores).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n = len(features)
    dims = min(50, features.shape[1], n)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    with threadpool_limits(1):
        x = PCA(n_components=dims, random_state=seed).fit_transform(features) \
            if dims < features.shape[1] else features
        return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                    random_state=seed).fit_transform(x)


def plan_sample(real: FaceDataset, synthetic: FaceDataset | None, max_points: int,
                seed: int = 0) -> dict[str, tuple[FaceDataset, torch.Tensor]]:
    """Which images to embed: ``test`` (real test split), and with ``synthetic`` also
    ``real_train`` and ``synthetic`` (train images of the classes the synthetic set holds).
    Half the budget goes to the test panel, a quarter to each of the other two."""
    gen = torch.Generator().manual_seed(seed)
    test_budget = max_points if synthetic is None else max_points // 2
    parts = {"test": (real, _sample(real.indices("test"), test_budget, gen))}
    if synthetic is not None and len(synthetic):
        syn_classes = torch.unique(synthetic.labels)
        train = real.indices("train")
        train = train[torch.isin(real.labels[train], syn_classes)]
        parts["real_train"] = (real, _sample(train, max_points // 4, gen))
        parts["synthetic"] = (synthetic, _sample(torch.arange(len(synthetic)),
                                                 max_points // 4, gen))
    return parts


def save_tsne(loaded: LoadedClassifier, real: FaceDataset, path: str | Path,
              synthetic: FaceDataset | None = None, max_points: int = 1500, seed: int = 0,
              title: str = "") -> dict | None:
    """Embed a capped sample, run t-SNE and save a PNG (one panel, or two with synthetic
    data). Returns counts per group, or None when there are too few images to embed."""
    parts = plan_sample(real, synthetic, max_points, seed)
    groups = {k: idx for k, (_, idx) in parts.items()}
    total = sum(len(i) for i in groups.values())
    if total < MIN_POINTS:
        return None
    feats = np.concatenate([embed_images(loaded, ds.images[idx]) for ds, idx in parts.values()])
    xy = tsne_points(feats, seed)
    labels = np.concatenate([ds.labels[idx].numpy() for ds, idx in parts.values()])
    group = np.concatenate([[k] * len(i) for k, i in groups.items()])
    _plot(xy, labels, group, list(real.classes), Path(path), title)
    return {k: int(len(i)) for k, i in groups.items()}


def _plot(xy: np.ndarray, labels: np.ndarray, group: np.ndarray, classes: list[str],
          path: Path, title: str) -> None:
    from feraug.reporting.figures import pyplot, save_figure

    plt = pyplot()
    colors = plt.get_cmap("tab10")
    two = "synthetic" in set(group.tolist())
    fig, axes = plt.subplots(1, 2 if two else 1, figsize=(12 if two else 6.5, 5.2),
                             squeeze=False)
    ax = axes[0, 0]
    test = group == "test"
    for c, name in enumerate(classes):
        m = test & (labels == c)
        if m.any():
            ax.scatter(xy[m, 0], xy[m, 1], s=9, color=colors(c % 10), label=name, alpha=0.75)
    ax.set_title(f"real test faces by class ({int(test.sum())})")
    ax.legend(fontsize=7, markerscale=1.5, loc="best")
    if two:
        ax = axes[0, 1]
        ax.scatter(xy[test, 0], xy[test, 1], s=4, color="0.85", label="real test (all)")
        for c, name in enumerate(classes):
            for kind, marker, size in (("real_train", "o", 12), ("synthetic", "x", 16)):
                m = (group == kind) & (labels == c)
                if m.any():
                    word = "real" if kind == "real_train" else "synthetic"
                    ax.scatter(xy[m, 0], xy[m, 1], s=size, marker=marker, color=colors(c % 10),
                               label=f"{name} {word} (train)", alpha=0.8)
        ax.set_title("real (o) vs synthetic (x) training faces")
        ax.legend(fontsize=7, markerscale=1.5, loc="best")
    for a in axes.ravel():
        a.set_xticks([])
        a.set_yticks([])
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
