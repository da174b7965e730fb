"""Which torch device a command runs on: the one rule behind every ``--device`` option.

It sits at the package root, below the networks, because generators resolve a device when
they are loaded for sampling as well as when the run engine trains them.
"""

from __future__ import annotations

import torch

from feraug.errors import ConfigError


def choose_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: CUDA when available, else CPU; ``cpu``; ``cuda`` (this rank's GPU) or
    ``cuda:N``. ConfigError for an unknown name or CUDA that is not there."""
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if preference not in ("auto", "cuda") and not preference.startswith("cuda:"):
        raise ConfigError(f"unknown device {preference!r} (use auto, cpu or cuda)")
    if not torch.cuda.is_available():
        raise ConfigError(f"--device {preference} was asked for but no CUDA device is "
                          "available")
    return torch.device(preference if ":" in preference else f"cuda:{local_rank}")
