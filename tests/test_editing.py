"""Levers of the editing translators: the guide's loss (plain, cut once the guide is
confident, an ensemble's), feature matching in the guide's features, and the residual and
warp edits that change a face's own pixels."""

from __future__ import annotations

import json
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


def test_warp_edits_move_the_faces_own_pixels() -> None:
    """edit: warp starts at the identity, and a displacement of one pixel moves every pixel by
    exactly one column (bilinear resampling at pixel centres), so the face keeps its texture."""
    from feraug.gan.editnets import MAX_FLOW, MaskUNet

    torch.manual_seed(0)
    net = MaskUNet(ngf=4, n_blocks=1, num_classes=2, edit="warp")
    x = torch.rand(2, 1, 48, 48) * 1.6 - 0.8
    labels = torch.tensor([0, 1])
    torch.nn.init.constant_(net.mask.bias, -30.0)  # no residual change: the warp alone
    torch.nn.init.zeros_(net.flow.weight)
    assert torch.allclose(net(x, labels)[0], x, atol=1e-5)
    one_pixel = math.atanh((2 / 48) / MAX_FLOW)
    with torch.no_grad():  # emotion 1's head moves sampling one pixel right; emotion 0 stays
        net.flow.bias.copy_(torch.tensor([0.0, 0.0, one_pixel, 0.0]))
    edited = net(x, labels)[0]
    assert torch.allclose(edited[0], x[0], atol=1e-5)
    assert torch.allclose(edited[1, :, :, :-1], x[1, :, :, 1:], atol=1e-4)


def test_a_local_warp_moves_pixels_only_where_the_mask_is_on() -> None:
    """edit: local_warp: with the mask off the face comes back exactly, however far the field
    moves; with the mask on in the left half only that half moves, the right half keeps its
    exact pixels (edit: warp would resample them all)."""
    from feraug.gan.editnets import MAX_FLOW, MaskUNet

    torch.manual_seed(0)
    x = torch.rand(1, 1, 48, 48) * 1.6 - 0.8
    label = torch.tensor([0])
    one_pixel = math.atanh((2 / 48) / MAX_FLOW)
    net = MaskUNet(ngf=4, n_blocks=1, num_classes=1, edit="local_warp")
    with torch.no_grad():
        net.flow.weight.zero_()
        net.flow.bias.copy_(torch.tensor([one_pixel, 0.0]))
        net.colour.weight.zero_()
        net.colour.bias.zero_()  # no intensity change: the warp alone
        net.mask.weight.zero_()
        net.mask.bias.fill_(-30.0)
        assert torch.equal(net(x, label)[0], x)
        half = torch.zeros(1, 1, 48, 48)
        half[..., :24] = 60.0
        net.mask = _ConstantMap(half - 30.0)
        edited = net(x, label)[0]
    assert torch.allclose(edited[..., :23], x[..., 1:24], atol=1e-4)  # moved one column
    assert torch.equal(edited[..., 24:], x[..., 24:])  # untouched, exactly


class _ConstantMap(torch.nn.Module):
    """Stands in for a head: returns the same logit map whatever it is given."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(h.shape[0], -1, -1, -1)


def test_a_resumed_generator_refuses_a_changed_guide_file(ckpt: Path, tmp_path: Path) -> None:
    """The guide's hash is recorded at the start; resuming with another file at the same
    path would mix two guides in one generator, so it is refused in one line."""
    import shutil

    from test_gan import tiny_faces, tiny_model

    from feraug.engine.generator_loop import train_generator
    from feraug.errors import ConfigError
    from feraug.models.checkpoint import read_checkpoint, save_checkpoint

    guide = tmp_path / "guide.pt"
    shutil.copy(ckpt, guide)
    first = tiny_model("stargan", steps=2, guide=str(guide))
    train_generator(first, tiny_faces(), tmp_path / "run", device="cpu", progress=False)
    state = read_checkpoint(guide)
    state["step"] = 1  # the same classifier file, changed
    save_checkpoint(guide, state)
    again = tiny_model("stargan", steps=4, guide=str(guide))
    with pytest.raises(ConfigError, match="another guide file"):
        train_generator(again, tiny_faces(), tmp_path / "run", device="cpu", resume=True,
                        progress=False)


def test_an_ensemble_guide_is_the_mean_of_its_members(ckpt: Path, tmp_path: Path) -> None:
    """Every member sees the same views; the ensemble's loss is the mean of the members'
    losses, so the same random draws give mean(loss a, loss b)."""
    from test_gan import tiny_model

    from feraug.models.checkpoint import read_checkpoint, save_checkpoint

    other = tmp_path / "other.pt"
    state = read_checkpoint(ckpt)
    state["model"] = {k: v.flip(0) if v.ndim else v for k, v in state["model"].items()}
    save_checkpoint(other, state)
    x, labels = faces()[:3], torch.tensor([0, 1, 2])

    def loss(guide: object) -> float:
        model = tiny_model("stargan", guide=guide, guide_confidence=0.5)
        torch.manual_seed(0)
        return float(model.guide_loss(x, labels))

    a, b, both = loss(str(ckpt)), loss(str(other)), loss([str(ckpt), str(other)])
    assert a != b
    assert both == pytest.approx((a + b) / 2, rel=1e-5)


def test_max_shift_bounds_the_residual_edit() -> None:
    """With max_shift 0.5 no pixel moves by more than 0.5, however hard the heads push; the
    default 2 can paint a mid-grey pixel black."""
    from feraug.gan.editnets import MaskUNet

    x = torch.zeros(2, 1, 48, 48)
    labels = torch.tensor([0, 1])
    for shift in (0.5, 2.0):
        torch.manual_seed(0)
        net = MaskUNet(ngf=4, n_blocks=1, num_classes=2, edit="residual", max_shift=shift)
        torch.nn.init.constant_(net.mask.bias, 30.0)   # mask fully on
        torch.nn.init.constant_(net.colour.bias, -30.0)  # change fully towards black
        with torch.no_grad():
            edited = net(x, labels)[0]
        assert float((edited - x).abs().max()) == pytest.approx(min(shift, 1.0), abs=1e-4)


def test_residual_blur_smooths_the_change_and_keeps_its_sum() -> None:
    """With residual_blur the same heads give a change of the same total amount (the kernel is
    normalised) but far less pixel-to-pixel texture; the option needs a residual edit."""
    from test_gan import CLASSES

    from feraug.errors import ConfigError
    from feraug.gan import build_generator
    from feraug.gan.editnets import MaskUNet

    x = torch.rand(1, 1, 48, 48, generator=torch.Generator().manual_seed(0)) * 0.5 - 0.25
    label = torch.tensor([0])
    change = {}
    for sigma in (0.0, 1.0):
        torch.manual_seed(0)
        net = MaskUNet(ngf=4, n_blocks=1, num_classes=1, edit="residual", max_shift=0.5,
                       residual_blur=sigma)
        torch.nn.init.constant_(net.mask.bias, 30.0)  # mask fully on: the colour head decides
        with torch.no_grad():
            change[sigma] = net(x, label)[0] - x
    sharp, smooth = change[0.0], change[1.0]
    assert not torch.equal(sharp, smooth)
    assert float(smooth[..., 8:-8, 8:-8].mean()) == pytest.approx(
        float(sharp[..., 8:-8, 8:-8].mean()), abs=0.02)

    def texture(t: torch.Tensor) -> float:
        return float((t[..., :, 1:] - t[..., :, :-1]).abs().mean())

    assert texture(smooth) < 0.5 * texture(sharp)
    star = build_generator("stargan", {"ngf": 4, "n_blocks": 1, "ndf": 4, "edit": "warp",
                                       "residual_blur": 1.0}, CLASSES, 48)
    assert star.nets["g"].blur_kernel is not None
    assert "blur_kernel" not in star.nets["g"].state_dict()  # old checkpoints load unchanged
    with pytest.raises(ConfigError, match="residual_blur"):
        build_generator("stargan", {"edit": "replace", "residual_blur": 1.0}, CLASSES, 48)


def test_max_shift_reaches_the_editors_and_needs_a_residual_edit() -> None:
    from test_gan import CLASSES

    from feraug.errors import ConfigError
    from feraug.gan import build_generator

    star = build_generator("stargan", {"ngf": 4, "n_blocks": 1, "ndf": 4, "edit": "warp",
                                       "max_shift": 0.5}, CLASSES, 48)
    assert star.nets["g"].max_shift == 0.5
    cyc = build_generator("cyclegan", {"ngf": 4, "n_blocks": 1, "ndf": 4, "edit": "residual",
                                       "max_shift": 0.25, "target": "disgust"}, CLASSES, 48)
    assert cyc.nets["g_ab"].max_shift == cyc.nets["g_ba"].max_shift == 0.25
    with pytest.raises(ConfigError, match="max_shift"):
        build_generator("stargan", {"edit": "replace", "max_shift": 0.5}, CLASSES, 48)


def test_a_resumed_ensemble_names_the_member_that_changed(ckpt: Path, tmp_path: Path) -> None:
    import shutil

    from test_gan import tiny_faces, tiny_model

    from feraug.engine.generator_loop import train_generator
    from feraug.errors import ConfigError
    from feraug.models.checkpoint import read_checkpoint, save_checkpoint

    first, second = tmp_path / "first.pt", tmp_path / "second.pt"
    shutil.copy(ckpt, first)
    state = read_checkpoint(ckpt)
    state["step"] = 7
    save_checkpoint(second, state)
    members = [str(first), str(second)]
    model = tiny_model("stargan", steps=2, guide=members)
    train_generator(model, tiny_faces(), tmp_path / "run", device="cpu", progress=False)
    state["step"] = 8  # the second member's file changes
    save_checkpoint(second, state)
    again = tiny_model("stargan", steps=4, guide=members)
    with pytest.raises(ConfigError, match=r"second\.pt: this generator was trained with another"):
        train_generator(again, tiny_faces(), tmp_path / "run", device="cpu", resume=True,
                        progress=False)


def test_linear_mmd2_matches_a_hand_computation_and_is_unbiased() -> None:
    """The pairwise form by hand; over many draws from one distribution it averages ~0,
    where the plain squared distance of the means stays positive (its noise term)."""
    from feraug.gan.guide import linear_mmd2

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(3, 5, generator=g), torch.randn(4, 5, generator=g) + 0.5
    kxx = sum(float(x[i] @ x[j]) for i in range(3) for j in range(3) if i != j) / 6
    kyy = sum(float(y[a] @ y[b]) for a in range(4) for b in range(4) if a != b) / 12
    kxy = sum(float(x[i] @ y[a]) for i in range(3) for a in range(4)) / 12
    assert float(linear_mmd2(x, y)) == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-5)
    same = [(torch.randn(2, 8, generator=g), torch.randn(2, 8, generator=g))
            for _ in range(2000)]
    unbiased = sum(float(linear_mmd2(a, b)) for a, b in same) / len(same)
    plain = sum(float((a.mean(0) - b.mean(0)).square().sum()) for a, b in same) / len(same)
    assert abs(unbiased) < 0.4 and plain == pytest.approx(8.0, rel=0.1)  # 8 x (1/2 + 1/2)


def test_feature_matching_compares_each_emotion_with_its_own_real_faces(ckpt: Path,
                                                                       tmp_path: Path) -> None:
    """Made faces that are the real faces of their emotion cost ~nothing (unbiased: up to
    noise), the same faces under swapped labels cost more; emotions with fewer than two made
    or real faces are left out; stargan needs a guide for it, logs it and resumes exactly."""
    from test_gan import check_resume_is_exact, tiny_model

    from feraug.errors import ConfigError

    model = tiny_model("stargan", guide=str(ckpt))
    g = torch.Generator().manual_seed(0)
    real = torch.cat([torch.rand(4, 1, 48, 48, generator=g) * 0.3 - 0.9,
                      torch.rand(4, 1, 48, 48, generator=g) * 0.3 + 0.6])
    labels = torch.tensor([0] * 4 + [1] * 4)
    matched = model.feature_match_loss(real, labels, real, labels, 1.0)
    swapped = model.feature_match_loss(real, 1 - labels, real, labels, 1.0)
    assert float(swapped) > 10 * abs(float(matched))
    lonely = torch.tensor([0, 1, 2, 2, 2, 2, 2, 2])  # one face each of 0 and 1; no real 2
    assert float(model.feature_match_loss(real, lonely, real, labels, 1.0)) == 0.0
    assert float(model.feature_match_loss(real, 1 - labels, real, labels, 0.0)) == 0.0
    with pytest.raises(ConfigError, match="needs a guide"):
        tiny_model("stargan", lambda_feature_match=1.0)
    check_resume_is_exact("stargan", {"guide": str(ckpt), "lambda_feature_match": 1.0},
                          tmp_path)
    logged = [json.loads(x) for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert all("feature_match" in row for row in logged)


def test_residual_edits_shift_the_faces_own_pixels() -> None:
    """edit: residual keeps the source's texture: where the mask is full, the output is the
    face plus a change, not a flat colour; an untrained editor starts near the identity."""
    from test_gan import SIZE, tiny_model

    from feraug.gan.editnets import MaskUNet

    torch.manual_seed(0)
    net = MaskUNet(ngf=4, n_blocks=1, edit="residual")
    x = torch.rand(2, 1, SIZE, SIZE) * 1.6 - 0.8
    edited, mask = net(x)
    assert (edited - x).abs().mean() < 0.1
    torch.nn.init.constant_(net.mask.bias, 10.0)  # mask ~1 everywhere
    torch.nn.init.zeros_(net.colour.weight)
    torch.nn.init.constant_(net.colour.bias, 0.1)  # the same small change everywhere
    edited, _ = net(x)
    assert torch.allclose(edited, (x + 2 * torch.tanh(torch.tensor(0.1))).clamp(-1, 1),
                          atol=1e-4)
    model = tiny_model("stargan", edit="residual")
    assert model.nets["g"].edit == "residual"


def test_reference_matching_is_the_cosine_distance_to_the_face_whose_code_was_used(
        ckpt: Path, tmp_path: Path) -> None:
    """0 for an edit identical to its reference, larger for another face; refused without
    reference codes or a guide; trained runs log it and resume exactly."""
    from test_gan import check_resume_is_exact, tiny_model

    from feraug.errors import ConfigError

    model = tiny_model("stargan", guide=str(ckpt))
    g = torch.Generator().manual_seed(0)
    dark = torch.rand(4, 1, 48, 48, generator=g) * 0.3 - 0.9
    light = torch.rand(4, 1, 48, 48, generator=g) * 0.3 + 0.6
    assert abs(float(model.reference_match_loss(dark, dark, 1.0))) < 1e-5
    assert float(model.reference_match_loss(dark, light, 1.0)) > 1e-3
    assert float(model.reference_match_loss(dark, light, 0.0)) == 0.0
    for extra in ({"guide": str(ckpt)}, {"style_dim": 4, "lambda_sty": 1.0}):
        with pytest.raises(ConfigError, match="lambda_reference_match"):
            tiny_model("stargan", **extra, lambda_reference_match=1.0)
    check_resume_is_exact("stargan", {"guide": str(ckpt), "style_dim": 4, "lambda_sty": 1.0,
                                      "style_reference": True, "lambda_reference_match": 1.0},
                          tmp_path)
    logged = [json.loads(x) for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert all("reference_match" in row for row in logged)
