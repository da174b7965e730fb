"""DiffAugment: batched, differentiable, seeded, and shape-preserving."""

from __future__ import annotations

import pytest
import torch

from feraug.gan.diffaugment import POLICIES, cutout, diff_augment, translation


def batch() -> torch.Tensor:
    return torch.rand(6, 1, 48, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_every_policy_keeps_shape_and_passes_gradients() -> None:
    for policy in [*POLICIES, "color,translation,cutout"]:
        x = batch().requires_grad_(True)
        y = diff_augment(x, policy, generator=torch.Generator().manual_seed(1))
        assert y.shape == x.shape
        y.square().sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0, policy


def test_seeded_generator_is_deterministic_and_empty_policy_is_identity() -> None:
    x = batch()
    a = diff_augment(x, generator=torch.Generator().manual_seed(5))
    b = diff_augment(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert not torch.equal(a, x)
    assert diff_augment(x, "") is x


def test_translation_shifts_content_and_pads_with_zero() -> None:
    x = torch.ones(32, 1, 16, 16)
    y = translation(x, torch.Generator().manual_seed(0))
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    shifted = (y == 0).flatten(1).any(1)
    assert 0 < int(shifted.sum()) <= 32  # most images moved, none lost entirely
    assert bool((y.flatten(1).sum(1) >= 0.75 * 0.75 * 256 - 1).all())


def test_cutout_zeroes_at_most_a_quarter() -> None:
    x = torch.ones(16, 1, 48, 48)
    y = cutout(x, torch.Generator().manual_seed(0))
    zero = (y == 0).flatten(1).sum(1)
    assert bool((zero > 0).all()) and bool((zero <= 24 * 24).all())


def test_unknown_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="rotate"):
        diff_augment(batch(), "color,rotate")
