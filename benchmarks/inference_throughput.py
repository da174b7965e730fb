"""Inference throughput on CPU: memory format and batch size of feraug's prediction loop.

``predict_logits`` (used by evaluate, adjust, compare, predict and training's validation
pass) runs the model batch by batch. This compares, side by side and interleaved over
several rounds, the previous setting (contiguous NCHW, 512 faces per batch) with
channels-last at several batch sizes (faces per batch; flip TTA doubles the images per
forward pass), on the same uint8 faces, and reports the
median images/s of each and its ratio to the previous setting.

    python benchmarks/inference_throughput.py --model zhu-cnn --images 2048 --rounds 3

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch

from feraug.classifier.infer import predict_proba
from feraug.models import build_classifier

VARIANTS = (("nchw", 512), ("channels_last", 512), ("channels_last", 64),
            ("channels_last", 32), ("channels_last", 16), ("channels_last", 8), ("nchw", 16))


def _cpu_seconds() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def measure(model: torch.nn.Module, faces: torch.Tensor, fmt: str, batch: int) -> dict:
    """Images/s and user/system CPU seconds of one prediction pass over ``faces``."""
    layout = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=layout)
    u0, s0 = _cpu_seconds()
    t0 = time.perf_counter()
    predict_proba(model, faces, None, "flip", batch_size=batch)
    wall = time.perf_counter() - t0
    u1, s1 = _cpu_seconds()
    return {"images_per_s": len(faces) / wall, "user_s": u1 - u0, "sys_s": s1 - s0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="zhu-cnn")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_classifier(args.model, 7, 48).eval()
    faces = torch.randint(0, 256, (args.images, 1, 48, 48), dtype=torch.uint8)
    measure(model, faces[:256], "nchw", 64)  # warm-up
    runs: dict[str, list[dict]] = {f"{fmt}/{b}": [] for fmt, b in VARIANTS}
    for _ in range(args.rounds):
        for fmt, b in VARIANTS:
            runs[f"{fmt}/{b}"].append(measure(model, faces, fmt, b))
    base = statistics.median(r["images_per_s"] for r in runs["nchw/512"])
    result = {"device": "cpu", "threads": args.threads, "torch": torch.__version__,
              "model": args.model, "images": args.images, "rounds": args.rounds, "tta": "flip",
              "variants": {}}
    for name, rows in runs.items():
        ips = statistics.median(r["images_per_s"] for r in rows)
        result["variants"][name] = {
            "images_per_s": round(ips, 1), "ratio_to_nchw_512": round(ips / base, 3),
            "user_s": round(statistics.median(r["user_s"] for r in rows), 2),
            "sys_s": round(statistics.median(r["sys_s"] for r in rows), 2)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
