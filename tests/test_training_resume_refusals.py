"""Classifier ``--resume``: what it refuses (another run, other settings, an empty folder),
and the older runs it still accepts (a renamed score, options added since, a run killed
before its first checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_training import tiny_dataset

from feraug.classifier.config import build_train_config
from feraug.classifier.trainer import fit
from feraug.errors import CheckpointError, ConfigError, FeraugError
from feraug.models.checkpoint import read_checkpoint


def _cfg(tmp_path: Path, name: str, **kw: object) -> object:
    """One epoch of batches of 8 on the CPU, into ``tmp_path / name``."""
    return build_train_config({"data": "toy", "out": str(tmp_path / name), "epochs": 1,
                               "batch_size": 8, "device": "cpu", **kw})


def test_resume_reads_checkpoints_that_name_the_best_score_best_val_accuracy(
        tmp_path: Path) -> None:
    from feraug.io import atomic_torch_save

    data = tiny_dataset()
    first = fit(_cfg(tmp_path, "run", epochs=2, max_steps=3), dataset=data)
    last = read_checkpoint(first.last_checkpoint)
    best = last["run_state"].pop("best_score")
    last["run_state"]["best_val_accuracy"] = best  # as written before the rename
    atomic_torch_save(last, first.last_checkpoint)
    resumed = fit(_cfg(tmp_path, "run", epochs=2), dataset=data, resume=True)
    state = read_checkpoint(resumed.last_checkpoint)["run_state"]
    assert "best_val_accuracy" not in state and state["best_score"] >= best
    assert state["epoch"] == 2


def test_resume_refuses_other_runs_other_settings_and_empty_folders(tmp_path: Path) -> None:
    """--resume continues one interrupted classifier run of the same config and data, or
    stops with one error; it never rewrites another run's manifest."""
    data = tiny_dataset()
    fit(_cfg(tmp_path, "run", epochs=2, max_steps=2), dataset=data)
    manifest = (tmp_path / "run" / "manifest.json").read_text()
    with pytest.raises(ConfigError, match="lr"):
        fit(_cfg(tmp_path, "run", epochs=2, lr=0.5), dataset=data, resume=True)
    with pytest.raises(ConfigError, match="batch_size"):
        fit(_cfg(tmp_path, "run", epochs=2, batch_size=3), dataset=data, resume=True)
    assert (tmp_path / "run" / "manifest.json").read_text() == manifest
    stale = tmp_path / "run" / ".last.pt.k1ll3d.tmp"  # what a save killed mid-write leaves
    stale.write_bytes(b"half a checkpoint")
    fit(_cfg(tmp_path, "run", epochs=3), dataset=data, resume=True)  # longer: allowed
    assert (tmp_path / "run" / "manifest.json").read_text() == manifest
    assert not stale.exists()

    other = tmp_path / "gan"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"kind": "feraug-gan-run"}))
    (other / "last.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a classifier"):
        fit(_cfg(tmp_path, "gan"), dataset=data, resume=True)
    assert json.loads((other / "manifest.json").read_text()) == {"kind": "feraug-gan-run"}
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="nothing to resume"):
        fit(_cfg(tmp_path, "empty"), dataset=data, resume=True)


def test_a_run_killed_before_its_first_checkpoint_restarts_in_place(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Killed during its very first save, a run leaves a manifest and no checkpoint: --resume
    starts it again from step 0 in its own folder (saying so) and ends where an unbroken run
    ends; a fresh run there is still refused."""
    data = tiny_dataset()
    fit(_cfg(tmp_path, "whole"), dataset=data)
    fit(_cfg(tmp_path, "killed"), dataset=data)
    killed = tmp_path / "killed"
    for name in ("last.pt", "best.pt"):
        (killed / name).unlink()
    (killed / ".last.pt.x1y2.tmp").write_bytes(b"half")
    with pytest.raises(FeraugError, match="not empty"):
        fit(_cfg(tmp_path, "killed"), dataset=data)
    capsys.readouterr()
    fit(_cfg(tmp_path, "killed"), dataset=data, resume=True)
    assert "no checkpoint yet; starting this run again from step 0" in capsys.readouterr().err
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["model"]
    b = torch.load(killed / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = (killed / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == len((tmp_path / "whole" / "metrics.jsonl").read_text().splitlines())
    assert not (killed / ".last.pt.x1y2.tmp").exists()


def test_resume_accepts_a_run_recorded_before_later_options_existed(tmp_path: Path) -> None:
    """A run whose manifest predates options added since (with defaults that keep the old
    behaviour) resumes; a setting that really differs is still refused."""
    cfg = _cfg(tmp_path, "old", max_steps=2)
    ds = tiny_dataset()
    fit(cfg, dataset=ds)
    path = Path(cfg.out) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["config"].pop("extra_train")
    for key in ("gamma", "blur", "noise", "lowres"):
        manifest["config"]["augment"].pop(key)
    path.write_text(json.dumps(manifest))
    longer = _cfg(tmp_path, "old", max_steps=3)
    assert fit(longer, dataset=ds, resume=True).history[-1]["step"] == 3
    manifest["config"]["lr"] = 0.5
    path.write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="lr differ from its manifest"):
        fit(longer, dataset=ds, resume=True)


def test_resume_takes_a_path_written_relative_or_absolute_as_the_same_setting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An experiment job's config names files by absolute paths, its runner's by relative
    ones: the same file either way is the same run; another file is not."""
    from feraug.resume import CLASSIFIER_PATHS, GENERATOR_PATHS, check_same_settings

    monkeypatch.chdir(tmp_path)
    stored = {"init": "runs/exp/classifiers/guide/best.pt", "lr": 0.1, "data": "procedural"}
    job = {**stored, "init": str(tmp_path / "runs" / "exp" / "classifiers" / "guide" / "best.pt")}
    check_same_settings(tmp_path, stored, job, frozenset(), paths=CLASSIFIER_PATHS)
    with pytest.raises(ConfigError, match="init differ"):
        check_same_settings(tmp_path, stored, {**job, "init": "/elsewhere/best.pt"},
                            frozenset(), paths=CLASSIFIER_PATHS)
    with pytest.raises(ConfigError, match="init differ"):  # compared as written without paths
        check_same_settings(tmp_path, stored, job, frozenset())
    nested = {"translator": {"guide": ["bundled", "g.pt"]}}
    check_same_settings(tmp_path, nested, {"translator": {"guide": ["bundled",
                                                                    str(tmp_path / "g.pt")]}},
                        frozenset(), paths=GENERATOR_PATHS)
