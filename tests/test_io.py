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
