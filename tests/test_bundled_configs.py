"""Every YAML config the repository ships validates (classifier, generator and experiment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from feraug.classifier.config import build_train_config, read_yaml
from feraug.emotions import FER2013_CLASSES
from feraug.experiment.config import load_experiment_config
from feraug.gan import build_generator

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_top_level_configs_validate(path: Path) -> None:
    values = read_yaml(path)
    if "arms" in values or "extends" in values:  # an experiment (stages validated with it)
        assert load_experiment_config(path).arms
    else:
        config = build_train_config(values, source=str(path))
        assert config.epochs >= 1


@pytest.mark.parametrize("path", sorted((CONFIGS / "gan").glob("*.yaml")), ids=lambda p: p.name)
def test_generator_configs_validate(path: Path) -> None:
    values = read_yaml(path)
    name = values.pop("model")
    values.pop("translator_from", None)  # names a run folder made by an earlier command
    model = build_generator(name, values, FER2013_CLASSES, 48, source=str(path))
    assert model.config.steps > 0
