"""How recognisable and how novel generated faces are, as JSON: a proxy for GAN quality that
needs no downloaded network (FID needs Inception weights, which feraug never downloads).

    python benchmarks/gan_quality.py --data ../shared/data/fer2013 \
        --classifier runs/fer2013-zhu-cnn/best.pt runs/gan-fer2013/*/checkpoint.pt

For every generator checkpoint and every emotion it makes, ``-n`` faces are generated
(translators translate ``-n`` random *train-split* faces of their source emotion, or of any
other emotion for StarGAN) and scored with a trained FER classifier:

- ``agreement``: share of generated faces the classifier assigns to the requested emotion;
- ``mean_prob``: the classifier's mean probability of the requested emotion;
- ``nearest_real_rms``: mean RMS pixel distance (0..1) to the nearest real training face
  (near 0 = copies; real test faces sit at about the value printed under ``reference``).

The ``reference`` block scores ``-n`` real *test-split* faces per emotion the same way: the
level a perfect generator would reach with this classifier. Agreement far below it means
the classifier does not see the emotion in the generated faces.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from feraug.classifier.infer import predict_proba
from feraug.data.load import load_dataset
from feraug.gan.base import load_generator
from feraug.models.checkpoint import load_classifier
from feraug.synth.filters import MemorisationGuard, resize_uint8


def score(images: torch.Tensor, emotion: str, classifier, guard: MemorisationGuard) -> dict:
    """Agreement, mean probability and nearest-real distance of uint8 faces of ``emotion``."""
    x = resize_uint8(images, classifier.image_size)
    probs = predict_proba(classifier.model, x, classifier.crop_size, classifier.tta)
    k = classifier.classes.index(emotion)
    rms, _ = guard.nearest(resize_uint8(images, guard.size))
    return {"n": len(images), "agreement": round(float((probs.argmax(1) == k).float().mean()), 4),
            "mean_prob": round(float(probs[:, k].mean()), 4),
            "nearest_real_rms": round(float(rms.mean()), 4)}


def pick(ds, split: str, emotion: str | None, n: int, seed: int, exclude: str | None = None):
    """``n`` random faces of ``split`` (of ``emotion``, or not of ``exclude``), repeating if few."""
    idx = ds.indices(split)
    labels = ds.labels[idx]
    if emotion is not None:
        idx = idx[labels == ds.classes.index(emotion)]
    elif exclude is not None:
        idx = idx[labels != ds.classes.index(exclude)]
    order = idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed))]
    return ds.images[order[torch.arange(n) % len(order)]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("generators", nargs="+", type=Path, help="generator checkpoint.pt files")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--classifier", type=Path, required=True, help="classifier checkpoint")
    ap.add_argument("-n", type=int, default=100, help="faces per emotion")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    classifier = load_classifier(args.classifier)
    ds = load_dataset(args.data)
    guard = MemorisationGuard(ds.images[ds.indices("train")], delta=0.0)
    out: dict = {"data": str(args.data), "classifier": str(args.classifier), "n": args.n,
                 "seed": args.seed, "reference": {}, "generators": {}}
    for emotion in ds.classes:
        out["reference"][emotion] = score(pick(ds, "test", emotion, args.n, args.seed),
                                          emotion, classifier, guard)
    for path in args.generators:
        gen = load_generator(path)
        rows = {}
        for emotion in gen.emotions():
            sources = None
            if gen.needs_sources:
                sources = pick(ds, "train", gen.source_emotion, args.n, args.seed,
                               exclude=None if gen.source_emotion else emotion)
            rows[emotion] = score(gen.sample(emotion, args.n, args.seed, sources), emotion,
                                  classifier, guard)
        out["generators"][str(path)] = {"model": gen.name, "step": gen.step, "emotions": rows}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
