"""Draw what a styled translator's code does: the first row holds neutral training faces, each
further row the same faces made into ``--emotion`` under one draw of style codes (seeds 0, 1,
...). Rows that look alike mean the generator ignores its code. With ``--references`` (a
translator trained with a style encoder), row i's code is instead the one the encoder reads
from a real Training face of the emotion, shown in the first column, and a JSON line says
how much the codes are used over 200 faces: the encoder's codes' spread over real faces, the
grey-level difference between edits of the same sources under two faces' codes and under
two random codes, and the encoder's read-back error for random codes (0.80 for an encoder
that reads nothing back from a unit-normal code).

    python docs/gan/make_style_grid.py runs/gan-stargan-r1-bundled_style20/checkpoint.pt \
        --data ../shared/data/fer2013 --emotion angry --out docs/gan/style_codes_ds20.png
"""

from __future__ import annotations

import argparse
import json

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


def code_use(model, train, label: int, n: int = 200) -> dict[str, float]:
    """How much a translator with a style encoder uses its codes (see the module docstring)."""
    g, e = model.nets.get("g_ema", model.nets["g"]).eval(), model.nets["e"].eval()
    x = to_float(train.images[train.labels == train.classes.index("neutral")][:n])
    refs = to_float(train.images[train.labels == label][: len(x)])
    x = x[: len(refs)]
    labels = torch.full((len(x),), label, dtype=torch.long)
    codes = e(refs, labels)
    randoms = torch.randn(2, len(x), codes.shape[1], generator=torch.Generator().manual_seed(0))
    edit = g(x, labels, randoms[0])[0]

    def spread(a: torch.Tensor, b: torch.Tensor) -> float:
        return round(float((g(x, labels, a)[0] - g(x, labels, b)[0]).abs().mean() * 127.5), 3)

    return {"faces": len(x),
            "reference_code_std": round(float(codes.std(0).mean()), 4),
            "spread_two_references_grey_levels": spread(codes, codes.roll(1, 0)),
            "spread_two_random_codes_grey_levels": spread(randoms[0], randoms[1]),
            "read_back_l1_random_codes": round(float((e(edit, labels) - randoms[0])
                                                     .abs().mean()), 3)}


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
        print(json.dumps(code_use(model, train, label)))
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
