"""The translators' critic: the spectral-norm patch discriminator, its conditional and
steeper forms, and the plain, deeper critic regularised by R1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from feraug.gan.editnets import PatchDiscriminator, r1_penalty


def faces() -> torch.Tensor:
    return torch.rand(6, 1, 48, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_a_conditional_discriminator_scores_each_face_by_its_own_emotions_channel() -> None:
    """conditional_d: one real/fake map per emotion; each face gets its label's map, so the
    same face scores differently as different emotions, and the maps are the unconditional
    head's maps channel by channel."""
    torch.manual_seed(0)
    d = PatchDiscriminator(8, num_classes=3, image_size=48, conditional=True).eval()
    x = faces()[:3]
    labels = torch.tensor([2, 0, 1])
    with torch.no_grad():
        scores, logits = d(x, labels)
        every = d.patch(d.features(x))
    assert scores.shape == (3, 1, 12, 12) and logits.shape == (3, 3)
    for i, k in enumerate(labels.tolist()):
        assert torch.equal(scores[i, 0], every[i, k])
    assert not torch.allclose(d(x, torch.tensor([0, 0, 0]))[0], scores)
    with pytest.raises(ValueError, match="labels"):
        d(x)


def test_the_discriminators_score_gain_scales_its_scores_not_its_emotion_logits() -> None:
    x = faces()[:2]
    torch.manual_seed(0)
    plain = PatchDiscriminator(8, num_classes=3).eval()
    torch.manual_seed(0)
    steep = PatchDiscriminator(8, num_classes=3, score_gain=10.0).eval()
    with torch.no_grad():
        (a, la), (b, lb) = plain(x), steep(x)
    assert torch.allclose(b, 10 * a, atol=1e-6) and torch.equal(la, lb)


def test_a_plain_critic_has_no_spectral_norm_and_extra_layers_widen_what_a_score_sees() -> None:
    """Each extra 3 x 3 layer at 1/4 resolution widens a score's receptive field by 8 px: a
    change of one pixel 15 px from a patch's centre moves that patch's score only in the
    deeper critic."""
    torch.manual_seed(0)
    plain = PatchDiscriminator(8, spectral=False, extra_layers=2).eval()
    assert not any(n.endswith("weight_orig") for n, _ in plain.named_parameters())
    assert any(n.endswith("weight_orig") for n, _ in PatchDiscriminator(8).named_parameters())
    shallow = PatchDiscriminator(8, spectral=False).eval()
    x = faces()[:1]
    y = x.clone()
    y[0, 0, 24, 24 + 15] += 1.0  # 15 px right of the centre of patch (5, 5)

    def moved(d: PatchDiscriminator) -> bool:
        with torch.no_grad():
            return not torch.equal(d(x)[0][0, 0, 5, 5], d(y)[0][0, 0, 5, 5])

    assert moved(plain) and not moved(shallow)
    assert plain(x)[0].shape == shallow(x)[0].shape == (1, 1, 12, 12)


def test_r1_is_the_squared_gradient_norm_of_each_faces_mean_score() -> None:
    """Checked against a critic whose gradient is known: the mean of a linear score map
    w * x over the patches has gradient w / P at every pixel of the face."""
    x = faces()[:2].requires_grad_(True)
    w = 3.0
    scores = (w * x).unfold(2, 4, 4).unfold(3, 4, 4).mean((-1, -2))  # [2, 1, 12, 12]
    per_pixel = w / (16 * 144)  # each pixel feeds one patch, a 16-pixel mean, of 144 patches
    assert r1_penalty(scores, x).item() == pytest.approx(48 * 48 * per_pixel ** 2)


def test_stargan_with_an_r1_critic_penalises_lazily_and_resumes_exactly(tmp_path: Path) -> None:
    from test_gan import check_resume_is_exact, tiny_faces, tiny_model

    from feraug.gan.base import to_float

    extra = {"d_spectral_norm": False, "d_extra_layers": 1, "r1_gamma": 1.0, "r1_every": 2}
    model = check_resume_is_exact("stargan", extra, tmp_path)
    assert len(model.nets["d"].features) == 8
    logged = [json.loads(x) for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert all("d_r1" in row for row in logged)

    fresh = tiny_model("stargan", **extra)
    data = tiny_faces()
    real, labels = to_float(data.images[:6]), data.labels[:6]
    penalties = [float(fresh.train_step(real, labels)["d_r1"]) for _ in range(4)]
    assert penalties[0] > 0 and penalties[2] > 0  # steps 0 and 2 of every 2
    assert penalties[1] == penalties[3] == 0


def test_a_matching_aware_critic_learns_that_a_real_face_passes_only_as_its_own_emotion(
        tmp_path: Path) -> None:
    """d_mismatch: real faces asked about another emotion are negatives. On faces whose
    emotion is their brightness, 40 steps make the critic score each real face far higher
    under its own emotion than under the next one; the term is logged and resumes exactly."""
    from test_gan import CLASSES, check_resume_is_exact, tiny_model

    from feraug.errors import ConfigError

    with pytest.raises(ConfigError, match="conditional_d"):
        tiny_model("stargan", d_mismatch=0.5)
    extra = {"conditional_d": True, "d_mismatch": 0.5, "d_spectral_norm": False}
    check_resume_is_exact("stargan", extra, tmp_path)
    logged = [json.loads(x) for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert all(row["d_wrong"] > 0 for row in logged)

    k = len(CLASSES)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(k).repeat(8)
    real = (labels.float() / (k - 1) * 1.6 - 0.8).view(-1, 1, 1, 1) \
        + 0.1 * torch.randn(len(labels), 1, 48, 48, generator=g)
    torch.manual_seed(0)
    model = tiny_model("stargan", lr=1e-3, **extra)
    for _ in range(40):
        pick = torch.randperm(len(labels), generator=g)[:12]
        model.train_step(real[pick], labels[pick])
    d = model.nets["d"].eval()
    with torch.no_grad():
        own = d(real, labels)[0].mean()
        other = d(real, (labels + 1) % k)[0].mean()
    assert own - other > 1.0
