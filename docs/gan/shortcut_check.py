"""Does a classifier trained with a translator's faces recognise new edits better than real
faces of the same emotion? If it does by far, it learned the edits' own pattern (a shortcut),
not the expression.

    python docs/gan/shortcut_check.py runs/gan-stargan-r1-bundled/checkpoint.pt \
        runs/zhu2018-stargan/gan-stargan/seed0/best.pt --data ../shared/data/fer2013

The edits are made from the test split's neutral faces (never seen by the generator or the
classifier); prints JSON: per emotion, the share of edits the classifier calls that emotion.
Compare with the classifier's recall on real test faces (its run's test/metrics.json).
Every experiment report runs the same check on validation faces (feraug.experiment.shortcut).
"""

from __future__ import annotations

import argparse
import json

import torch

from feraug.data.load import load_dataset
from feraug.experiment.shortcut import share_called
from feraug.gan import load_generator
from feraug.models.checkpoint import load_classifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("generator", help="translator checkpoint (feraug gan train)")
    ap.add_argument("classifier", help="classifier checkpoint trained with its faces")
    ap.add_argument("--data", required=True, help="the data set both were trained on")
    ap.add_argument("-n", type=int, default=400, help="test-split neutral faces to edit")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    ds = load_dataset(a.data, size=48)
    test = ds.subset("test")
    gen = load_generator(a.generator, "cpu")
    sources = test.images[test.labels == test.classes.index(gen.source_emotion)][: a.n]
    clf = load_classifier(a.classifier)
    called = {}
    for emotion in gen.emotions():
        if emotion == gen.source_emotion:
            continue
        faces = gen.sample(emotion, len(sources), a.seed, sources)
        called[emotion] = round(share_called(clf, faces, emotion), 3)
    print(json.dumps({"generator": a.generator, "classifier": a.classifier,
                      "edits": len(sources), "called_their_emotion": called}))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
