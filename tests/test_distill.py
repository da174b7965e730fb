"""Distillation from a frozen teacher: the blended loss against a hand computation, the
teacher's class order, the input checks, and a distilled run that resumes exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_training import tiny_dataset

from feraug.classifier.config import build_train_config
from feraug.classifier.distill import Teacher
from feraug.classifier.trainer import fit
from feraug.emotions import FER2013_CLASSES
from feraug.errors import ConfigError
from feraug.models.checkpoint import read_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def test_blend_is_the_softened_kl_mixed_with_the_hard_loss(ckpt: Path) -> None:
    classes = tuple(reversed(FER2013_CLASSES))  # the data may order classes differently
    teacher = Teacher(ckpt, classes, 48, 44, torch.device("cpu"), temperature=3.0, weight=0.25)
    torch.manual_seed(0)
    x, student = torch.randn(4, 1, 44, 44), torch.randn(4, 7)
    t_logits = teacher.model(x)[:, list(reversed(range(7)))]
    assert torch.allclose(teacher.logits(x), t_logits)
    p = F.softmax(t_logits / 3, 1)
    kl = (p * (p.log() - F.log_softmax(student / 3, 1))).sum(1).mean() * 9
    hard = torch.tensor(1.7)
    assert torch.allclose(teacher.blend(hard, student, x), 0.75 * hard + 0.25 * kl, atol=1e-5)


def test_a_teacher_must_take_the_students_inputs(ckpt: Path) -> None:
    with pytest.raises(ConfigError, match="cropped to 44; the student 48 cropped to 40"):
        Teacher(ckpt, FER2013_CLASSES, 48, 40, torch.device("cpu"), 2.0, 0.5)
    with pytest.raises(ConfigError, match="differ from the data's"):
        Teacher(ckpt, ("happy", "sad"), 48, 44, torch.device("cpu"), 2.0, 0.5)


def test_a_distilled_run_learns_from_its_teacher_and_resumes_exactly(tmp_path: Path) -> None:
    data = tiny_dataset()

    def cfg(name: str, **kw: object) -> object:
        return build_train_config({"data": "toy", "out": str(tmp_path / name), "epochs": 2,
                                   "batch_size": 8, "device": "cpu", **kw})

    teacher = fit(cfg("teacher", seed=5), dataset=data).best_checkpoint
    fit(cfg("plain"), dataset=data)
    fit(cfg("whole", teacher=str(teacher), distill_weight=1.0), dataset=data)
    stopped = cfg("stopped", teacher=str(teacher), distill_weight=1.0, max_steps=4,
                  checkpoint_every=2)
    fit(stopped, dataset=data)
    fit(cfg("stopped", teacher=str(teacher), distill_weight=1.0, checkpoint_every=2),
        dataset=data, resume=True)

    def weights(run: str) -> dict:
        return read_checkpoint(tmp_path / run / "last.pt")["model"]

    whole = weights("whole")
    assert any(not torch.equal(v, weights("plain")[k]) for k, v in whole.items())
    assert all(torch.equal(v, weights("stopped")[k]) for k, v in whole.items())


def test_a_missing_teacher_is_refused_before_the_run_folder_is_made(tmp_path: Path) -> None:
    cfg = build_train_config({"data": "toy", "out": str(tmp_path / "run"), "epochs": 1,
                              "device": "cpu", "teacher": str(tmp_path / "nope.pt")})
    with pytest.raises(ConfigError, match="nope.pt: teacher checkpoint not found"):
        fit(cfg, dataset=tiny_dataset())
    assert not (tmp_path / "run").exists()
