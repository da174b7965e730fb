"""Random number generator states for exact resume, the same for every training loop.

A checkpoint stores what :func:`capture_rng` returns: ``{"torch": CPU state, "cuda": [one
state per visible GPU], **named generators}`` (classifier checkpoints add ``augment``, their
augmentation generator). Generator checkpoints already in run folders name the CPU state
``cpu``; :func:`restore_rng` reads that name too, so those runs still resume.

A run may continue on another device (fewer GPUs, or CPU instead of GPU): the CUDA states of
GPUs that no longer exist are skipped, and a named generator whose stored state was made for
another kind of device cannot take it back. Such a generator starts again from a seed the
caller derives from the run (so the continuation is repeatable), and the resume says it is
no longer bit-exact.
"""

from __future__ import annotations

import sys

import torch

from feraug.errors import CheckpointError


def capture_rng(**generators: torch.Generator) -> dict:
    """The global torch RNG states (CPU and every CUDA device) plus each named generator's."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda,
            **{name: gen.get_state() for name, gen in generators.items()}}


def _fits(gen: torch.Generator, stored: torch.Tensor) -> bool:
    """Whether ``stored`` is a state of ``gen``'s kind: each device type's generator has its
    own state size (CPU Mersenne Twister vs CUDA Philox), and a foreign one is refused."""
    return isinstance(stored, torch.Tensor) and stored.numel() == gen.get_state().numel()


def restore_rng(state: dict, *, reseed: int | None = None,
                **generators: torch.Generator) -> None:
    """Put back what :func:`capture_rng` captured, into the global RNGs and ``generators``
    (each by the name it was captured under).

    CUDA states are restored for the GPUs that exist here; those of GPUs no longer visible
    are skipped (a run continued on the CPU has no CUDA generator at all). A named generator
    whose stored state belongs to another device type is seeded with ``reseed`` instead, and
    one line on stderr says the resume is not bit-exact; without ``reseed`` that is a
    one-line :class:`CheckpointError`.
    """
    cpu = state.get("torch", state.get("cpu"))
    if cpu is None:
        raise CheckpointError("checkpoint RNG state has no CPU state ('torch')")
    torch.set_rng_state(cpu)
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][:torch.cuda.device_count()])
    foreign = []
    for name, gen in generators.items():
        if name not in state:
            raise CheckpointError(f"checkpoint RNG state has no {name!r} generator")
        if _fits(gen, state[name]):
            gen.set_state(state[name])
            continue
        if reseed is None:
            raise CheckpointError(f"checkpoint RNG state of the {name!r} generator was made "
                                  f"on another device type than {gen.device.type}; resume "
                                  "on the device the run was trained on")
        gen.manual_seed(reseed)
        foreign.append(name)
    if foreign:
        print(f"resuming on another device type ({generators[foreign[0]].device.type}): the "
              f"{', '.join(foreign)} random stream(s) start again from a seed, so this resume "
              "is not bit-exact", file=sys.stderr)
