"""``feraug demo``: the end-to-end pipeline on embedded procedural faces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_OUT = Path("runs/demo")


def demo(
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Output folder for the report, figures, data and checkpoints "
                            "(must be new or empty).")] = DEFAULT_OUT,
    quick: Annotated[bool, typer.Option(
        "--quick", help="Tiny data and two training steps: a smoke test in seconds "
                        "(scores near chance).")] = False,
    seed: Annotated[int, typer.Option(
        help="Seed for the faces, the splits and training.")] = 0,
    no_gan: Annotated[bool, typer.Option(
        "--no-gan", help="Skip the generator step (generator, synthetic set, second "
                         "classifier): only the real-data classifier.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the result summary as JSON.")] = False,
) -> None:
    """Run the whole pipeline on built-in procedural faces (no download needed).

    Draws an imbalanced 7-emotion data set of cartoon faces (about 2,400 images, 40 identities,
    subject-disjoint train/val/test splits), trains zhu-cnn on it (best epoch chosen on
    validation) and evaluates it on the test split. Then the generator step: a small CycleGAN
    learns neutral -> disgust (the rarest class) on the train split, a synthetic set balances
    disgust up (OUT/synthetic, memorisation guard on), and zhu-cnn is trained again with the
    same seed on real + synthetic training images and scored on the same test split.
    Writes OUT/report.md (sample faces, generated faces next to real ones, both classifiers
    side by side, per-class metrics, timings), OUT/summary.json and OUT/manifest.json.
    The data are saved under OUT/data as FER2013-style folders for `feraug train/evaluate`.

    Takes about 6 CPU-minutes, most of it the generator (3.5 minutes of wall-clock measured
    on 2 CPU cores; about 1 with --no-gan, seconds with --quick). The faces are
    procedural, not real, and one seed proves nothing: the scores show that the pipeline
    works; `feraug experiment` with several seeds is the way to measure.
    """
    from feraug.demo import run_demo

    result = run_demo(out, quick=quick, seed=seed, gan=not no_gan)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    rows = result.get("results") or [{"name": "real only", **result}]
    width = max(len(r["name"]) for r in rows) + 1
    for r in rows:
        typer.echo(f"{r['name'] + ':':{width}s} test accuracy {r['test_accuracy']:.4f}  "
                   f"macro-F1 {r['test_macro_f1']:.4f}")
    typer.echo(f"per-class test recall ({result['epochs']} epoch(s)):"
               + "".join(f"  {r['name']:>16s}" for r in rows))
    for name in result["test_recall"]:
        typer.echo(f"  {name:9s}" + " " * 21
                   + "".join(f"  {r['test_recall'][name]:16.3f}" for r in rows))
    if result.get("gan"):
        gan = result["gan"]
        typer.echo(f"generator: {gan['model']} {gan['source']} -> {gan['target']}, "
                   f"{gan['steps']} steps, {gan['synthetic_kept']} synthetic images kept")
    typer.echo(f"report: {result['report']}")


def register(app: typer.Typer) -> None:
    """Add the demo command."""
    app.command()(demo)
