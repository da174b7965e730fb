"""Device, precision and data parallelism in one place, on top of PyTorch's own engine.

Classifier and generator training both run on it. Multi-process training is launched with
``torchrun`` (``torchrun --nproc-per-node N -m feraug train ...``); this module reads the
environment torchrun sets, joins the process group (NCCL on GPUs, gloo on CPU) and wraps the
model in ``DistributedDataParallel``. Nothing here re-implements communication. The device
rule itself (:func:`choose_device`) lives in :mod:`feraug.devices`, where generator loading
reaches it too.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from feraug.devices import choose_device
from feraug.errors import CheckpointError

__all__ = ["Engine", "choose_device", "make_engine"]


@dataclass
class Engine:
    """Where and how training runs."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    amp: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def wrap(self, model: nn.Module) -> nn.Module:
        """Move to the device and wrap for data parallelism when there are several ranks."""
        model = model.to(self.device)
        if self.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = DistributedDataParallel(model, device_ids=ids)
        return model

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on the engine's device when mixed precision is on; a no-op otherwise.

        ``make_engine`` turns it on for CUDA by default and for the CPU only on request:
        bf16 is about 2x faster on CPUs with AVX512-BF16 or AMX; others emulate it.
        """
        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def sync_buffers(self, model: nn.Module) -> None:
        """Copy rank 0's buffers (batch-norm running statistics) to every rank.

        DDP keeps parameters identical but each rank updates its running statistics on its own
        shard after the last broadcast; syncing before validation and saving makes every rank
        hold exactly the same model.
        """
        if self.distributed:
            for buf in model.buffers():
                dist.broadcast(buf.data, src=0)

    def average_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """Average gradients over the ranks right before every ``optimizer.step()``.

        For multi-network steps that DDP's reducer does not support: a GAN step runs its
        discriminator several times, with its parameters frozen during the generator phase
        and, for R1, through a double backward. Every rank starts from the same weights and
        applies the same averaged gradients, so the weights stay identical.
        """
        if not self.distributed:
            return
        world = self.world_size

        def hook(opt: torch.optim.Optimizer, args: object, kwargs: object) -> None:
            params = [p for group in opt.param_groups for p in group["params"]]
            if not params:
                return
            # which parameters got a gradient differs by rank where a step uses only some
            # parts of a network (a StarGAN's per-emotion heads, for the emotions in this
            # rank's batch): a parameter with a gradient on any rank gets the mean over all
            # ranks (zero where it had none), one with none anywhere stays without
            used = torch.tensor([p.grad is not None for p in params], dtype=torch.float32,
                                device=params[0].device)
            dist.all_reduce(used)
            chosen = [p for p, n in zip(params, used.tolist(), strict=True) if n > 0]
            if not chosen:
                return
            for p in chosen:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            grads = [p.grad for p in chosen]
            flat = torch.cat([g.flatten() for g in grads])
            dist.all_reduce(flat)
            flat /= world
            for g, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
                g.copy_(part.view_as(g))

        optimizer.register_step_pre_hook(hook)

    def broadcast_from_main(self, modules: Iterable[nn.Module]) -> None:
        """Copy rank 0's parameters and buffers to every rank."""
        if self.distributed:
            for module in modules:
                for t in itertools.chain(module.parameters(), module.buffers()):
                    dist.broadcast(t.data, src=0)

    def gather(self, obj: object) -> list:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def own_state(self, stored: dict, source: object) -> dict:
        """This rank's part of per-rank state saved as ``{"ranks": [...]}`` (what
        :meth:`gather` collected); a record without ``ranks`` is one process's state. A
        checkpoint of another process count is refused in one line naming ``source``: each
        rank's random streams and batch positions continue only on that rank."""
        ranks = stored.get("ranks", [stored])
        if len(ranks) != self.world_size:
            raise CheckpointError(f"{source}: holds the random states of {len(ranks)} "
                                  "process(es); resume it with as many (this run has "
                                  f"{self.world_size})")
        return ranks[self.rank]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()



def _leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def make_engine(device: str = "auto", amp: bool = True, cpu_bf16: bool = False) -> Engine:
    """Build the engine, joining a torchrun process group when ``WORLD_SIZE`` > 1.

    ``amp`` is bf16 autocast on CUDA; ``cpu_bf16`` is the same on the CPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = choose_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        # left when the process ends, not after each training: joining again under torchrun
        # (a second training in the same process) waits forever on the rendezvous
        atexit.register(_leave_group)
    use_amp = (amp and dev.type == "cuda") or (cpu_bf16 and dev.type == "cpu")
    return Engine(device=dev, rank=rank, world_size=world_size, amp=use_amp)
