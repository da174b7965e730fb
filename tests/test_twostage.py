"""twostage with fastgan's networks as its identity stage: settings read as fastgan's,
trains, resumes exactly and reloads to the same faces."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_gan import TINY, check_resume_is_exact, tiny_model

from feraug.errors import ConfigError
from feraug.gan import load_generator

FASTGAN_IDENTITY = {k: v for k, v in TINY["fastgan"].items() if k != "batch_size"}

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_fastgan_identity_stage_trains_resumes_and_reloads(tmp_path: Path) -> None:
    model = check_resume_is_exact("twostage", {"identity_model": "fastgan",
                                               "identity": FASTGAN_IDENTITY}, tmp_path)
    assert type(model.identity).__name__ == "FastGan"
    assert model.config.identity.lambda_ms == 1.0  # fastgan's own default, not cgan's fields
    reloaded = load_generator(tmp_path / "b" / "checkpoint.pt")
    assert type(reloaded.identity).__name__ == "FastGan"
    assert torch.equal(reloaded.sample("happy", 3, 0), model.sample("happy", 3, 0))


def test_identity_settings_must_belong_to_the_identity_model() -> None:
    with pytest.raises(ConfigError, match="lambda_ms"):
        tiny_model("twostage", identity={**TINY["cgan"], "lambda_ms": 1.0})
