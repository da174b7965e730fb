"""Shared by the ``feraug experiment`` tests: a tiny procedural experiment config, a stand-in
synthetic folder, the CLI app."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import typer

from feraug.cli.experiment_cmd import register
from feraug.experiment.config import parse_experiment_config

T_975_DF2 = 4.302652729911275  # Student t quantile, 97.5%, 2 degrees of freedom
COUNTS = {"angry": 10, "disgust": 5, "fear": 10, "happy": 14, "sad": 10, "surprise": 10,
          "neutral": 12}


def tiny_config(out: Path, synthetic: Path | None = None, **base: object) -> dict:
    """A config mapping: 2 seeds, real + class-weighted (+ a synthetic arm), 2 steps each."""
    arms: list[dict] = [{"name": "real"}, {"name": "class-weighted", "class_weighted_loss": True}]
    if synthetic is not None:
        arms.append({"name": "syn", "synthetic": [str(synthetic)]})
    return {"title": "tiny experiment",
            "data": {"path": "procedural", "n_per_class": COUNTS, "n_identities": 10},
            "base": {"model": "zhu-cnn", "epochs": 1, "max_steps": 2, "batch_size": 16,
                     "device": "cpu", **base},
            "seeds": [0, 1], "arms": arms, "out": str(out), "tsne_points": 120}


def write_synthetic_set(cfg_values: dict, folder: Path) -> int:
    """A stand-in for a `feraug synth` folder: mirrored real *train* disgust faces plus a
    manifest whose split fingerprint matches the experiment's data. Returns the image count."""
    from feraug.data.synthetic import FORMAT, split_fingerprint
    from feraug.experiment.data import load_real_data

    real = load_real_data(parse_experiment_config(cfg_values).data)
    train = real.indices("train")
    d = real.classes.index("disgust")
    picks = train[real.labels[train] == d][:6]
    (folder / "disgust").mkdir(parents=True)
    for i, idx in enumerate(picks.tolist()):
        cv2.imwrite(str(folder / "disgust" / f"disgust_0_{i}.png"),
                    real.images[idx, 0].flip(-1).numpy())
    (folder / "manifest.json").write_text(json.dumps(
        {"format": FORMAT, "real": {"split_fingerprint": split_fingerprint(real)}}))
    return len(picks)


def cli_app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _main() -> None:
        """feraug (test app)."""

    return app
