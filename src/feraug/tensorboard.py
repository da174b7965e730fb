"""Optional TensorBoard event files beside the JSON-lines logs, so training curves (and a
generator's sample grids) can be watched live with ``tensorboard --logdir RUN``.

The JSON-lines logs stay the record; the events are a view. On resume the events written
after the checkpoint are purged, as the log lines are.
"""

from __future__ import annotations

from pathlib import Path

import torch

from feraug.errors import ConfigError

FOLDER = "tensorboard"


class Board:
    """Writes scalars and images to ``run/tensorboard`` when enabled; does nothing when not."""

    def __init__(self, run: Path | None, resume_step: int | None = None) -> None:
        """``resume_step``: the first step a resumed run will write; events from it on,
        left by the interrupted run, are purged."""
        self.writer = None
        if run is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("--tensorboard needs the tensorboard package: pip install "
                              "'feraug[tensorboard]'") from None
        self.writer = SummaryWriter(str(Path(run) / FOLDER), purge_step=resume_step)

    def scalars(self, values: dict[str, float], step: int, prefix: str = "") -> None:
        """One scalar per numeric entry of ``values`` (tag ``prefix/name``)."""
        if self.writer is None:
            return
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{prefix}/{name}" if prefix else name, value, step)

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        """A uint8 ``[C, H, W]`` image."""
        if self.writer is not None:
            self.writer.add_image(tag, image, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
