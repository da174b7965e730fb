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

    The demo is a bundled experiment config run by the same runner as `feraug experiment
    run`: an imbalanced 7-emotion set of cartoon faces (about 2,400 images, 40 identities,
    subject-disjoint splits); a guide classifier; a guided editing CycleGAN turning neutral
    faces into disgust (the rarest class) on the train split; a synthetic set filling disgust
    up (memorisation guard on); an independent judge scoring the generated faces; and zhu-cnn
    trained on real faces and on real + synthetic faces over two seeds, each checkpoint chosen
    on validation and scored on the test split. Writes OUT/report.md and OUT/report.html
    (tables with intervals, per-class recall, the judge's scores, sample grids, t-SNE),
    OUT/results.json, OUT/summary.json and OUT/manifest.json; the data are saved under
    OUT/data as FER2013-style folders for `feraug train/evaluate`.

    Takes a few minutes on 2 CPU cores (about 1 with --no-gan, seconds with --quick). The
    faces are procedural, not real: the scores show that the pipeline works.
    """
    from feraug.demo import run_demo

    result = run_demo(out, quick=quick, seed=seed, gan=not no_gan,
                      log=None if as_json else typer.echo)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    arms = result["arms"]
    width = max(len(a) for a in arms) + 1
    for arm, r in arms.items():
        typer.echo(f"{arm + ':':{width}s} test accuracy {_pm(r['accuracy'], r['accuracy_ci95'])}"
                   f"  macro-F1 {_pm(r['macro_f1'], r['macro_f1_ci95'])}")
    typer.echo("per-class test recall (mean over seeds):"
               + "".join(f"  {a:>14s}" for a in arms))
    classes = next(iter(result["test_recall"].values()))
    for name in classes:
        typer.echo(f"  {name:9s}" + " " * 31
                   + "".join(f"  {result['test_recall'][a][name]:14.3f}" for a in arms))
    gan = result.get("gan")
    if gan:
        typer.echo(f"generator: {gan['model']} {gan['source']} -> {gan['target']}, "
                   f"{gan['steps']} steps, {gan['synthetic_kept']} synthetic images kept; "
                   f"judge agreement {_pm(gan['judge_agreement'], None)} "
                   f"(its recall on real {gan['target']}: "
                   f"{_pm(gan['judge_recall_real'], None)})")
    typer.echo(f"report: {result['report']} (also {Path(result['report']).with_suffix('.html')})")


def _pm(value: float | None, half: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4f}" if half is None else f"{value:.4f} ± {half:.4f}"


def register(app: typer.Typer) -> None:
    """Add the demo command."""
    app.command()(demo)
