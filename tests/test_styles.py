"""StarGAN with a style code: one face, several versions of an emotion (StarGAN v2's style
input with the diversity-sensitive loss of Mao et al. 2019)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_gan import check_resume_is_exact, emotion_of, sources, tiny_faces, tiny_model

from feraug.errors import ConfigError
from feraug.gan.base import to_float
from feraug.gan.stargan import same_label_pick

pytestmark = pytest.mark.usefixtures("one_thread")


def test_an_untrained_style_changes_nothing_and_lambda_ds_needs_a_style() -> None:
    """The style layers start at zero: until trained, every code gives the edit of the zero
    code."""
    torch.manual_seed(0)
    styled = tiny_model("stargan", style_dim=4)
    x = to_float(sources())
    labels = torch.zeros(len(x), dtype=torch.long)
    with torch.no_grad():
        a = styled.nets["g"](x, labels, torch.randn(len(x), 4))[0]
        b = styled.nets["g"](x, labels)[0]
    assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="style_dim"):
        tiny_model("stargan", lambda_ds=1.0)


def test_the_diversity_loss_makes_codes_matter_and_seeds_repeat(tmp_path: Path) -> None:
    """After a few steps with lambda_ds, two seeds translate the same sources differently,
    and one seed gives the same faces twice; training logs the diversity and resumes exactly."""
    extra = {"style_dim": 4, "lambda_ds": 1.0, "lr": 2e-3}
    check_resume_is_exact("stargan", extra, tmp_path)
    logged = [json.loads(x) for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert all("diversity" in row for row in logged)

    def spread(lambda_ds: float) -> tuple[float, bool]:
        """Mean grey-level difference between two seeds' faces, and whether a seed repeats."""
        torch.manual_seed(0)
        model = tiny_model("stargan", **{**extra, "lambda_ds": lambda_ds})
        data = tiny_faces()
        real, labels = to_float(data.images[:6]), data.labels[:6]
        for _ in range(6):
            model.train_step(real, labels)
        emotion = emotion_of(model)
        one = model.sample(emotion, 5, seed=1, sources=sources())
        again = model.sample(emotion, 5, seed=1, sources=sources())
        other = model.sample(emotion, 5, seed=2, sources=sources())
        return float((one.float() - other.float()).abs().mean()), torch.equal(one, again)

    pushed, repeats = spread(10.0)
    idle, _ = spread(0.0)
    assert repeats and pushed > 1.5 * idle  # 0.049 vs 0.027 grey levels when written


def test_the_style_encoder_trains_with_the_generator_and_resumes_exactly(
        tmp_path: Path) -> None:
    """With lambda_sty a style encoder reads codes back from edits: it is trained by the
    generator's optimiser, logged, saved and resumed like the other networks."""
    with pytest.raises(ConfigError, match="style_dim"):
        tiny_model("stargan", lambda_sty=1.0)
    extra = {"style_dim": 4, "lambda_sty": 1.0, "lr": 2e-3}
    check_resume_is_exact("stargan", extra, tmp_path)
    logged = [json.loads(x) for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert all("style_rec" in row for row in logged)

    torch.manual_seed(0)
    model = tiny_model("stargan", **extra)
    before = {k: v.clone() for k, v in model.nets["e"].state_dict().items()}
    data = tiny_faces()
    model.train_step(to_float(data.images[:6]), data.labels[:6])
    after = model.nets["e"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_reference_styles_come_from_real_faces_of_the_target_emotion(tmp_path: Path) -> None:
    """With style_reference, the first half of the edits take the style encoder's code of a
    real face in the batch showing the edit's target emotion (StarGAN v2's reference path),
    the rest keep their random codes; training resumes exactly."""
    with pytest.raises(ConfigError, match="lambda_sty"):
        tiny_model("stargan", style_dim=4, style_reference=True)
    extra = {"style_dim": 4, "lambda_sty": 1.0, "style_reference": True, "lr": 2e-3}
    check_resume_is_exact("stargan", extra, tmp_path)

    torch.manual_seed(0)
    model = tiny_model("stargan", **extra)
    data = tiny_faces()
    real, labels = to_float(data.images[:8]), data.labels[:8]
    target = labels.roll(1)
    random_codes = torch.randn(8, 4)
    with torch.no_grad():
        styles, (edited, refs) = model._reference_styles(real, labels, target, random_codes,
                                                         same_label_pick(labels, target))
        # every_code[i, j]: face j's code for the emotion target[i]
        every_code = torch.stack([model.nets["e"](real, t.expand(8)) for t in target])
    for i in range(4):  # a code of one of the faces showing target[i]
        showing = (labels == target[i]).nonzero().flatten()
        assert any(torch.allclose(styles[i], every_code[i, j]) for j in showing)
    assert torch.equal(styles[4:], random_codes[4:])
    assert torch.equal(labels[refs], target[edited]) and edited.tolist() == list(range(4))


def test_style_init_makes_codes_matter_before_training() -> None:
    """With style_init the style layers start random: two codes give two edits at step 0."""
    torch.manual_seed(0)
    model = tiny_model("stargan", style_dim=4, style_init=0.5)
    x = to_float(sources())
    labels = torch.zeros(len(x), dtype=torch.long)
    with torch.no_grad():
        a = model.nets["g"](x, labels, torch.randn(len(x), 4))[0]
        b = model.nets["g"](x, labels, torch.randn(len(x), 4))[0]
    assert (a - b).abs().mean() > 1e-4
