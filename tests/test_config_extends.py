"""Experiment configs that build on another (``extends:``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from feraug.errors import ConfigError
from feraug.experiment.config import load_experiment_config
from feraug.experiment.config_files import merged, read_experiment_yaml

PARENT = """\
data: procedural
base: {model: zhu-cnn, epochs: 3, batch_size: 16, augment: {flip: true, rotation: 10}}
seeds: [0, 1, 2]
arms:
  - {name: real}
  - {name: balanced, balanced_sampling: true}
out: runs/parent
"""


def test_mappings_merge_at_every_depth_and_other_values_replace() -> None:
    parent = {"base": {"epochs": 3, "augment": {"flip": True, "rotation": 10}}, "seeds": [0, 1]}
    child = {"base": {"augment": {"rotation": 0}}, "seeds": [5]}
    assert merged(parent, child) == {"base": {"epochs": 3,
                                              "augment": {"flip": True, "rotation": 0}},
                                     "seeds": [5]}
    assert parent["base"]["augment"]["rotation"] == 10  # the parent is left as it was


def test_a_child_config_changes_only_what_it_names(tmp_path: Path) -> None:
    (tmp_path / "parent.yaml").write_text(PARENT)
    sub = tmp_path / "more"
    sub.mkdir()
    (sub / "child.yaml").write_text("extends: ../parent.yaml\n"
                                    "base: {model: vgg-fer-small, augment: {rotation: 0}}\n"
                                    "seeds: [7]\nout: runs/child\n")
    cfg = load_experiment_config(sub / "child.yaml")
    assert [a.name for a in cfg.arms] == ["real", "balanced"]
    assert cfg.seeds == [7] and cfg.out == "runs/child"
    assert cfg.base["model"] == "vgg-fer-small" and cfg.base["epochs"] == 3
    assert cfg.base["augment"] == {"flip": True, "rotation": 0}
    # overrides apply after the chain is resolved
    cfg = load_experiment_config(sub / "child.yaml", overrides=["base.epochs=9"])
    assert cfg.base["epochs"] == 9 and cfg.base["model"] == "vgg-fer-small"


def test_a_missing_parent_or_a_cycle_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml, which is not a file"):
        read_experiment_yaml(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("extends: c.yaml\n")
    (tmp_path / "c.yaml").write_text("extends: b.yaml\n")
    with pytest.raises(ConfigError, match="round in a circle"):
        read_experiment_yaml(tmp_path / "b.yaml")
    (tmp_path / "d.yaml").write_text("extends: [a.yaml, b.yaml]\n")
    with pytest.raises(ConfigError, match="must name one config file"):
        read_experiment_yaml(tmp_path / "d.yaml")


def test_the_vgg_pass_of_zhu2018_differs_from_it_in_the_classifier_recipe_only() -> None:
    configs = Path(__file__).resolve().parents[1] / "configs"
    parent = load_experiment_config(configs / "zhu2018.yaml")
    child = load_experiment_config(configs / "zhu2018_vgg_fer_small.yaml")
    assert child.base["model"] == "vgg-fer-small" and parent.base["model"] == "zhu-cnn"
    for field in ("arms", "generators", "synthetic", "seeds", "data", "baseline"):
        assert getattr(child, field) == getattr(parent, field), field
    assert child.out != parent.out


def test_a_child_may_refine_a_parent_data_path_written_as_a_string(tmp_path: Path) -> None:
    (tmp_path / "parent.yaml").write_text(PARENT.replace("data: procedural",
                                                         "data: some/where"))
    (tmp_path / "child.yaml").write_text("extends: parent.yaml\ndata: {size: 40}\n")
    assert read_experiment_yaml(tmp_path / "child.yaml")["data"] == {"path": "some/where",
                                                                     "size": 40}
