"""StarGAN's paste edit: regions of real faces of the target emotion, kept in a reference bank
inside the generator, replace the source where the mask is on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from feraug.errors import ConfigError
from feraug.gan.editnets import MaskUNet, match_intensity
from feraug.gan.references import ReferenceBank


def test_match_intensity_gives_the_reference_the_faces_mean_and_contrast() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 8, 8, generator=g) * 0.4 - 0.5
    ref = torch.rand(3, 1, 8, 8, generator=g) * 1.6 - 0.8
    out = match_intensity(ref, x)
    assert torch.allclose(out.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-4)
    assert torch.allclose(out.std((1, 2, 3)), x.std((1, 2, 3)), atol=1e-2)
    # the same pattern, only rescaled: correlation with the reference is 1
    a, b = out.flatten(1), ref.flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    assert torch.allclose((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)), torch.ones(3),
                          atol=1e-4)


def test_the_paste_edit_takes_the_references_pixels_where_the_mask_is_on() -> None:
    """Mask fully on, no displacement and no colour change: the output is the reference,
    matched in intensity to the source. Mask off: the source. A reference is required."""
    torch.manual_seed(0)
    net = MaskUNet(ngf=4, n_blocks=1, num_classes=2, edit="paste", max_shift=0.5)
    for layer in (net.flow, net.colour):
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    x, ref = torch.rand(2, 1, 48, 48) - 0.5, torch.rand(2, 1, 48, 48) * 2 - 1
    labels = torch.tensor([0, 1])
    torch.nn.init.zeros_(net.mask.weight)
    torch.nn.init.constant_(net.mask.bias, 30.0)
    with torch.no_grad():
        out, mask = net(x, labels, reference=ref)
    assert mask.min() > 0.999
    assert torch.allclose(out, match_intensity(ref, x), atol=1e-3)
    torch.nn.init.constant_(net.mask.bias, -30.0)
    with torch.no_grad():
        assert torch.allclose(net(x, labels, reference=ref)[0], x, atol=1e-5)
    with pytest.raises(ValueError, match="reference"):
        net(x, labels)
    with pytest.raises(ValueError, match="reference"):
        MaskUNet(ngf=4, n_blocks=1, num_classes=2, edit="warp")(x, labels, reference=ref)


def test_the_reference_bank_keeps_the_last_faces_of_each_class_and_draws_by_seed() -> None:
    bank = ReferenceBank(num_classes=3, size=2, image_size=8)
    faces = torch.stack([torch.full((1, 8, 8), v) for v in (-1.0, 0.0, 1.0, 0.5)])
    bank.add(faces, torch.tensor([0, 0, 0, 2]))
    assert bank.seen.tolist() == [3, 0, 1]
    # class 0's ring of two: the third face (1.0 -> 255) replaced the first (-1.0 -> 0)
    assert sorted(bank.faces[0, :, 0, 0, 0].tolist()) == [128, 255]
    assert bank.faces[2, 0, 0, 0, 0] == 191
    one, again = bank.draw(0, 50, seed=3), bank.draw(0, 50, seed=3)
    assert torch.equal(one, again)
    drawn = one[:, 0, 0, 0].add(1).mul(127.5).round()
    assert set(drawn.tolist()) == {128.0, 255.0}  # both kept faces, and only those
    assert not torch.equal(one, bank.draw(0, 50, seed=4))
    with pytest.raises(ConfigError, match="no real face"):
        bank.draw(1, 4, seed=0)


def test_a_pasting_stargan_trains_keeps_references_and_samples_reproducibly(
        tmp_path: Path) -> None:
    from test_gan import sources, tiny_faces, tiny_model

    from feraug.engine.generator_loop import train_generator
    from feraug.gan.base import load_generator
    from feraug.synth.build import build_synthetic_set
    from feraug.synth.plan import make_plan

    model = tiny_model("stargan", steps=3, edit="paste", max_shift=0.5, reference_bank=6,
                       batch_size=6, flip=False)
    data = tiny_faces()
    train_generator(model, data, tmp_path / "run", device="cpu", progress=False, log_every=0)
    bank = model.nets["bank"]
    assert bank.seen.tolist() == [6, 6, 6]  # three steps of two faces of each emotion
    kept = {bytes(face.numpy()) for face in bank.faces[bank.seen > 0].flatten(0, 1)
            if face.any()}
    train = {bytes(face.numpy()) for face in data.subset("train").images}
    assert kept and kept <= train  # training faces only
    a = model.sample("happy", 6, seed=1, sources=sources())
    assert torch.equal(a, model.sample("happy", 6, seed=1, sources=sources()))
    assert not torch.equal(a, model.sample("happy", 6, seed=2, sources=sources()))
    reloaded = load_generator(tmp_path / "run" / "checkpoint.pt")
    assert torch.equal(a, reloaded.sample("happy", 6, seed=1, sources=sources()))
    # synth needs nothing more: the references come from the generator itself
    plan = make_plan(emotions=["disgust"], mode="multiply", k=1.0, delta=0, min_change=0)
    made = build_synthetic_set(reloaded, data, plan, tmp_path / "synth")
    assert made["counts"]["disgust"]["kept"] > 0


def test_paste_needs_one_face_of_every_emotion_per_batch_and_a_stargan() -> None:
    from test_gan import tiny_model

    with pytest.raises(ConfigError, match="balanced"):
        tiny_model("stargan", edit="paste", batch_size=5)
    with pytest.raises(ConfigError, match="balanced"):
        tiny_model("stargan", edit="paste", batch_size=6, balanced=False)
    with pytest.raises(ConfigError, match="reference_bank"):
        tiny_model("stargan", edit="paste", batch_size=6, reference_bank=4)
    with pytest.raises(ConfigError, match="only stargan"):
        tiny_model("cyclegan", edit="paste")
    model = tiny_model("stargan", edit="paste", batch_size=6)
    with pytest.raises(ConfigError, match="too few: happy"):
        model.streams(torch.tensor([0, 0, 1, 2, 2]))


def test_the_way_back_pastes_from_another_face_of_the_source_emotion() -> None:
    """Pasting from the source itself would let the reconstruction copy it back whatever the
    edit did; the way back's reference is another face of the same emotion."""
    from feraug.gan.stargan import same_label_pick

    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 1, 1, 2, 2] * 5)
    for _ in range(20):
        pick = same_label_pick(labels, labels, other_than_self=True)
        assert torch.equal(labels[pick], labels)
        assert not bool((pick == torch.arange(len(labels))).any())
    chosen = same_label_pick(labels, labels)
    assert torch.equal(labels[chosen], labels)
