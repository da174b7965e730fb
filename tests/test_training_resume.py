"""Classifier ``--resume`` after the ways a run really stops: killed between a save and the
log row of the same step, a torn log line, a restart from step 0, another device type, and
checkpoints of another process count or of the single-process layout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from test_training import tiny_dataset

import feraug.classifier.trainer as trainer
from feraug.classifier.config import build_train_config
from feraug.classifier.trainer import fit
from feraug.errors import CheckpointError
from feraug.models.checkpoint import read_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(tmp_path: Path, name: str, **kw: object) -> object:
    """Two epochs of 3 steps each (24 training faces, batches of 8) on the CPU."""
    return build_train_config({"data": "toy", "out": str(tmp_path / name), "epochs": 2,
                               "batch_size": 8, "device": "cpu", **kw})


def _rows(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = read_checkpoint(a)["model"], read_checkpoint(b)["model"]
    return all(torch.equal(v, wb[k]) for k, v in wa.items())


def _edit_rng(last: Path, edit: object) -> None:
    """Rewrite the RNG entry of ``last`` as ``edit(stored entry)`` returns it."""
    ckpt = read_checkpoint(last)
    ckpt["rng"] = edit(ckpt["rng"])
    save_checkpoint(last, ckpt)


def test_killed_after_the_row_of_a_step_already_saved_logs_that_row_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``checkpoint_every`` dividing an epoch's last step, last.pt is saved at that step
    before the epoch's row (same step) is logged; a kill between that row and the epoch-end
    save leaves the row in the log, and the resumed run must not write it a second time."""
    data = tiny_dataset()
    fit(_cfg(tmp_path, "whole", checkpoint_every=3), dataset=data)

    class KilledAfterEpochTwosRow(trainer.Board):
        def scalars(self, values: dict[str, float], step: int, prefix: str = "") -> None:
            if step == 6:  # the row is in metrics.jsonl; the epoch-end last.pt is not saved
                raise KeyboardInterrupt
            super().scalars(values, step, prefix=prefix)

    killed = tmp_path / "killed"
    monkeypatch.setattr(trainer, "Board", KilledAfterEpochTwosRow)
    with pytest.raises(KeyboardInterrupt):
        fit(_cfg(tmp_path, "killed", checkpoint_every=3), dataset=data)
    monkeypatch.undo()
    assert read_checkpoint(killed / "last.pt")["run_state"]["step"] == 6
    assert [(r["epoch"], r["step"]) for r in _rows(killed)] == [(1, 3), (2, 6)]
    fit(_cfg(tmp_path, "killed", checkpoint_every=3), dataset=data, resume=True)
    assert [(r["epoch"], r["step"]) for r in _rows(killed)] == [(1, 3), (2, 6)]
    assert _same_weights(tmp_path / "whole" / "last.pt", killed / "last.pt")


def test_a_torn_last_metrics_line_does_not_stop_a_resume(tmp_path: Path) -> None:
    data = tiny_dataset()
    fit(_cfg(tmp_path, "whole"), dataset=data)
    torn = tmp_path / "torn"
    fit(_cfg(tmp_path, "torn", max_steps=3), dataset=data)
    with (torn / "metrics.jsonl").open("a") as fh:
        fh.write('{"epoch": 2, "step": 6, "train_lo')  # killed mid-write
    fit(_cfg(tmp_path, "torn"), dataset=data, resume=True)
    assert _rows(torn) == _rows(tmp_path / "whole")


def test_classifier_restart_from_step_0_drops_the_old_tensorboard_events(
        tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = tiny_dataset()
    run = tmp_path / "run"
    fit(_cfg(tmp_path, "run", epochs=1, tensorboard=True), dataset=data)
    (run / "last.pt").unlink()  # killed during its first save
    fit(_cfg(tmp_path, "run", epochs=1, tensorboard=True), dataset=data, resume=True)
    events = EventAccumulator(str(run / "tensorboard")).Reload()
    assert [e.step for e in events.Scalars("train/train_loss")] == [3]


def test_resume_on_another_device_type_reseeds_augmentation_repeatably(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``device`` may change on resume: an augmentation state saved by a CUDA generator does
    not fit the CPU one, so that stream starts again from a seed of the run and step (the
    same continuation every time) and the resume says it is not bit-exact."""
    data = tiny_dataset()
    first = tmp_path / "a"
    fit(_cfg(tmp_path, "a", max_steps=2), dataset=data)

    def from_a_gpu(rng: dict) -> dict:
        for state in rng.get("ranks", [rng]):
            state["augment"] = torch.zeros(16, dtype=torch.uint8)  # a CUDA (Philox) state
            state["cuda"] = [torch.zeros(16, dtype=torch.uint8)]
        return rng

    _edit_rng(first / "last.pt", from_a_gpu)
    shutil.copytree(first, tmp_path / "b")
    capsys.readouterr()
    for name in ("a", "b"):
        fit(_cfg(tmp_path, name, max_steps=4), dataset=data, resume=True)
    err = capsys.readouterr().err
    assert err.count("not bit-exact") == 2
    assert _same_weights(first / "last.pt", tmp_path / "b" / "last.pt")


def test_checkpoint_holds_each_rank_and_older_layouts_resume(tmp_path: Path) -> None:
    """last.pt holds one RNG entry per process (a resume with another process count is a
    one-line refusal); a checkpoint of the single-process layout (one entry, no ``ranks``)
    still resumes exactly."""
    data = tiny_dataset()
    fit(_cfg(tmp_path, "whole", max_steps=4), dataset=data)
    split = tmp_path / "split"
    fit(_cfg(tmp_path, "split", max_steps=2), dataset=data)
    rng = read_checkpoint(split / "last.pt")["rng"]
    assert len(rng["ranks"]) == 1 and {"torch", "cuda", "augment"} <= rng["ranks"][0].keys()

    _edit_rng(split / "last.pt", lambda r: {"ranks": r["ranks"] * 2})
    with pytest.raises(CheckpointError, match=r"2 process\(es\); resume it with as many "
                                              r"\(this run has 1\)"):
        fit(_cfg(tmp_path, "split", max_steps=4), dataset=data, resume=True)

    _edit_rng(split / "last.pt", lambda r: r["ranks"][0])  # the single-process layout
    fit(_cfg(tmp_path, "split", max_steps=4), dataset=data, resume=True)
    assert _same_weights(tmp_path / "whole" / "last.pt", split / "last.pt")


def test_an_epoch_resumed_after_its_last_batch_reports_its_whole_loss(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after last.pt was saved at an epoch's last step but before that epoch's row: the
    resumed run writes the row with the mean loss over all the epoch's batches (the running
    total is in the checkpoint), exactly as the unbroken run did."""
    data = tiny_dataset()
    fit(_cfg(tmp_path, "whole", checkpoint_every=3), dataset=data)
    real_validate, calls = trainer.validate, []

    def dies_validating_epoch_two(*args: object, **kwargs: object) -> dict:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(trainer, "validate", dies_validating_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        fit(_cfg(tmp_path, "killed", checkpoint_every=3), dataset=data)
    monkeypatch.undo()
    fit(_cfg(tmp_path, "killed", checkpoint_every=3), dataset=data, resume=True)
    whole, resumed = _rows(tmp_path / "whole"), _rows(tmp_path / "killed")
    assert [(r["epoch"], r["step"]) for r in resumed] == [(r["epoch"], r["step"]) for r in whole]
    for a, b in zip(whole, resumed, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-6)


def test_training_seconds_add_up_over_the_calls_that_resumed_a_run(tmp_path: Path) -> None:
    """A run's training time counts every call kept in its checkpoints, so a run resumed
    near its end does not look fast (time estimates read it)."""
    data = tiny_dataset()
    run = tmp_path / "run"
    first = fit(_cfg(tmp_path, "run", max_steps=3), dataset=data)
    assert first.train_seconds > 0
    last = read_checkpoint(run / "last.pt")
    assert last["run_state"]["train_seconds"] == pytest.approx(first.train_seconds)
    last["run_state"]["train_seconds"] = 1000.0  # as if the first call had been slow
    save_checkpoint(run / "last.pt", last)
    resumed = fit(_cfg(tmp_path, "run"), dataset=data, resume=True)
    assert 1000.0 < resumed.train_seconds < 1000.0 + 600
