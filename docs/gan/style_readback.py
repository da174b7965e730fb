"""Can a style encoder learn to read codes back from a frozen, trained styled translator?

Trains the translator's own (trained) style encoder and a freshly initialised one, alone, to
recover unit-normal codes from edits of neutral Training faces into random emotions, and
prints the read-back L1 error as JSON lines. 0.80 (E|s| for a unit normal) means nothing is
read; an error that stays there even for an encoder trained alone says the edit does not
carry the code in a readable form, so the read-back loss could not have taught the encoder
during the translator's training either.

    python docs/gan/style_readback.py runs/gan-stargan-r1-bundled_refinit/checkpoint.pt \
        --data ../shared/data/fer2013 --lr 1e-3 --steps 300
"""

from __future__ import annotations

import argparse
import json

import torch

from feraug.data.load import load_dataset
from feraug.gan.base import load_generator, to_float
from feraug.gan.editnets import StyleEncoder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("generator")
    p.add_argument("--data", required=True)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=32)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    model = load_generator(args.generator, "cpu")
    if "e" not in model.nets:
        raise SystemExit("the translator has no style encoder (lambda_sty > 0)")
    g = model.nets["g"].eval().requires_grad_(False)
    train = load_dataset(args.data).subset("train")
    faces = to_float(train.images[train.labels == train.classes.index("neutral")][:2000])
    k, dim = len(train.classes), g.style_dim
    fresh = StyleEncoder(model.config.ndf, k, dim)
    for name, encoder in (("trained", model.nets["e"]), ("fresh", fresh)):
        encoder.train()
        opt = torch.optim.Adam(encoder.parameters(), lr=args.lr)
        for step in range(args.steps):
            pick = torch.randint(0, len(faces), (args.batch,))
            labels = torch.randint(0, k, (args.batch,))
            codes = torch.randn(args.batch, dim)
            with torch.no_grad():
                edits = g(faces[pick], labels, codes)[0]
            loss = (encoder(edits, labels) - codes).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % 50 == 0 or step == args.steps - 1:
                print(json.dumps({"encoder": name, "step": step,
                                  "read_back_l1": round(loss.item(), 3)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
