"""Choosing the logit-adjustment tau: one network pass per tau vs one pass for every tau.

``feraug adjust`` shifts the final layer's bias by ``-tau * log(prior)``, which moves every
test-time view's logits by the same amount. So the per-view logits of one pass can be
shifted and averaged for each tau instead of running the network again per tau. This runs
both ways side by side on the same uint8 faces (a randomly initialised network: the cost
does not depend on the weights), reports seconds for each and their ratio, and checks that
both give the same predictions for every tau.

    python benchmarks/adjust_speed.py --model vgg-fer-small --images 1024 --tta tencrop

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from feraug.classifier.infer import average_views, predict_proba, view_logits
from feraug.classifier.setup import last_linear
from feraug.models import build_classifier


def per_tau_passes(model: torch.nn.Module, faces: torch.Tensor, crop: int, tta: str,
                   shift: torch.Tensor, taus: list[float]) -> list[torch.Tensor]:
    """Predictions for each tau, running the network once per tau (the old way)."""
    _, head = last_linear(model)
    bias0 = head.bias.detach().clone()
    preds = []
    for tau in taus:
        with torch.no_grad():
            head.bias.copy_(bias0 - tau * shift)
        preds.append(predict_proba(model, faces, crop, tta).argmax(1))
    with torch.no_grad():
        head.bias.copy_(bias0)
    return preds


def one_pass(model: torch.nn.Module, faces: torch.Tensor, crop: int, tta: str,
             shift: torch.Tensor, taus: list[float]) -> list[torch.Tensor]:
    """Predictions for each tau from one pass of per-view logits (what adjust does)."""
    logits = view_logits(model, faces, crop, tta)
    return [average_views(logits - tau * shift).argmax(1) for tau in taus]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vgg-fer-small")
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--tta", default="tencrop", choices=("none", "flip", "tencrop"))
    parser.add_argument("--taus", default="0,0.25,0.5,0.75,1")
    args = parser.parse_args()
    torch.manual_seed(0)
    taus = [float(t) for t in args.taus.split(",")]
    model = build_classifier(args.model, 7, 40).eval()
    faces = torch.randint(0, 256, (args.images, 1, 48, 48), dtype=torch.uint8)
    shift = torch.linspace(-3.5, -1.0, 7)  # a log prior as imbalanced as FER2013's
    one_pass(model, faces[:64], 40, args.tta, shift, taus)  # warm-up
    t0 = time.perf_counter()
    old = per_tau_passes(model, faces, 40, args.tta, shift, taus)
    t1 = time.perf_counter()
    new = one_pass(model, faces, 40, args.tta, shift, taus)
    t2 = time.perf_counter()
    agree = min(float((a == b).float().mean()) for a, b in zip(old, new, strict=True))
    print(json.dumps({"model": args.model, "images": args.images, "tta": args.tta,
                      "taus": len(taus), "threads": torch.get_num_threads(),
                      "per_tau_passes_s": round(t1 - t0, 2), "one_pass_s": round(t2 - t1, 2),
                      "speedup": round((t1 - t0) / (t2 - t1), 2),
                      "prediction_agreement": agree}))


if __name__ == "__main__":
    main()
