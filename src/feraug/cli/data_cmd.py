"""``feraug data``: inspect face data sets (format, splits, class counts, fingerprint).

The data layer (and with it torch) is imported inside the commands, so ``feraug --help``
stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from feraug.errors import ConfigError, DataError

#: Names of the registered readers, for the help text (a test keeps this in step with
#: ``feraug.data.readers.READERS``; importing the registry here would import torch).
FORMAT_NAMES: tuple[str, ...] = ("fer2013-csv", "fer2013-folders", "ckplus", "jaffe", "sfew",
                                 "imagefolder")

SPLIT_ORDER: tuple[str, ...] = ("train", "val", "test", "unassigned")

INFO_HELP = (
    "Show a data set's format, per-split class counts, image size, subjects and fingerprint."
    "\n\n"
    "The data set is loaded exactly as training loads it: train/val/test are completed (val "
    "carved from train, or k-fold for data sets without splits) and decoded images are cached "
    "on disk (see `feraug data cache-dir`)."
)


def parse_class_map(text: str | None) -> dict[str, str] | None:
    """Parse ``--class-map`` text such as ``a=happy,b=sad`` into ``{folder: emotion}``.

    Emotions are checked against the canonical vocabulary (synonyms allowed) and stored in
    canonical form. Raises :class:`ConfigError` on malformed, duplicate or unknown entries.
    """
    if text is None:
        return None
    from feraug.emotions import canonical

    mapping: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, emotion = item.partition("=")
        name, emotion = name.strip(), emotion.strip()
        if not sep or not name or not emotion:
            raise ConfigError(f"--class-map: {item!r} is not FOLDER=EMOTION "
                              "(example: --class-map a=happy,b=sad)")
        if name in mapping:
            raise ConfigError(f"--class-map: folder {name!r} is mapped twice")
        try:
            mapping[name] = canonical(emotion, source="--class-map")
        except DataError as exc:
            raise ConfigError(str(exc)) from None
    if not mapping:
        raise ConfigError("--class-map: no FOLDER=EMOTION pairs given")
    return mapping


def check_numbers(size: int, folds: int, fold: int) -> None:
    """Validate ``--size``, ``--folds`` and ``--fold`` (ConfigError: one clear line)."""
    if not 8 <= size <= 1024:
        raise ConfigError(f"--size: {size} is outside 8-1024 pixels")
    if folds < 2:
        raise ConfigError(f"--folds: need at least 2 folds, got {folds}")
    if not 0 <= fold < folds:
        raise ConfigError(f"--fold: {fold} is out of range for --folds {folds} "
                          f"(use 0..{folds - 1})")


def check_format(name: str | None) -> str | None:
    """Validate a ``--format`` value against the reader registry (None means auto-detect)."""
    if name is None:
        return None
    from feraug.data.readers import READERS

    if name not in READERS:
        raise ConfigError(f"--format: unknown data format {name!r} "
                          f"(known: {', '.join(READERS)})")
    return name


def render_summary(summary: dict) -> None:
    """Print a data set summary (as made by ``FaceDataset.summary()``) with rich."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True)
    side = summary["image_size"]
    subjects = summary["subjects"]
    facts = [
        ("Data set", summary["root"]),
        ("Format", summary["format"]),
        ("Images", f"{summary['num_images']:,} ({summary['synthetic']:,} synthetic)"),
        ("Image size", f"{side[0]}x{side[1]} grayscale"),
        ("Subjects", "unknown" if subjects is None else f"{subjects:,}"),
        ("Fingerprint", summary["fingerprint"]),
    ]
    for key, value in facts:
        console.print(f"[bold]{key + ':':<12}[/bold] {escape(str(value))}")

    splits = [s for s in SPLIT_ORDER if s in summary["splits"]]
    table = Table(title="Images per split and class")
    table.add_column("class")
    for split in splits:
        table.add_column(split, justify="right")
    table.add_column("all", justify="right", style="bold")
    for cls in summary["classes"]:
        counts = [summary["splits"][s][cls] for s in splits]
        table.add_row(cls, *(f"{n:,}" for n in counts), f"{sum(counts):,}")
    totals = [summary["splits"][s]["total"] for s in splits]
    table.add_row("total", *(f"{n:,}" for n in totals), f"{sum(totals):,}", style="bold",
                  end_section=True)
    console.print(table)


def info(
    path: Annotated[Path, typer.Argument(help="Data set folder or FER2013 CSV file.",
                                         metavar="PATH", show_default=False)],
    format: Annotated[str | None, typer.Option(
        "--format", "-f", metavar="NAME",
        help=f"Reader to use instead of auto-detection: {', '.join(FORMAT_NAMES)}.",
    )] = None,
    size: Annotated[int, typer.Option(help="Side length images are resized to (8-1024).")] = 48,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the summary as JSON on stdout (and nothing else).",
    )] = False,
    no_cache: Annotated[bool, typer.Option(
        "--no-cache", help="Decode the images again instead of using (or writing) the cache.",
    )] = False,
    class_map: Annotated[str | None, typer.Option(
        "--class-map", metavar="FOLDER=EMOTION,...",
        help="Map class folder names to emotions (ImageFolder/CK+), e.g. a=happy,b=sad.",
    )] = None,
    folds: Annotated[int, typer.Option(
        help="Number of cross-validation folds for data sets without splits "
                    "(CK+, JAFFE, a flat ImageFolder); subject-disjoint where subjects are known.",
    )] = 5,
    fold: Annotated[int, typer.Option(
        help="Which fold is the test split (the next fold is validation).",
    )] = 0,
    seed: Annotated[int, typer.Option(help="Seed for carved-out validation and folds.")] = 0,
) -> None:
    """Show a data set's format, per-split class counts, image size, subjects, fingerprint
    (help text: :data:`INFO_HELP`)."""
    check_numbers(size, folds, fold)
    mapping = parse_class_map(class_map)
    fmt = check_format(format)
    from feraug.data.load import load_dataset

    ds = load_dataset(path, format=fmt, size=size, class_map=mapping, folds=folds, fold=fold,
                      seed=seed, use_cache=not no_cache)
    summary = ds.summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        render_summary(summary)


def cache_dir_cmd() -> None:
    """Print the folder where decoded data sets are cached ($FERAUG_CACHE or ~/.cache/feraug)."""
    from feraug.data.load import cache_dir

    typer.echo(str(cache_dir()))


def formats() -> None:
    """List the data set formats feraug can read, in auto-detection order."""
    from feraug.data.readers import READERS

    for name, reader in READERS.items():
        first_paragraph = (reader.__doc__ or "").strip().split("\n\n")[0]
        typer.echo(f"{name:<16} {' '.join(first_paragraph.split())}")


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to the main app."""
    data_app = typer.Typer(
        name="data",
        help="Inspect face data sets: formats, splits, class counts and the decode cache.",
        no_args_is_help=True,
    )
    data_app.command("info", help=INFO_HELP)(info)
    data_app.command("cache-dir")(cache_dir_cmd)
    data_app.command("formats")(formats)
    app.add_typer(data_app, name="data")
