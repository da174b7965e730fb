"""Reading a local pretrained-weights file (torchvision's ``*.pth``) for a classifier's
``pretrained_weights``: one clear error for any file that cannot be read. Nothing is
downloaded."""

from __future__ import annotations

from pathlib import Path

import torch

from feraug.errors import CheckpointError


def read_state_dict(path: Path, network: str) -> object:
    """What ``torch.load(path, weights_only=True)`` returns; CheckpointError naming the file
    and ``network`` when the file is missing, unreadable or not a safe tensor pickle."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable or unpicklable file is a bad file
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise CheckpointError(f"{path}: cannot load {network} weights ({reason})") from None
