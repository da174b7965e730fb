"""Training throughput: feraug's in-memory batched pipeline vs a conventional torchvision
ImageFolder + PIL transforms + DataLoader pipeline vs pure compute, measured side by side.

Each pipeline trains a fresh copy of the same model for the same number of steps; the three
are interleaved over several rounds and the median images/s of each is reported, so load from
other processes affects all three alike. A second part measures how much pure compute gains
from channels-last memory format, a fused optimiser, bf16 autocast (``cpu_bf16`` in a
training config) and torch.compile.

    python benchmarks/train_throughput.py --data ../shared/data/fer2013/Training --steps 30

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from feraug.classifier.augment import augment_batch
from feraug.classifier.batches import TensorBatches
from feraug.classifier.config import AugmentConfig
from feraug.classifier.infer import to_model_input
from feraug.data.load import load_dataset
from feraug.models import build_classifier

AUG = AugmentConfig(flip=True, rotation=10, translate=0.1, scale=0.1, erasing=0.25)


def _step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
          bf16: bool = False):
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(x)
    loss = nn.functional.cross_entropy(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _fresh(model_name: str, num_classes: int, device: torch.device, channels_last=False,
           fused=False, compile_=False):
    torch.manual_seed(0)
    model = build_classifier(model_name, num_classes, 48).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused or None)
    return (torch.compile(model) if compile_ else model), opt


def run_feraug(images, labels, model_name, k, device, steps, batch) -> float:
    model, opt = _fresh(model_name, k, device)
    images, labels = images.to(device), labels.to(device)
    gen = torch.Generator(device).manual_seed(0)
    batches = TensorBatches(labels.cpu(), batch, seed=0)
    it = iter(batches.epoch(0))
    _step(model, opt, augment_batch(to_model_input(images[:batch]), AUG, None, gen), labels[:batch])
    t = time.perf_counter()
    for _ in range(steps):
        idx = next(it).to(device)
        x = augment_batch(to_model_input(images[idx]), AUG, None, gen)
        _step(model, opt, x, labels[idx])
    _sync(device)
    return steps * batch / (time.perf_counter() - t)


def conventional_loader(folder: Path, batch: int, workers: int):
    from torchvision import datasets
    from torchvision.transforms import v2

    tf = v2.Compose([
        v2.Grayscale(1), v2.RandomHorizontalFlip(),
        v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
        v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5], [0.5]),
        v2.RandomErasing(p=0.25),
    ])
    ds = datasets.ImageFolder(str(folder), transform=tf)
    return torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                                       drop_last=True, persistent_workers=workers > 0,
                                       generator=torch.Generator().manual_seed(0))


def run_conventional(loader, model_name, k, device, steps, batch) -> float:
    model, opt = _fresh(model_name, k, device)
    it = iter(loader)
    x, y = next(it)
    _step(model, opt, x.to(device), y.to(device))
    t = time.perf_counter()
    for _ in range(steps):
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(loader)
            x, y = next(it)
        _step(model, opt, x.to(device, non_blocking=True), y.to(device, non_blocking=True))
    _sync(device)
    return steps * batch / (time.perf_counter() - t)


def run_compute(images, labels, model_name, k, device, steps, batch, bf16=False,
                **opts) -> float:
    model, opt = _fresh(model_name, k, device, **opts)
    x = to_model_input(images[:batch]).to(device)
    if opts.get("channels_last"):
        x = x.contiguous(memory_format=torch.channels_last)
    y = labels[:batch].to(device)
    for _ in range(3 if opts.get("compile_") or bf16 else 1):
        _step(model, opt, x, y, bf16)
    t = time.perf_counter()
    for _ in range(steps):
        _step(model, opt, x, y, bf16)
    _sync(device)
    return steps * batch / (time.perf_counter() - t)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/fer2013/Training",
                    help="an ImageFolder (one folder per class)")
    ap.add_argument("--model", default="zhu-cnn")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--skip-compile", action="store_true", help="skip the torch.compile variant")
    args = ap.parse_args()
    device = torch.device(args.device)
    folder = Path(args.data)
    ds = load_dataset(folder, format="imagefolder", size=48)
    images, labels, k = ds.images, ds.labels, ds.num_classes
    loader = conventional_loader(folder, args.batch, args.workers)
    common = (args.model, k, device, args.steps, args.batch)
    res: dict[str, list[float]] = {"feraug": [], "conventional": [], "compute": []}
    for _ in range(args.rounds):
        res["feraug"].append(run_feraug(images, labels, *common))
        res["conventional"].append(run_conventional(loader, *common))
        res["compute"].append(run_compute(images, labels, *common))
    variants = {"channels_last": {"channels_last": True}, "fused_adam": {"fused": True},
                "channels_last+fused": {"channels_last": True, "fused": True},
                "channels_last+bf16": {"channels_last": True, "bf16": True}}
    if not args.skip_compile:
        variants["compile"] = {"compile_": True}
    opt_res: dict[str, list[float]] = {name: [] for name in variants}
    base_again: list[float] = []
    for _ in range(args.rounds):
        base_again.append(run_compute(images, labels, *common))
        for name, opts in variants.items():
            try:
                opt_res[name].append(run_compute(images, labels, *common, **opts))
            except Exception as exc:  # noqa: BLE001 - report, don't crash the benchmark
                opt_res[name].append(float("nan"))
                print(f"# {name} failed: {type(exc).__name__}: {exc}")
    med = {k: statistics.median(v) for k, v in res.items()}
    base = statistics.median(base_again)
    out = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "model": args.model, "batch": args.batch, "steps": args.steps, "rounds": args.rounds,
        "data": str(folder), "images": len(ds), "loader_workers": args.workers,
        "images_per_s": {k: round(v, 1) for k, v in med.items()},
        "ratio_feraug_to_compute": round(med["feraug"] / med["compute"], 3),
        "ratio_conventional_to_compute": round(med["conventional"] / med["compute"], 3),
        "ratio_feraug_to_conventional": round(med["feraug"] / med["conventional"], 3),
        "compute_speedups": {k: round(statistics.median(v) / base, 3) for k, v in opt_res.items()},
        "raw": res,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
