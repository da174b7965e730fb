"""Atomic writes: the file appears whole or not at all, nothing is left behind, and it gets
the permissions of an ordinary new file (not the 0600 of a temporary file)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from feraug.io import atomic_torch_save, atomic_write_bytes


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_atomic_writes_leave_one_file_with_ordinary_permissions(tmp_path: Path, umask_022) -> None:
    atomic_write_bytes(b"abc", tmp_path / "a.json")
    atomic_torch_save({"x": 1}, tmp_path / "sub" / "b.pt")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.json", "b.pt"]
    assert (tmp_path / "a.json").read_bytes() == b"abc"
    for name in ("a.json", "sub/b.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_failed_save_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "ckpt.pt"
    atomic_torch_save({"step": 1}, target)
    before = target.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - any pickling error
        atomic_torch_save({"bad": lambda: None}, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_a_full_disk_is_one_line_naming_the_file_and_keeps_the_old_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import torch

    from feraug.errors import FeraugError
    from feraug.io import atomic_torch_save, atomic_write_bytes

    target = tmp_path / "checkpoint.pt"
    atomic_torch_save({"step": 1}, target)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(FeraugError, match="checkpoint.pt: could not be written .No space left"):
        atomic_torch_save({"step": 2}, target)
    assert torch.load(target, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary left
    monkeypatch.setattr("os.fsync", full)
    with pytest.raises(FeraugError, match="log.json: could not be written"):
        atomic_write_bytes(b"{}", tmp_path / "log.json")


def test_cli_turns_a_disk_error_into_one_line(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import errno

    import feraug.cli.main as cli

    def app() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "runs/x/metrics.jsonl")

    monkeypatch.setattr(cli, "app", app)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: runs/x/metrics.jsonl: No space left on device"]
