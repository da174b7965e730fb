"""Random number generator states for exact resume, the same for every training loop.

A checkpoint stores what :func:`capture_rng` returns: ``{"torch": CPU state, "cuda": [one
state per visible GPU], **named generators}`` (classifier checkpoints add ``augment``, their
augmentation generator). Generator checkpoints already in run folders name the CPU state
``cpu``; :func:`restore_rng` reads that name too, so those runs still resume.
"""

from __future__ import annotations

import torch

from feraug.errors import CheckpointError


def capture_rng(**generators: torch.Generator) -> dict:
    """The global torch RNG states (CPU and every CUDA device) plus each named generator's."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda,
            **{name: gen.get_state() for name, gen in generators.items()}}


def restore_rng(state: dict, **generators: torch.Generator) -> None:
    """Put back what :func:`capture_rng` captured, into the global RNGs and ``generators``
    (each by the name it was captured under). CUDA states are skipped where no GPU is
    visible: a run continued on the CPU has no CUDA generator to restore."""
    cpu = state.get("torch", state.get("cpu"))
    if cpu is None:
        raise CheckpointError("checkpoint RNG state has no CPU state ('torch')")
    torch.set_rng_state(cpu)
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, gen in generators.items():
        if name not in state:
            raise CheckpointError(f"checkpoint RNG state has no {name!r} generator")
        gen.set_state(state[name])
