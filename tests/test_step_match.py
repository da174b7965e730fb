"""Training length matched between arms: an arm with ``match_steps`` trains as many optimiser
steps as the arm it names, whose synthetic faces enlarge its epoch; the report warns when a
GAN arm trained clearly longer than the arm it is compared with."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from experiment_helpers import tiny_config, write_synthetic_set

from feraug.errors import ConfigError
from feraug.experiment.config import parse_experiment_config
from feraug.experiment.step_match import matched_epochs, synthetic_images
from feraug.experiment.tables import training_length_note


def _stand_in_set(values: dict, folder: Path, extra: int) -> int:
    """A synthetic set: the helper's mirrored disgust faces plus ``extra`` more files."""
    n = write_synthetic_set(values, folder)
    rng = np.random.default_rng(0)
    for i in range(extra):
        cv2.imwrite(str(folder / "disgust" / f"extra_{i}.png"),
                    rng.integers(0, 256, (48, 48), dtype=np.uint8))
    return n + extra


def _values(tmp_path: Path, **base: object) -> dict:
    values = tiny_config(tmp_path / "exp", synthetic=tmp_path / "syn", scheduler="cosine",
                         **base)
    values["base"].pop("max_steps")
    values["arms"] = [{"name": "real"}, {"name": "syn", "synthetic": [str(tmp_path / "syn")]},
                      {"name": "real-matched", "match_steps": "syn"}]
    return values


def test_epochs_come_from_the_two_train_set_sizes(tmp_path: Path) -> None:
    values = _values(tmp_path, epochs=3, batch_size=16)
    cfg = parse_experiment_config(values)
    with pytest.raises(ConfigError, match="synthetic sets of arm 'syn'"):
        matched_epochs(cfg, "real-matched", 64)  # the set is not made yet
    n_syn = _stand_in_set(values, tmp_path / "syn", extra=34)
    assert synthetic_images(tmp_path / "syn") == n_syn >= 34
    # syn: (64 + n_syn) // 16 steps per epoch x 3 epochs; real: 64 // 16 = 4 per epoch
    assert matched_epochs(cfg, "real-matched", 64) == round((64 + n_syn) // 16 * 3 / 4) > 3
    assert matched_epochs(cfg, "real", 64) is None
    assert cfg.train_config("real-matched", 0, tmp_path / "x", epochs=5).epochs == 5


@pytest.mark.parametrize("arm, message", [
    ({"name": "m", "match_steps": "nope"}, "must name another arm"),
    ({"name": "m", "match_steps": "m"}, "must name another arm"),
    ({"name": "m", "match_steps": "real", "epochs": 4}, "either epochs or match_steps"),
    ({"name": "m", "match_steps": "real", "scheduler": "plateau"}, "cosine or none"),
    ({"name": "m", "match_steps": "real", "extra_train": ["x"]}, "extra_train"),
])
def test_a_bad_match_is_refused(tmp_path: Path, arm: dict, message: str) -> None:
    values = tiny_config(tmp_path / "exp", scheduler="cosine")
    values["arms"] = [{"name": "real"}, arm]
    with pytest.raises(ConfigError, match=message):
        parse_experiment_config(values)


def test_the_matched_arm_trains_as_many_steps_as_the_gan_arm(tmp_path: Path) -> None:
    from feraug.experiment.runner import run_experiment

    values = _values(tmp_path, epochs=2, batch_size=8)
    values["seeds"] = [0]
    _stand_in_set(values, tmp_path / "syn", extra=60)
    summary = run_experiment(parse_experiment_config(values))
    assert summary["runs_done"] == 3
    runs = {r["arm"]: r for r in json.loads(
        (tmp_path / "exp" / "results.json").read_text())["runs"]}
    real_per_epoch = runs["real"]["steps"] // 2
    assert runs["syn"]["steps"] > runs["real"]["steps"] + real_per_epoch  # a longer epoch
    assert abs(runs["real-matched"]["steps"] - runs["syn"]["steps"]) <= real_per_epoch // 2
    stored = json.loads((tmp_path / "exp" / "real-matched" / "seed0" / "manifest.json")
                        .read_text())["config"]
    assert stored["epochs"] == runs["real-matched"]["steps"] // real_per_epoch
    # a rerun recomputes the same epochs: the finished run is accepted, not refused
    assert run_experiment(parse_experiment_config(values))["runs_done"] == 3


def test_the_report_warns_when_a_gan_arm_trained_longer() -> None:
    def results(gan_steps: float) -> dict:
        return {"arms": {"real": {"steps": 4480.0},
                         "gan": {"steps": gan_steps, "delta_vs_best_non_gan": {}}}}

    note = training_length_note(results(7520.0), "real")
    assert "gan took 1.68x the optimiser steps of real (7,520 against 4,480)" in note
    assert "`match_steps: gan`" in note
    assert training_length_note(results(4600.0), "real") == ""  # within 10%: no warning
    present = {**results(7520.0), "step_matches": {"real-matched": "gan"}}
    assert "real-matched in this experiment is that control" in training_length_note(
        present, "real")
