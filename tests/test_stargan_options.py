"""StarGAN's training options: the identity loss, the weight average (EMA), a conditional
discriminator and the discriminator's own learning rate."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def test_the_identity_loss_teaches_stargan_to_leave_a_face_alone(tmp_path: Path) -> None:
    """Translating a face into its own emotion should return it. Both runs start from a
    translator that changes every face a lot (mask mostly on); with lambda_identity the
    trained one changes such faces far less than the same run without it (the reconstruction
    term alone, kept weak here, also pulls towards the identity, only more slowly)."""
    from test_gan import tiny_faces, tiny_model

    from feraug.engine.generator_loop import train_generator
    from feraug.gan.base import to_float

    data = tiny_faces()
    train = data.subset("train")
    x, labels = to_float(train.images), train.labels
    change = {}
    for weight in (0.0, 10.0):
        model = tiny_model("stargan", steps=20, lr=0.005, edit="residual", lambda_rec=1.0,
                           lambda_mask=0.0, lambda_tv=0.0, lambda_identity=weight)
        torch.nn.init.constant_(model.nets["g"].mask.bias, 1.0)
        train_generator(model, data, tmp_path / f"run{weight}", device="cpu", progress=False,
                        log_every=0)
        with torch.no_grad():
            change[weight] = float((model.nets["g"](x, labels)[0] - x).abs().mean())
    assert change[10.0] < 0.5 * change[0.0]


def test_stargan_ema_averages_the_generator_and_translates(tmp_path: Path) -> None:
    """With ema_kimg, a frozen average of the generator translates: a half-life of a million
    images leaves it where it started after two steps while the generator moves; a half-life
    near zero makes it a copy. The average has no optimiser and goes into the checkpoint."""
    from test_gan import tiny_faces, tiny_model

    from feraug.engine.generator_loop import train_generator
    from feraug.gan.base import to_float

    data = tiny_faces()
    x = to_float(data.subset("train").images[:4])
    slow = tiny_model("stargan", steps=2, ema_kimg=1000.0, ema_rampup=0.0)
    start = {k: v.clone() for k, v in slow.nets["g_ema"].state_dict().items()}
    assert set(slow.optims) == {"g", "d"}
    train_generator(slow, data, tmp_path / "slow", device="cpu", progress=False, log_every=0)
    g, ema = slow.nets["g"].state_dict(), slow.nets["g_ema"].state_dict()
    assert any(not torch.allclose(g[k], start[k]) for k in start)
    assert all(torch.allclose(ema[k], start[k], atol=1e-4) for k in start)
    with torch.no_grad():
        label = torch.full((4,), 1, dtype=torch.long)
        by_average = slow.nets["g_ema"](x, label)[0]
        by_trained = slow.nets["g"](x, label)[0]
    assert torch.allclose(slow.translate(x, 1), by_average)
    assert not torch.allclose(by_average, by_trained)
    assert "g_ema" in torch.load(tmp_path / "slow" / "checkpoint.pt",
                                 weights_only=True)["model"]["nets"]

    fast = tiny_model("stargan", steps=2, ema_kimg=1e-9, ema_rampup=0.0)
    train_generator(fast, data, tmp_path / "fast", device="cpu", progress=False, log_every=0)
    g, ema = fast.nets["g"].state_dict(), fast.nets["g_ema"].state_dict()
    assert all(torch.equal(g[k], ema[k]) for k in g)


def test_stargan_with_a_conditional_discriminator_trains_and_resumes_its_shape(
        tmp_path: Path) -> None:
    from test_gan import tiny_faces, tiny_model

    from feraug.engine.generator_loop import train_generator

    model = tiny_model("stargan", steps=2, conditional_d=True)
    k = len(model.classes)
    assert model.nets["d"].patch.out_channels == k
    train_generator(model, tiny_faces(), tmp_path / "run", device="cpu", progress=False,
                    log_every=0)
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["model"]["nets"]
    assert saved["d"]["patch.weight_orig"].shape[0] == k
    assert tiny_model("stargan", steps=2).nets["d"].patch.out_channels == 1


def test_stargan_gives_its_discriminator_its_own_learning_rate() -> None:
    from test_gan import tiny_model

    model = tiny_model("stargan", steps=2, lr=1e-4, d_lr_mult=4.0)
    assert model.optims["g"].param_groups[0]["lr"] == pytest.approx(1e-4)
    assert model.optims["d"].param_groups[0]["lr"] == pytest.approx(4e-4)
    assert tiny_model("stargan", steps=2, lr=1e-4).optims["d"].param_groups[0]["lr"] \
        == pytest.approx(1e-4)
