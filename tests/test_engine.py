"""The run engine's shared pieces: how a run begins in its folder, its JSON-lines log, and the
RNG states that make a resume exact (for classifier and generator runs alike)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_training import tiny_dataset

from feraug.classifier.config import build_train_config
from feraug.classifier.trainer import fit
from feraug.engine.rng import capture_rng, restore_rng
from feraug.engine.run_folder import JsonLines, RunFolder, Start
from feraug.errors import CheckpointError, ConfigError, FeraugError

pytestmark = pytest.mark.usefixtures("one_thread")


def test_restored_rng_draws_the_same_numbers_again() -> None:
    aug = torch.Generator().manual_seed(5)
    state = capture_rng(augment=aug)
    assert {"torch", "cuda", "augment"} <= state.keys()
    first = torch.rand(3), torch.rand(3, generator=aug)
    restore_rng(state, augment=aug)
    again = torch.rand(3), torch.rand(3, generator=aug)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_rng_of_older_generator_checkpoints_still_restores() -> None:
    old = {"cpu": torch.get_rng_state(), "cuda": []}  # the key generator runs stored
    first = torch.rand(3)
    restore_rng(old)
    assert torch.equal(torch.rand(3), first)
    with pytest.raises(CheckpointError, match="'augment'"):
        restore_rng(old, augment=torch.Generator())


def test_cuda_states_of_gpus_not_present_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run saved on two GPUs continues on one: only the GPU that exists gets a state (torch
    raises IndexError when handed more states than GPUs)."""
    handed: list[list[torch.Tensor]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", handed.append)
    philox = torch.zeros(16, dtype=torch.uint8)
    restore_rng({"torch": torch.get_rng_state(), "cuda": [philox, philox + 1]})
    assert len(handed) == 1 and len(handed[0]) == 1 and torch.equal(handed[0][0], philox)


def test_a_generator_state_of_another_device_type_is_reseeded_or_refused(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A CUDA generator's state (16 bytes) cannot go into a CPU generator: with ``reseed``
    the generator starts again from that seed and one line says the resume is not
    bit-exact; without, a one-line CheckpointError."""
    aug = torch.Generator().manual_seed(5)
    state = capture_rng(augment=aug)
    state["augment"] = torch.zeros(16, dtype=torch.uint8)  # what a CUDA generator stores
    with pytest.raises(CheckpointError, match="another device type") as refused:
        restore_rng(state, augment=aug)
    assert "\n" not in str(refused.value)
    restore_rng(state, reseed=42, augment=aug)
    expected = torch.rand(3, generator=torch.Generator().manual_seed(42))
    assert torch.equal(torch.rand(3, generator=aug), expected)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not bit-exact" in err[0] and "augment" in err[0]


def _folder(out: Path) -> RunFolder:
    return RunFolder(out, "train", "classifier training")


def test_a_run_begins_new_resumed_or_again_from_step_0(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    folder = _folder(out)
    assert folder.begin(False, "last.pt", ["log.jsonl"]) is Start.NEW
    folder.write_manifest({"lr": 0.1}, 0, "abc")
    (out / "log.jsonl").write_text('{"step": 1}\n')
    with pytest.raises(FeraugError, match="not empty"):
        folder.begin(False, "last.pt", ["log.jsonl"])

    seen = []
    assert folder.begin(True, "last.pt", ["log.jsonl"],
                        check=lambda m, s: seen.append((m["config"], s))) is Start.RESTART
    assert seen == [({"lr": 0.1}, Start.RESTART)]
    assert not (out / "log.jsonl").exists() and (out / "manifest.json").is_file()
    assert "starting this run again from step 0" in capsys.readouterr().err

    (out / "last.pt").write_bytes(b"")
    (out / ".last.pt.x.tmp").write_bytes(b"half")  # a killed save's leftover
    assert folder.begin(True, "last.pt", ["log.jsonl"]) is Start.RESUME
    assert not (out / ".last.pt.x.tmp").exists()

    def refuse(manifest: dict, start: Start) -> None:
        raise ConfigError("lr differ")

    with pytest.raises(ConfigError, match="lr differ"):
        folder.begin(True, "last.pt", ["log.jsonl"], check=refuse)
    assert (out / "last.pt").exists()


def test_resume_needs_a_run_of_the_same_kind(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="nothing to resume"):
        _folder(tmp_path / "none").begin(True, "last.pt", [])
    assert not (tmp_path / "none").exists()
    RunFolder(tmp_path / "gan", "feraug-gan-run", "generator training").begin(
        False, "checkpoint.pt", [])
    RunFolder(tmp_path / "gan", "feraug-gan-run", "generator training").write_manifest(
        {}, 0, None)
    with pytest.raises(CheckpointError, match="not a classifier training run"):
        _folder(tmp_path / "gan").begin(True, "last.pt", [])


def test_only_the_main_process_writes(tmp_path: Path) -> None:
    other = RunFolder(tmp_path / "run", "train", "classifier training", main=False)
    assert other.begin(False, "last.pt", []) is Start.NEW
    other.write_manifest({}, 0, None)
    assert not (tmp_path / "run").exists()


def test_log_truncates_after_a_step(tmp_path: Path) -> None:
    log = JsonLines(tmp_path / "log.jsonl")
    assert log.rows() == [] and log.last() == {}
    log.truncate_after(3)  # no log yet: nothing to do
    for step in (2, 4, 6):
        log.append({"step": step, "loss": step / 10})
    log.truncate_after(4)
    assert [r["step"] for r in log.rows()] == [2, 4]
    assert log.last() == {"step": 4, "loss": 0.4}


def test_log_drops_a_torn_last_line_and_refuses_other_damage(tmp_path: Path) -> None:
    """A kill or a full disk mid-write leaves a torn last line: reading drops it and a resume
    rewrites the log without it. A damaged line anywhere else is a one-line refusal naming
    the file and line."""
    path = tmp_path / "log.jsonl"
    log = JsonLines(path)
    for step in (2, 4):
        log.append({"step": step})
    with path.open("a") as fh:
        fh.write('{"step": 6, "lo')
    assert log.rows() == [{"step": 2}, {"step": 4}] and log.last() == {"step": 4}
    log.truncate_after(6)
    assert path.read_text() == '{"step": 2}\n{"step": 4}\n'
    with path.open("a") as fh:
        fh.write('{"step": 6, "lo\n\n')  # torn, then blank lines: still the last row
    log.keep_first(5)
    assert log.rows() == [{"step": 2}, {"step": 4}]
    path.write_text('{"step": 2}\n{"st\n{"step": 6}\n')
    for read in (log.rows, lambda: log.truncate_after(9), lambda: log.keep_first(9)):
        with pytest.raises(CheckpointError, match=r"log\.jsonl: line 2 is not JSON"):
            read()


def test_log_keeps_the_first_rows(tmp_path: Path) -> None:
    log = JsonLines(tmp_path / "log.jsonl")
    log.keep_first(1)  # no log yet: nothing to do
    assert not log.path.exists()
    for step in (3, 6, 6):
        log.append({"step": step})
    log.keep_first(2)
    assert log.rows() == [{"step": 3}, {"step": 6}]


def test_generator_restart_from_step_0_drops_the_old_tensorboard_events(
        tmp_path: Path) -> None:
    """A run with no checkpoint yet starts again from step 0: its TensorBoard events go with
    its log, or the view would show every step twice."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from test_gan import tiny_faces, tiny_model

    from feraug.engine.generator_loop import train_generator

    def run(resume: bool) -> None:
        train_generator(tiny_model("fastgan", steps=2), tiny_faces(), tmp_path / "run",
                        device="cpu", sample_every=0, checkpoint_every=0, log_every=1,
                        resume=resume, progress=False, tensorboard=True)

    run(resume=False)
    (tmp_path / "run" / "checkpoint.pt").unlink()  # killed during its first save
    run(resume=True)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    assert [e.step for e in events.Scalars("gan/d")] == [1, 2]


def test_classifier_resume_logs_every_epoch_once(tmp_path: Path) -> None:
    """A run killed after writing an epoch's metrics row but before that epoch's last.pt
    redoes the epoch on --resume; its metrics.jsonl then holds each epoch once, as an
    unbroken run's does."""
    data = tiny_dataset()

    def cfg(name: str, max_steps: int | None = None) -> object:
        return build_train_config({"data": "toy", "out": str(tmp_path / name), "epochs": 2,
                                   "max_steps": max_steps, "batch_size": 8, "device": "cpu"})

    fit(cfg("whole"), dataset=data)  # 24 training faces: 3 steps an epoch
    killed = tmp_path / "killed"
    fit(cfg("killed", max_steps=3), dataset=data)
    epoch_one = (killed / "last.pt").read_bytes()
    fit(cfg("killed"), dataset=data, resume=True)
    (killed / "last.pt").write_bytes(epoch_one)  # epoch 2 logged, its checkpoint never saved
    fit(cfg("killed"), dataset=data, resume=True)
    rows = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    whole = [json.loads(x) for x in (tmp_path / "whole" / "metrics.jsonl").read_text()
             .splitlines()]
    assert [(r["epoch"], r["step"]) for r in rows] == [(1, 3), (2, 6)]
    assert rows == whole
