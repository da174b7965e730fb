"""``feraug synth``: build a synthetic training set from a trained generator.

torch, the data layer and the generators are imported inside the command, so
``feraug --help`` stays fast.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from feraug.cli.data_cmd import FORMAT_NAMES, check_format
from feraug.cli.split_options import (
    ClassMapOpt,
    DataSeedOpt,
    FoldOpt,
    FoldsOpt,
    generator_data_spec,
)
from feraug.errors import ConfigError

SYNTH_HELP = (
    "Build a synthetic training set: sample faces of chosen emotions from a trained "
    "generator, filter them, and write them with a manifest into a new folder."
    "\n\n"
    "How many: --balance (default) fills every chosen emotion up to the largest real class "
    "of the train split; --multiply K makes K x each emotion's real train count (0.5-5)."
    "\n\n"
    "What is kept: with --filter-model, only samples that classifier assigns to the requested "
    "emotion with probability >= --tau; and (memorisation guard) only samples whose RMS pixel "
    "distance (pixels in [0,1]) to the nearest real training face is >= --delta (for a "
    "translator: any face but its own source); and, for translators, only samples whose edit "
    "is at least --min-change (99th percentile of the absolute pixel change); and never a "
    "copy of an earlier sample (a translator without a noise or style input makes one face "
    "per source face: asked for more, it would repeat itself; --allow-copies keeps the "
    "repeats). Extra "
    "candidates are generated (--oversample, --max-attempts) so filtered counts can still be "
    "met; a shortfall is reported, not hidden."
    "\n\n"
    "Translators (cyclegan, stargan) start from the real train split's faces of their source "
    "emotion only. The output folder must be new or empty and may not lie inside the data "
    "set or under any val/test split folder (PublicTest, PrivateTest, val, test, ...). Train "
    "with it via the training config's `synthetic: [DIR]`; its images only ever join the "
    "train split, flagged synthetic."
)

if TYPE_CHECKING:
    from feraug.gan.base import GeneratorModel


def parse_emotions(text: str | None) -> list[str] | None:
    """``disgust,fear`` -> ``["disgust", "fear"]`` (None: let the plan choose)."""
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ConfigError("--emotions: no emotion names given (example: --emotions disgust,fear)")
    return names



def load_generator_checkpoint(path: Path, device: object = "cpu") -> GeneratorModel:
    """Load a trained generator (a module-level seam, so tests can substitute one)."""
    from feraug.gan.base import load_generator

    return load_generator(path, device=device)


def render_counts(manifest: dict, out: Path) -> None:
    """Print the per-emotion counts of a finished build with rich."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True)
    gen = manifest["generator"]
    console.print(f"[bold]Generator:[/bold] {escape(gen['name'])} "
                  f"({escape(str(gen['checkpoint']))}, sha256 {str(gen['sha256'])[:12]})")
    console.print(f"[bold]Written:[/bold]   {escape(str(out))}")
    # short headers: eight counts must fit an 80-column terminal beside the emotion names
    cols = {"requested": "asked", "generated": "made", "kept": "kept",
            "dropped_quality": "quality", "dropped_memorisation": "memorised",
            "dropped_unchanged": "unedited", "dropped_duplicate": "copies",
            "shortfall": "short"}
    table = Table(title="Synthetic images per emotion (dropped as: quality, memorised, "
                        "unedited, copies)", box=None, pad_edge=False,
                  header_style="bold underline")
    table.add_column("emotion", no_wrap=True)
    for header in cols.values():
        table.add_column(header, justify="right", min_width=len(header))
    for emotion, c in manifest["counts"].items():
        table.add_row(emotion, *(f"{c[k]:,}" for k in cols))
    table.add_row("total", *(f"{manifest['totals'][k]:,}" for k in cols), style="bold")
    console.print(table)
    if not manifest["complete"]:
        console.print("[yellow]warning:[/yellow] the filters left some emotions short of the "
                      "plan; raise --max-attempts/--oversample or loosen "
                      "--tau/--delta/--min-change (dropped duplicates: the generator gave "
                      "the same face again, e.g. a translator with fewer sources than the "
                      "plan asks for; --allow-copies keeps them)")


def synth(
    generator: Annotated[Path, typer.Option(
        "--generator", "-g", metavar="CKPT", show_default=False,
        help="Generator checkpoint written by `feraug gan train`.")],
    data: Annotated[Path, typer.Option(
        "--data", "-d", metavar="PATH", show_default=False,
        help="Real data set (folder or FER2013 CSV) whose train split sets the counts.")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", metavar="DIR", show_default=False,
        help="New (or empty) folder to write the images and manifest.json into.")],
    emotions: Annotated[str | None, typer.Option(
        "--emotions", "-e", metavar="E1,E2",
        help="Emotions to synthesise (default: all the generator makes, except a "
             "translator's source emotion).")] = None,
    balance: Annotated[bool, typer.Option(
        "--balance", help="Fill each chosen emotion up to the largest real train class "
                          "(the default).")] = False,
    multiply: Annotated[float | None, typer.Option(
        "--multiply", metavar="K", min=0.5, max=5.0,
        help="Make K x each chosen emotion's real train count (0.5 to 5).")] = None,
    filter_model: Annotated[Path | None, typer.Option(
        "--filter-model", metavar="CKPT",
        help="Classifier checkpoint for the quality filter.")] = None,
    tau: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Quality filter: minimum probability of the requested emotion.",
    )] = 0.5,
    tau_quantile: Annotated[float | None, typer.Option(
        "--tau-quantile", min=0.0, max=1.0,
        help="Quality filter: one tau per emotion instead of --tau, this quantile of the "
             "filter's probabilities on real validation faces of the emotion.")] = None,
    delta: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Memorisation guard: minimum RMS distance (pixels in [0,1]) to "
                               "the nearest real training face; 0 turns it off.")] = 0.05,
    min_change: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Translators: minimum edit, the 99th percentile of the absolute "
                               "pixel change (pixels in [0,1]) from the source face; 0 keeps "
                               "unchanged faces.")] = 0.05,
    allow_copies: Annotated[bool, typer.Option(
        "--allow-copies", help="Keep a face identical to one already kept for its emotion (a "
                               "translator without a noise or style input repeats itself "
                               "when it runs out of sources); by default they are dropped.",
    )] = False,
    sources: Annotated[str | None, typer.Option(
        "--sources", help="Translators trained between every pair of emotions (stargan): "
                          "translate faces of this emotion, or 'any' (every emotion but the "
                          "one made), instead of the source emotion it was trained with.",
    )] = None,
    seed: Annotated[int, typer.Option(min=0, help="Sampling seed.")] = 0,
    oversample: Annotated[float, typer.Option(
        min=1.0, max=20.0, help="Candidates per missing image in each filtering round.")] = 1.5,
    max_attempts: Annotated[int, typer.Option(
        min=1, max=100, help="Filtering rounds per emotion before giving up.")] = 5,
    batch_size: Annotated[int, typer.Option(min=1, help="Faces per generator call.")] = 256,
    device: Annotated[str, typer.Option(
        help="Device for the generator and filters: auto, cpu or cuda.")] = "auto",
    format: Annotated[str | None, typer.Option(
        "--format", "-f", metavar="NAME",
        help=f"Data set reader instead of auto-detection: {', '.join(FORMAT_NAMES)}.")] = None,
    class_map: ClassMapOpt = None,
    folds: FoldsOpt = None,
    fold: FoldOpt = None,
    data_seed: DataSeedOpt = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the manifest (without the per-file list) as JSON on stdout.",
    )] = False,
) -> None:
    """Build a synthetic training set (help text: :data:`SYNTH_HELP`)."""
    if balance and multiply is not None:
        raise ConfigError("--balance and --multiply exclude each other; choose one")
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"--device: {device!r} is not auto, cpu or cuda")
    from feraug.synth.plan import make_plan

    plan = make_plan(
        emotions=parse_emotions(emotions),
        mode="multiply" if multiply is not None else "balance",
        k=multiply, seed=seed, filter_model=None if filter_model is None else str(filter_model),
        tau=tau, tau_quantile=tau_quantile, delta=delta, min_change=min_change,
        unique=not allow_copies, sources=sources, oversample=oversample,
        max_attempts=max_attempts,
        batch_size=batch_size,
    )
    check_format(format)

    from feraug.gan.base import resolve_device
    from feraug.synth.build import build_synthetic_set
    from feraug.synth.safety import check_out_dir

    device = resolve_device(device)
    check_out_dir(out, data if data.is_dir() else None)  # refuse before any slow loading
    gen = load_generator_checkpoint(generator, device)
    # On the data the generator was trained on, unset split options default to its stored
    # split (as in `feraug gan sample`) and another split of that data set is refused; other
    # data sets start from the defaults (a re-split copy is still refused by the build).
    spec = generator_data_spec(gen.meta, int(gen.image_size), data, format,
                               class_map, folds, fold, data_seed, inherit_elsewhere=False)
    real = spec.load()
    manifest = build_synthetic_set(gen, real, plan, out, generator_checkpoint=generator,
                                   device=device, progress=not os.environ.get("FERAUG_QUIET"),
                                   data_spec=spec.model_dump())
    if as_json:
        shown = {k: v for k, v in manifest.items() if k != "files"}
        shown["out"] = str(out)
        typer.echo(json.dumps(shown, indent=2))
    else:
        render_counts(manifest, out)


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command to the main app."""
    app.command("synth", help=SYNTH_HELP)(synth)
