"""Generator training's TensorBoard events: the logged losses and sample grids, one stream
across a resume, events after the last checkpoint purged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_gan import tiny_faces, tiny_model

from feraug.engine.generator_loop import train_generator

pytestmark = pytest.mark.usefixtures("one_thread")


def test_tensorboard_events_beside_the_log_and_purged_on_resume(tmp_path: Path) -> None:
    """--tensorboard writes the logged losses and the sample grids as events; a resumed run
    continues the same event stream."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = tiny_model("fastgan", steps=3)
    train_generator(model, tiny_faces(), tmp_path / "run", device="cpu", sample_every=1,
                    checkpoint_every=2, log_every=1, progress=False, tensorboard=True)
    resumed = tiny_model("fastgan", steps=4)
    train_generator(resumed, tiny_faces(), tmp_path / "run", device="cpu", sample_every=1,
                    checkpoint_every=2, log_every=1, resume=True, progress=False,
                    tensorboard=True)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    assert {"gan/d", "gan/g", "gan/images_per_s"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("gan/d")] == [1, 2, 3, 4]
    assert [e.step for e in events.Images("samples")] == [1, 2, 3, 4]


def test_tensorboard_events_after_the_checkpoint_are_purged_on_resume(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    killed = tiny_model("fastgan", steps=4)
    step = killed.train_step

    def dies_at_step_4(real: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        if killed.step == 3:  # step 3 is logged, the last checkpoint is from step 2
            raise KeyboardInterrupt
        return step(real, labels)

    killed.train_step = dies_at_step_4  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        train_generator(killed, tiny_faces(), tmp_path / "run", device="cpu", sample_every=0,
                        checkpoint_every=2, log_every=1, progress=False, tensorboard=True)
    train_generator(tiny_model("fastgan", steps=4), tiny_faces(), tmp_path / "run",
                    device="cpu", sample_every=0, checkpoint_every=2, log_every=1,
                    resume=True, progress=False, tensorboard=True)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    assert [e.step for e in events.Scalars("gan/d")] == [1, 2, 3, 4]
