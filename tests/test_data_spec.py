"""``DataSpec``: one description of a data set and its split, built alike by every command,
read back from what older checkpoints stored, and compared field by field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from test_synth import FakeGenerator

from feraug.classifier.config import build_train_config
from feraug.cli import synth_cmd
from feraug.cli.split_options import data_spec_from_options, generator_data_spec
from feraug.data.spec import DataSpec, require_same_split, stored_spec
from feraug.errors import ConfigError
from feraug.gan.meta import GeneratorMeta

OLD_SPLIT = {"class_map": None, "folds": 3, "fold": 1, "seed": 4}


def test_fold_out_of_range_is_one_clear_error() -> None:
    with pytest.raises(ValidationError) as caught:
        DataSpec(path="data", folds=3, fold=3)
    assert caught.value.error_count() == 1
    assert "fold 3 is out of range for 3 folds (use 0..2)" in str(caught.value)
    with pytest.raises(ConfigError, match=r"^--fold: 3 is out of range for --folds 3"):
        data_spec_from_options("data", None, 48, None, 3, 3, None)
    base = DataSpec(path="data", folds=3, fold=2)  # a recorded fold, then fewer folds given
    with pytest.raises(ConfigError, match="--fold: 2 is out of range for --folds 2"):
        data_spec_from_options("data", None, 48, None, 2, None, None, base=base)
    with pytest.raises(ConfigError, match="size"):
        data_spec_from_options("data", None, 8, None, None, None, None)


def test_from_stored_reads_the_old_split_dict_and_old_train_config_meta() -> None:
    old = DataSpec.from_stored(OLD_SPLIT, path="ck", size=64)
    assert (old.path, old.size, old.folds, old.fold, old.seed) == ("ck", 64, 3, 1, 4)
    assert old.train_fraction == 1.0 and old.subsample_seed == 0

    config = build_train_config({"data": "ck", "image_size": 32, "folds": 4, "fold": 2,
                                 "seed": 7, "class_map": {"a": "happy"}}).model_dump()
    from_config = DataSpec.from_stored(config)
    assert (from_config.path, from_config.size, from_config.seed) == ("ck", 32, 7)  # seed
    assert from_config.split_key()["class_map"] == {"a": "happy"}
    assert DataSpec.from_stored({**config, "data_seed": 0}).seed == 0  # data_seed wins
    # an ensemble records only the split keys of its first member's config
    assert DataSpec.from_stored({"data": "ck", "seed": 3, "data_seed": 1,
                                 "ensemble_of": ["a.pt"]}).seed == 1

    spec = DataSpec(path="ck", size=64, folds=3, fold=1, seed=4, train_fraction=0.5)
    assert DataSpec.from_stored(spec.model_dump()) == spec  # what is written now
    assert DataSpec.from_stored({**spec.model_dump(), "n_identities": 9}) == spec


def test_stored_spec_of_generator_and_classifier_meta() -> None:
    assert stored_spec({"data": "ck", "split": OLD_SPLIT}, size=48) == \
        DataSpec(path="ck", size=48, folds=3, fold=1, seed=4)
    spec = DataSpec(path="ck", folds=3, fold=2)
    assert stored_spec({"data": "ck", "data_spec": spec.model_dump()}) == spec
    assert stored_spec({"config": {"data": "ck", "seed": 5}}).seed == 5
    assert stored_spec({"data": "ck"}) is None  # older generators recorded no split


def test_train_config_and_command_line_build_the_same_spec(tmp_path: Path) -> None:
    config = build_train_config({"data": str(tmp_path), "image_size": 64, "folds": 3,
                                 "fold": 2, "class_map": {"Happy": "happy"}, "seed": 9,
                                 "data_seed": 5})
    flags = data_spec_from_options(tmp_path, None, 64, "Happy=happy", 3, 2, 5)
    assert config.data_spec() == flags
    unset = build_train_config({"data": str(tmp_path), "seed": 9})  # split seed = seed
    assert unset.data_spec() == data_spec_from_options(tmp_path, None, 48, None, None, None, 9)


def test_unset_options_come_from_the_recorded_spec() -> None:
    recorded = DataSpec(path="ck", folds=3, fold=1, seed=4, class_map={"a": "happy"})
    spec = data_spec_from_options("other", "ckplus", 64, None, None, None, None, base=recorded)
    assert spec.split_key() == recorded.split_key()
    assert (spec.path, spec.format, spec.size) == ("other", "ckplus", 64)


def test_require_same_split_names_the_differing_fields() -> None:
    a, b = DataSpec(path="ck", fold=1, seed=4), DataSpec(path="ck", fold=0, seed=4, size=64)
    require_same_split(a, a.model_copy(update={"size": 64}), "never")  # size ignored here
    with pytest.raises(ConfigError) as caught:
        require_same_split(a, b, "problem", "advice", include_size=True)
    assert str(caught.value) == "problem (fold: 1 vs 0, size: 48 vs 64); advice"


def test_a_generator_is_refused_another_cut_of_its_own_data(tmp_path: Path) -> None:
    """What `gan sample` and `gan score` do: unset options follow the generator, a
    different one is refused naming the field, another data set is free."""
    data = tmp_path / "ck"
    meta = GeneratorMeta(data=str(data), data_spec=DataSpec(path=str(data), folds=3, fold=1,
                                                            seed=4).model_dump())
    same = generator_data_spec(meta, 48, data, None, None, None, None, None)
    assert (same.folds, same.fold, same.seed) == (3, 1, 4)
    with pytest.raises(ConfigError, match=r"different train split .*\(fold: 1 vs 0\)"):
        generator_data_spec(meta, 48, data, None, None, None, 0, None)
    old_meta = GeneratorMeta.from_stored({"data": str(data), "split": OLD_SPLIT})  # before
    # DataSpec existed, generators stored their split like this
    with pytest.raises(ConfigError, match=r"\(seed: 4 vs 5\)"):
        generator_data_spec(old_meta, 48, data, None, None, None, None, 5)
    elsewhere = generator_data_spec(meta, 48, tmp_path / "copy", None, None, None, 0, None)
    assert (elsewhere.folds, elsewhere.fold) == (3, 0)
    fresh = generator_data_spec(meta, 48, tmp_path / "copy", None, None, None, None, None,
                                inherit_elsewhere=False)
    assert (fresh.folds, fresh.fold, fresh.seed) == (5, 0, 0)


def test_synth_refuses_a_split_other_than_the_generators(tmp_path: Path, run_cli,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    data = tmp_path / "ck"
    data.mkdir()
    generator = FakeGenerator()
    generator.image_size = 48
    generator.meta = GeneratorMeta(data=str(data), data_spec=DataSpec(path=str(data), folds=3,
                                                                      fold=1).model_dump())
    monkeypatch.setattr(synth_cmd, "load_generator_checkpoint",
                        lambda path, device="cpu": generator)
    ckpt = tmp_path / "gen.pt"
    ckpt.write_bytes(b"fake generator")
    res = run_cli("synth", "-g", ckpt, "-d", data, "-o", tmp_path / "syn", "--folds", 3,
                  "--fold", 2, "--device", "cpu")
    assert res.code == 2 and res.stderr.count("\n") == 1
    assert "different train split" in res.stderr and "(fold: 1 vs 2)" in res.stderr
    assert not (tmp_path / "syn").exists()


@pytest.mark.parametrize("command", [["train"], ["evaluate"], ["synth"], ["gan", "train"],
                                     ["gan", "sample"], ["gan", "score"]])
def test_every_command_that_reads_data_takes_the_split_flags(command: list[str],
                                                             run_cli) -> None:
    res = run_cli(*command, "--help")
    assert res.code == 0
    for flag in ("--class-map", "--folds", "--fold", "--data-seed"):
        assert flag in res.stdout, (command, flag)
