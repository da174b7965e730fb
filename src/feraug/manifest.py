"""Run manifests: what produced a result (config, seed, git commit, data fingerprint, versions)."""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

import feraug
from feraug.io import write_json


def git_commit() -> str | None:
    """The current git commit of the feraug source tree (with ``-dirty``), if it is a checkout."""
    src = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "")


def environment() -> dict[str, Any]:
    """Versions and hardware that a result depends on."""
    return {
        "feraug": feraug.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def build_manifest(kind: str, config: dict, seed: int, data_fingerprint: str | None,
                   **extra: Any) -> dict[str, Any]:
    """A manifest dict for a run of ``kind`` (train, evaluate, gan, synth, demo, ...)."""
    return {
        "kind": kind,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "git_commit": git_commit(),
        "seed": seed,
        "data_fingerprint": data_fingerprint,
        "config": config,
        "environment": environment(),
        **extra,
    }


def write_manifest(out_dir: Path, kind: str, config: dict, seed: int,
                   data_fingerprint: str | None, **extra: Any) -> Path:
    """Write ``manifest.json`` into ``out_dir`` and return its path."""
    path = Path(out_dir) / "manifest.json"
    write_json(build_manifest(kind, config, seed, data_fingerprint, **extra), path)
    return path
