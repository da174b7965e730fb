"""Training throughput of every generator, as JSON, on the current device.

    python benchmarks/gan_throughput.py [--batch-size 32] [--steps 5] [--warmup 2]
        [--device auto|cpu|cuda] [--threads N] [--models cgan,stargan,stargan-reference]

Each generator is built with its default config (7 FER2013 classes, 48 px, ``batch_size``
real images per stream), warmed up, then timed over ``--steps`` training steps on random
in-memory uint8 faces, the same batch path as ``feraug gan train`` (index, convert, flip, step;
bf16 autocast on CUDA). ``images_per_s`` counts real images consumed per second; cyclegan
and twostage draw two streams per step (source + target faces; identity + translator
faces), so their ``images_per_step`` is twice the batch size.

``cyclegan-reference`` and ``stargan-reference`` (:mod:`reference_translators`) are
reference-style translators (ResNet generators with transposed convolutions, instance-norm
PatchGANs, least squares), timed in the same run so that they and the editing designs
compare under one machine state.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from reference_translators import REFERENCE

from feraug.emotions import FER2013_CLASSES
from feraug.engine.generator_loop import IndexStream
from feraug.gan import GENERATORS, build_generator
from feraug.gan.base import resolve_device, to_float

SIZE = 48
POOL = 700  # random faces per benchmark (100 per class)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(name: str, batch: int, steps: int, warmup: int, device: torch.device) -> dict:
    """Time ``steps`` training steps of generator ``name`` after ``warmup`` untimed ones."""
    if name in REFERENCE:
        model = REFERENCE[name](batch, FER2013_CLASSES, SIZE)
    else:
        model = build_generator(name, {"batch_size": batch, "steps": 100_000},
                                FER2013_CLASSES, SIZE)
    model.amp = device.type == "cuda"
    model.to(device)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (POOL, 1, SIZE, SIZE), generator=gen, dtype=torch.uint8)
    labels = torch.arange(POOL) % len(FER2013_CLASSES)
    streams = model.streams(labels)
    samplers = [IndexStream(pool, i) for i, (pool, _) in enumerate(streams)]
    images, labels = images.to(device), labels.to(device)

    def step() -> int:
        idx = torch.cat([s.take(k) for s, (_, k) in zip(samplers, streams, strict=True)])
        idx = idx.to(device)
        x = to_float(images[idx])
        x = torch.where(torch.rand(len(x), 1, 1, 1, device=device) < 0.5, x.flip(-1), x)
        model.train_step(x, labels[idx])
        return len(idx)

    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    seen = sum(step() for _ in range(steps))
    _sync(device)
    elapsed = time.perf_counter() - start
    return {
        "images_per_s": round(seen / elapsed, 2),
        "step_ms": round(1000 * elapsed / steps, 1),
        "images_per_step": seen // steps,
        "params_m": {k: round(v / 1e6, 3) for k, v in model.num_parameters().items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per generator")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--models", default=",".join([*GENERATORS, *REFERENCE]),
                        help="comma-separated names")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    results = {name: bench(name, args.batch_size, args.steps, args.warmup, device)
               for name in args.models.split(",")}
    info = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "image_size": SIZE,
        "batch_size": args.batch_size,
        "amp_bf16": device.type == "cuda",
        "timed_steps": args.steps,
        "generators": results,
    }
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
