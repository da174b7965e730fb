"""``feraug train`` and ``feraug evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from feraug.cli.split_options import (
    ClassMapOpt,
    DataSeedOpt,
    FoldOpt,
    FoldsOpt,
    data_spec_from_options,
)
from feraug.errors import ConfigError


def train(
    data: str = typer.Option(None, help="Data set path (FER2013 CSV or folders, CK+, JAFFE, "
                                        "ImageFolder)."),
    config: Path = typer.Option(None, "--config", "-c", help="YAML config file (flags win)."),
    model: str = typer.Option(None, help="Classifier: zhu-cnn, zhu-cnn-wide, vgg-fer, "
                                         "vgg-fer-small, resnet18, vgg16."),
    out: str = typer.Option(None, help="Output folder (must be new or empty, or --resume)."),
    format: str = typer.Option(None, "--format", help="Force a data format instead of "
                                                      "auto-detection."),
    epochs: int = typer.Option(None, help="Number of epochs."),
    max_steps: int = typer.Option(None, help="Stop after this many optimiser steps."),
    batch_size: int = typer.Option(None, help="Batch size per process."),
    lr: float = typer.Option(None, help="Learning rate."),
    seed: int = typer.Option(None, help="Random seed."),
    data_seed: DataSeedOpt = None,
    class_map: ClassMapOpt = None,
    folds: FoldsOpt = None,
    fold: FoldOpt = None,
    device: str = typer.Option(None, help="auto, cpu or cuda."),
    init: str = typer.Option(None, help="feraug checkpoint to fine-tune from."),
    freeze_backbone: bool = typer.Option(None, "--freeze-backbone/--no-freeze-backbone",
                                         help="Train only the final layer (with --init)."),
    pretrained_weights: str = typer.Option(None, help="Local torchvision ImageNet weights "
                                                      "file (resnet18 or vgg16; never "
                                                      "downloaded)."),
    class_weighted_loss: bool = typer.Option(None, "--class-weighted-loss/--no-class-weighted-"
                                             "loss", help="Inverse-frequency class weights."),
    balanced_sampling: bool = typer.Option(None, "--balanced-sampling/--no-balanced-sampling",
                                           help="Class-balanced batch sampling."),
    logit_adjust_tau: float = typer.Option(None, help="Logit-adjusted loss (Menon et al. "
                                                      "2021): 1 as in the paper, 0 off."),
    select_metric: str = typer.Option(None, help="Validation metric that picks the best "
                                                 "epoch: accuracy (default) or macro_f1."),
    synthetic: list[str] = typer.Option(None, help="Synthetic folder from `feraug synth` "
                                                   "(train split only; repeatable)."),
    extra_train: list[str] = typer.Option(None, help="Another data set whose train split "
                                                     "joins training (repeatable); its val "
                                                     "and test faces are never used."),
    teacher: str = typer.Option(None, help="Checkpoint to distil from (e.g. a `feraug "
                                           "ensemble` of seeds; same classes and crop)."),
    checkpoint_every: int = typer.Option(None, help="Also checkpoint every N steps."),
    tensorboard: bool = typer.Option(None, "--tensorboard/--no-tensorboard",
                                     help="Also write TensorBoard events to OUT/tensorboard."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out exactly."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate the config and exit."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train a FER classifier; the best epoch is chosen on the validation split."""
    from feraug.classifier.config import build_train_config, read_yaml
    from feraug.classifier.trainer import fit
    from feraug.cli.data_cmd import parse_class_map

    file_values = read_yaml(config) if config else {}
    overrides = dict(data=data, model=model, out=out, format=format, epochs=epochs,
                     max_steps=max_steps, batch_size=batch_size, lr=lr, seed=seed,
                     data_seed=data_seed, class_map=parse_class_map(class_map),
                     folds=folds, fold=fold,
                     device=device, init=init, freeze_backbone=freeze_backbone,
                     pretrained_weights=pretrained_weights,
                     class_weighted_loss=class_weighted_loss,
                     balanced_sampling=balanced_sampling, select_metric=select_metric,
                     logit_adjust_tau=logit_adjust_tau,
                     synthetic=synthetic or None, extra_train=extra_train or None,
                     teacher=teacher, checkpoint_every=checkpoint_every, tensorboard=tensorboard)
    if "data" not in file_values and data is None:
        raise ConfigError("no data: pass --data PATH or set `data:` in the config file")
    cfg = build_train_config(file_values, overrides, source=str(config or "flags"))
    if dry_run:
        typer.echo(json.dumps(cfg.model_dump(), indent=2))
        return
    result = fit(cfg, resume=resume)
    summary = {"out_dir": str(result.out_dir), "best_checkpoint": str(result.best_checkpoint),
               "best_val": result.best_val}
    typer.echo(json.dumps(summary, indent=2) if as_json else
               f"best val accuracy {result.best_val.get('val_accuracy', float('nan')):.4f} "
               f"-> {result.best_checkpoint}")


def evaluate(
    checkpoint: Path = typer.Argument(..., help="Checkpoint written by `feraug train`."),
    data: str = typer.Argument(..., help="Data set to evaluate on."),
    split: str = typer.Option("test", help="Split to score: test (report) or val (select)."),
    out: Path = typer.Option(None, help="Folder for metrics.json, confusion.png and the "
                             "per-image predictions (predictions.npz)."),
    format: str = typer.Option(None, "--format", help="Force a data format."),
    tta: str = typer.Option(None, help="none, flip or tencrop (default: the model's)."),
    class_map: ClassMapOpt = None,
    folds: FoldsOpt = None,
    fold: FoldOpt = None,
    data_seed: DataSeedOpt = None,
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON."),
) -> None:
    """Score a checkpoint on one split: accuracy, macro-F1, per-class metrics, confusion.

    On the data set it was trained on, the split options default to the checkpoint's and
    another split is refused (its test faces would include training faces); on another
    data set they default to 5 folds, fold 0, seed 0."""
    from feraug.classifier.evaluate import evaluate_classifier
    from feraug.classifier.infer import check_tta
    from feraug.classifier.setup import checkpoint_data_spec
    from feraug.data.spec import require_same_split
    from feraug.devices import choose_device
    from feraug.io import prepare_output_dir, refuse_output_inside
    from feraug.models.checkpoint import load_classifier

    if tta is not None:
        check_tta(tta)  # before the slow loading
    loaded = load_classifier(checkpoint, choose_device(device))
    recorded = checkpoint_data_spec(loaded.meta, data)
    spec = data_spec_from_options(data, format, loaded.image_size, class_map, folds, fold,
                                  data_seed, base=recorded)
    if recorded is not None:
        require_same_split(recorded, spec, f"{checkpoint} was trained on a different split "
                           f"of {data}", "its test split would hold training faces; drop "
                           "the split options or give the ones it was trained with")
    ds = spec.load()
    if out is not None:
        refuse_output_inside(out, data, "the data set")
        prepare_output_dir(out)
    metrics = evaluate_classifier(loaded, ds, split=split, out_dir=out, tta=tta)
    if out is not None:
        from feraug.manifest import write_manifest

        write_manifest(out, "evaluate", {"checkpoint": str(checkpoint), "data": data,
                                         "split": split, "tta": tta}, 0, ds.fingerprint())
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
        return
    ci = metrics.get("ci95", {})
    span = {k: f" [{ci[k][0]:.4f}, {ci[k][1]:.4f}]" if k in ci else "" for k in
            ("accuracy", "macro_f1")}
    typer.echo(f"{split}: accuracy {metrics['accuracy']:.4f}{span['accuracy']}  "
               f"macro-F1 {metrics['macro_f1']:.4f}{span['macro_f1']}"
               + (f"  (95% bootstrap intervals over {_unit(ci)})" if ci else ""))
    for name, m in metrics["per_class"].items():
        typer.echo(f"  {name:9s} recall {m['recall']:.3f}  precision {m['precision']:.3f}  "
                   f"f1 {m['f1']:.3f}  n={m['support']}")


def adjust(
    checkpoint: Path = typer.Argument(..., help="Checkpoint written by `feraug train`."),
    data: str = typer.Argument(..., help="The data set it was trained on (train split gives "
                                         "the class prior, val split chooses tau)."),
    out: Path = typer.Option(..., "--out", "-o", help="New checkpoint file to write."),
    metric: str = typer.Option("macro_f1", help="Validation metric to maximise: macro_f1 or "
                                                "accuracy."),
    taus: str = typer.Option(None, "--taus", help="Comma-separated tau grid (default "
                             "0,0.25,...,2; negative values undo part of a logit-adjusted "
                             "loss)."),
    half: bool = typer.Option(False, "--half", help="Store the weights as float16 (half the "
                              "file, e.g. to ship a model; score the written file)."),
    tta: str = typer.Option(None, "--tta", help="none, flip or tencrop: the test-time "
                            "augmentation to choose tau with and to store in the new "
                            "checkpoint (default: the model's)."),
    format: str = typer.Option(None, "--format", help="Force a data format."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Post-hoc logit adjustment for class imbalance (Menon et al. 2021): subtract
    tau * log(train prior) from the logits, tau chosen on the validation split, and write an
    ordinary checkpoint with the shift folded into the final layer's bias."""
    from feraug.classifier.infer import check_tta
    from feraug.classifier.logit_adjust import DEFAULT_TAUS, adjust_logits, parse_taus
    from feraug.classifier.setup import checkpoint_data_spec
    from feraug.models.checkpoint import load_classifier

    grid = parse_taus(taus) if taus else DEFAULT_TAUS
    if tta is not None:
        check_tta(tta)  # before the slow loading
    loaded = load_classifier(checkpoint, "cpu")
    ds = data_spec_from_options(data, format, loaded.image_size,
                                base=checkpoint_data_spec(loaded.meta, data)).load()
    result = adjust_logits(loaded, ds, out, taus=grid, metric=metric, source=str(checkpoint),
                           half=half, tta=tta)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    for tau, s in result["val"].items():
        mark = "  <- chosen" if tau == result["tau"] else ""
        typer.echo(f"tau {tau:5.2f}: val accuracy {s['accuracy']:.4f}  "
                   f"macro-F1 {s['macro_f1']:.4f}{mark}")
    typer.echo(f"wrote {out}")


def ensemble(
    checkpoints: list[Path] = typer.Argument(..., help="Two or more checkpoints written by "
                                                       "`feraug train` (e.g. several seeds)."),
    out: Path = typer.Option(..., "--out", "-o", help="New checkpoint file to write."),
    half: bool = typer.Option(False, "--half", help="Store the weights as float16 (half the "
                              "file; score the written file)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Average independently trained classifiers (mean log-probabilities) into one
    checkpoint that evaluate, adjust, predict and export use like any other."""
    from feraug.classifier.ensemble import assemble_ensemble

    result = assemble_ensemble(checkpoints, out, half=half)
    typer.echo(json.dumps(result, indent=2) if as_json else
               f"wrote {out}: {len(result['members'])} members, "
               f"{result['parameters']:,} parameters")


def compare(
    checkpoint_a: Path = typer.Argument(..., help="Model A (a feraug checkpoint)."),
    checkpoint_b: Path = typer.Argument(..., help="Model B, e.g. the baseline."),
    data: str = typer.Argument(..., help="Data set to compare on."),
    split: str = typer.Option("test", help="Split: test (report) or val (select)."),
    format: str = typer.Option(None, "--format", help="Force a data format."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Is A better than B on this split? Paired bootstrap over the same images: A - B in
    accuracy and macro-F1 with a 95% interval."""
    from feraug.classifier.evaluate import compare_classifiers
    from feraug.classifier.setup import checkpoint_data_spec
    from feraug.data.spec import require_same_split
    from feraug.models.checkpoint import load_classifier

    a, b = load_classifier(checkpoint_a, "cpu"), load_classifier(checkpoint_b, "cpu")
    if a.image_size != b.image_size:
        raise ConfigError(f"{checkpoint_a} takes {a.image_size} px, {checkpoint_b} takes "
                          f"{b.image_size} px; compare models of one input size")
    spec_a, spec_b = checkpoint_data_spec(a.meta, data), checkpoint_data_spec(b.meta, data)
    if spec_a is not None and spec_b is not None:
        require_same_split(spec_a, spec_b, f"{checkpoint_a} and {checkpoint_b} were trained on "
                           f"different splits of {data}", "each model's test split holds the "
                           "other's training faces, so no fair comparison exists")
    ds = data_spec_from_options(data, format, a.image_size, base=spec_a or spec_b).load()
    result = compare_classifiers(a, b, ds, split)
    result.update(a=str(checkpoint_a), b=str(checkpoint_b))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(f"{split} ({result['num_images']} images): A = {checkpoint_a}, B = {checkpoint_b}")
    for name in ("accuracy", "macro_f1"):
        r = result[name]
        typer.echo(f"  {name:9s} A {r['a']:.4f}  B {r['b']:.4f}  A-B {r['difference']:+.4f} "
                   f"[{r['ci'][0]:+.4f}, {r['ci'][1]:+.4f}]  "
                   f"B >= A in {r['p_b_at_least_a']:.1%} of resamples")


def _unit(ci: dict) -> str:
    return "whole subjects" if ci.get("unit") == "group" else "the images"


def register(app: typer.Typer) -> None:
    """Add the train, evaluate, compare, adjust and ensemble commands."""
    app.command()(train)
    app.command()(evaluate)
    app.command()(compare)
    app.command()(adjust)
    app.command()(ensemble)
