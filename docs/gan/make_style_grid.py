"""Draw what a styled translator's code does: the first row holds neutral training faces, each
further row the same faces made into ``--emotion`` under one draw of style codes (seeds 0, 1,
...). Rows that look alike mean the generator ignores its code. With ``--references`` (a
translator trained with a style encoder), row i's code is instead the one the encoder reads
from a real Training face of the emotion, shown in the first column.

    python docs/gan/make_style_grid.py runs/gan-stargan-r1-bundled_style20/checkpoint.pt \
        --data ../shared/data/fer2013 --emotion angry --out docs/gan/style_codes_ds20.png
"""

from __future__ import annotations

import argparse

import cv2
import torch
from torchvision.utils import make_grid

from feraug.data.load import load_dataset
from feraug.gan.base import load_generator, to_float, to_uint8


def reference_rows(model, train, sources: torch.Tensor, label: int,
                   n_codes: int) -> list[torch.Tensor]:
    """A blank and the sources, then per real face of the emotion: that face and the sources
    edited under the code the style encoder reads from it."""
    if "e" not in model.nets:
        raise SystemExit("--references needs a translator trained with a style encoder "
                         "(lambda_sty > 0)")
    g = model.nets.get("g_ema", model.nets["g"]).eval()
    refs = train.images[train.labels == label][:n_codes]
    x = to_float(sources)
    labels = torch.full((len(x),), label, dtype=torch.long)
    codes = model.nets["e"].eval()(to_float(refs), torch.full((len(refs),), label))
    rows = [torch.cat([torch.full_like(sources[:1], 255), sources])]
    for ref, code in zip(refs, codes, strict=True):
        edits = to_uint8(g(x, labels, code.expand(len(x), -1))[0])
        rows.append(torch.cat([ref[None], edits]))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("generator")
    p.add_argument("--data", required=True)
    p.add_argument("--emotion", default="angry")
    p.add_argument("--faces", type=int, default=8)
    p.add_argument("--codes", type=int, default=6)
    p.add_argument("--scale", type=int, default=2, help="pixel repeat for viewing")
    p.add_argument("--references", action="store_true",
                   help="codes read from real faces of --emotion by the style encoder")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    train = load_dataset(args.data).subset("train")
    sources = train.images[train.labels == train.classes.index("neutral")][: args.faces]
    model = load_generator(args.generator, "cpu")
    label = model.class_index(args.emotion)
    if args.references:
        rows = reference_rows(model, train, sources, label, args.codes)
    else:
        rows = [sources] + [model.translate(to_float(sources), label, seed=seed)
                            for seed in range(args.codes)]
    rows = [r if r.dtype == torch.uint8 else to_uint8(r) for r in rows]
    grid = make_grid(torch.cat(rows), nrow=rows[0].shape[0], padding=2, pad_value=255)[0]
    grid = grid.repeat_interleave(args.scale, 0).repeat_interleave(args.scale, 1)
    cv2.imwrite(args.out, grid.numpy())
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
