"""The expression guide's loss: plain cross-entropy, or cut once the guide is confident."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from feraug.gan.guide import Guide


@pytest.fixture()
def guide(ckpt: Path) -> Guide:
    return Guide(ckpt, ("disgust", "happy", "neutral"), 48, torch.device("cpu"))


def faces() -> torch.Tensor:
    return torch.rand(6, 1, 48, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_guide_loss_is_the_cross_entropy_towards_the_wanted_emotion(guide: Guide) -> None:
    x, labels = faces(), torch.tensor([0, 1, 2, 0, 1, 2])
    by_hand = F.cross_entropy(guide.logits(x), guide.index[labels])
    assert torch.allclose(guide.loss(x, labels), by_hand)


def test_a_confident_guide_stops_pushing(guide: Guide) -> None:
    """Each face's cross-entropy is cut at -log(confidence): faces the guide already gives
    the wanted emotion with at least that probability add nothing, the others less."""
    x, labels = faces(), torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        probs = guide.logits(x).softmax(1)[:, guide.index][torch.arange(6), labels]
    threshold = float(probs.median())
    ce = -probs.log()
    by_hand = (ce + math.log(threshold)).clamp(min=0).mean()
    got = guide.loss(x, labels, confidence=threshold)
    assert torch.allclose(got, by_hand, atol=1e-5)
    assert 0 < float(got) < float(guide.loss(x, labels))
    assert float(guide.loss(x, labels, confidence=1e-6)) == 0.0
