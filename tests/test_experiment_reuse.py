"""An experiment reuses a finished generator only when it would train the same one again,
down to the bytes of its guide classifier."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from feraug.emotions import FER2013_CLASSES
from feraug.errors import ConfigError
from feraug.experiment.config import parse_experiment_config
from feraug.experiment.data import load_real_data
from feraug.experiment.stages import generator_status, run_generator_stage

pytestmark = pytest.mark.usefixtures("one_thread")


def _reuse_config(out: Path, guide: str) -> dict:
    return {
        "title": "reuse", "out": str(out),
        "data": {"path": "procedural", "n_identities": 6,
                 "n_per_class": {c: 6 for c in FER2013_CLASSES}},
        "generators": [{"name": "g", "model": "stargan", "config": {
            "ngf": 4, "n_blocks": 1, "ndf": 4, "batch_size": 7, "steps": 1,
            "source": "neutral", "guide": guide}}],
        "base": {"model": "zhu-cnn", "epochs": 1, "max_steps": 1, "device": "cpu"},
        "seeds": [0], "arms": [{"name": "real"}]}


def test_generator_stage_restarts_reads_old_records_and_refuses_a_changed_guide(
        ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from feraug.models import build_classifier
    from feraug.models.checkpoint import read_checkpoint, save_checkpoint

    guide = tmp_path / "guide.pt"
    shutil.copy(ckpt, guide)
    cfg = parse_experiment_config(_reuse_config(tmp_path / "exp", str(guide)))
    spec = cfg.generators[0]
    real = load_real_data(cfg.data)
    folder = cfg.generator_dir(spec.name)
    run_generator_stage(cfg, spec, real, log=lambda _: None)
    (folder / "checkpoint.pt").unlink()  # a manifest and a log, no checkpoint
    assert generator_status(cfg, spec) == "partial"
    run_generator_stage(cfg, spec, real, log=lambda _: None)  # starts again from step 0
    assert generator_status(cfg, spec) == "done"

    # a run recorded before an option existed (here guide_confidence) is the same run
    from feraug.gan.base import read_generator_checkpoint
    from feraug.io import atomic_torch_save

    state = read_generator_checkpoint(folder / "checkpoint.pt")
    del state["config"]["guide_confidence"]
    atomic_torch_save(state, folder / "checkpoint.pt")
    assert generator_status(cfg, spec) == "done"
    # the same guide named by a relative path (the runner's config; a job's is absolute)
    monkeypatch.chdir(tmp_path)
    relative = parse_experiment_config(_reuse_config(tmp_path / "exp", "guide.pt"))
    assert generator_status(relative, relative.generators[0]) == "done"

    torch.manual_seed(1)  # the same helper retrained in place: same path, other weights
    state = read_checkpoint(guide)
    state["model"] = build_classifier("zhu-cnn", len(FER2013_CLASSES), 44).state_dict()
    save_checkpoint(guide, state)
    with pytest.raises(ConfigError, match="another guide file"):
        generator_status(cfg, spec)


def test_set_overrides_dotted_keys_with_yaml_values(tmp_path: Path) -> None:
    """`experiment run --set`: the fold sweep and the low-data fractions without copying a
    config; a malformed override is one clear line."""
    from feraug.experiment.config import apply_overrides, load_experiment_config

    values = {"data": {"path": "x", "fold": 0}, "base": {"epochs": 30}}
    got = apply_overrides(values, ["data.fold=3", "base.augment={flip: true}",
                                   "seeds=[0, 1]", "data.train_fraction=0.25"])
    assert got == {"data": {"path": "x", "fold": 3, "train_fraction": 0.25},
                   "base": {"epochs": 30, "augment": {"flip": True}}, "seeds": [0, 1]}
    assert values["data"]["fold"] == 0  # the caller's mapping is left alone
    for bad, message in (("data.fold", "KEY=VALUE"), ("data..fold=1", "KEY=VALUE"),
                         ("data.path.x=1", "data.path is not a mapping"),
                         ("seeds=[0,", "not valid YAML")):
        with pytest.raises(ConfigError, match=message):
            apply_overrides(values, [bad])
    config = Path(__file__).parents[1] / "configs" / "lowdata.yaml"
    cfg = load_experiment_config(config, out=tmp_path / "o",
                                 overrides=["data.train_fraction=0.25", "out=ignored"])
    assert cfg.data.train_fraction == 0.25 and cfg.out == str(tmp_path / "o")


def test_an_ensemble_guided_generator_is_reused_unless_a_member_changed(ckpt: Path,
                                                                        tmp_path: Path) -> None:
    """Every guide file that exists must be one the generator recorded; a deleted member
    (cleaned up after training) does not make the generator another one."""
    from feraug.errors import ConfigError
    from feraug.experiment.stages import _check_same_guide
    from feraug.io import file_sha256
    from feraug.models.checkpoint import read_checkpoint, save_checkpoint

    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    shutil.copy(ckpt, first)
    state = read_checkpoint(ckpt)
    state["step"] = 3
    save_checkpoint(second, state)
    meta = {"guide_sha256s": [file_sha256(first), file_sha256(second)]}
    config = {"guide": [str(first), str(second)]}
    _check_same_guide(tmp_path / "g.pt", meta, config)
    second.unlink()
    _check_same_guide(tmp_path / "g.pt", meta, config)
    state["step"] = 4
    save_checkpoint(second, state)
    with pytest.raises(ConfigError, match="another guide file"):
        _check_same_guide(tmp_path / "g.pt", meta, config)


def test_a_twostage_with_a_copied_translator_is_reused_as_trained(tmp_path: Path) -> None:
    """twostage stores the settings of the translator it copied (translator_from), not the
    config's defaults; a rerun of the experiment must still find it finished."""
    data = {"path": "procedural", "n_identities": 6,
            "n_per_class": {c: 6 for c in FER2013_CLASSES}}
    base = {"model": "zhu-cnn", "epochs": 1, "max_steps": 1, "device": "cpu"}
    star = parse_experiment_config({
        "title": "translator", "out": str(tmp_path / "star"), "data": data, "base": base,
        "generators": [{"name": "s", "model": "stargan", "config": {
            "ngf": 4, "n_blocks": 1, "ndf": 4, "batch_size": 7, "steps": 1}}],
        "seeds": [0], "arms": [{"name": "real"}]})
    real = load_real_data(star.data)
    run_generator_stage(star, star.generators[0], real, log=lambda _: None)
    two = parse_experiment_config({
        "title": "two stages", "out": str(tmp_path / "two"), "data": data, "base": base,
        "generators": [{"name": "t", "model": "twostage", "config": {
            "steps": 1, "batch_size": 3,
            "identity": {"z_dim": 8, "w_dim": 8, "g_channels": [8, 8, 8, 8],
                         "d_channels": [8, 8, 8, 8]},
            "translator_from": str(star.generator_dir("s") / "checkpoint.pt")}}],
        "seeds": [0], "arms": [{"name": "real"}]})
    spec = two.generators[0]
    run_generator_stage(two, spec, real, log=lambda _: None)
    assert generator_status(two, spec) == "done"


def test_a_synthetic_set_is_reused_only_with_the_plan_it_was_built_with(ckpt: Path,
                                                                          tmp_path: Path) -> None:
    import json

    from feraug.experiment.stages import synthetic_status
    from feraug.synth.plan import make_plan

    filt = tmp_path / "filter.pt"
    shutil.copy(ckpt, filt)

    def config(plan: dict):
        return parse_experiment_config({
            "title": "reuse", "out": str(tmp_path / "exp"),
            "data": {"path": "procedural", "n_identities": 6,
                     "n_per_class": {c: 6 for c in FER2013_CLASSES}},
            "generators": [{"name": "g", "model": "stargan", "config": {
                "ngf": 4, "n_blocks": 1, "ndf": 4, "batch_size": 7, "steps": 1}}],
            "synthetic": [{"name": "s", "generator": "g", "plan": plan}],
            "base": {"model": "zhu-cnn", "epochs": 1, "max_steps": 1, "device": "cpu"},
            "seeds": [0], "arms": [{"name": "real"}, {"name": "gan", "synthetic": ["s"]}]})

    plan = {"mode": "balance", "emotions": ["disgust"], "filter_model": str(filt)}
    cfg = config(plan)
    spec = cfg.synthetic[0]
    folder = Path(cfg.synthetic_dir("s"))
    assert synthetic_status(cfg, spec) == "todo"
    folder.mkdir(parents=True)
    built = make_plan(**plan).model_dump(mode="json")
    from feraug.io import file_sha256
    manifest = {"plan": built, "filter": {"sha256": file_sha256(filt)}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert synthetic_status(cfg, spec) == "done"
    def status(plan: dict) -> str:
        other = config(plan)
        return synthetic_status(other, other.synthetic[0])

    with pytest.raises(ConfigError, match=r"another plan \(tau\)"):
        status({**plan, "tau": 0.7})
    # a set built before `unique` existed kept copies: reused where the config allows them
    del manifest["plan"]["unique"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=r"another plan \(unique\)"):
        synthetic_status(cfg, spec)
    assert status({**plan, "unique": False}) == "done"
    # the filter is compared by its bytes: retrained in place, it is another filter
    torch.save({"other": torch.zeros(1)}, filt)
    with pytest.raises(ConfigError, match="filter_model"):
        status({**plan, "unique": False})


def test_a_moved_experiment_reuses_its_generators_and_runs(ckpt: Path, tmp_path: Path) -> None:
    """An experiment folder copied or moved elsewhere (e.g. back from a cluster) still
    names its own files: a generator guided by its helper classifier and a run on its
    synthetic set are reused there; another file in their place is still refused."""
    import json

    from feraug.experiment.runs import check_run_config

    old, new = tmp_path / "cluster" / "exp", tmp_path / "laptop" / "exp"  # same name
    guide = old / "classifiers" / "guide" / "best.pt"
    guide.parent.mkdir(parents=True)
    shutil.copy(ckpt, guide)
    (old / "manifest.json").write_text(json.dumps({"kind": "experiment"}))
    cfg = parse_experiment_config(_reuse_config(old, str(guide)))
    run_generator_stage(cfg, cfg.generators[0], load_real_data(cfg.data), log=lambda _: None)
    run = old / "gan" / "seed0"
    run.mkdir(parents=True)
    recorded = {"out": str(run), "synthetic": [str(old / "synthetic" / "s")],
                "extra_train": [str(tmp_path / "cluster" / "more")], "epochs": 3}
    (run / "manifest.json").write_text(json.dumps({"config": recorded}))
    new.parent.mkdir()
    shutil.move(old, new)

    moved = parse_experiment_config(_reuse_config(new, str(new / "classifiers/guide/best.pt")))
    assert generator_status(moved, moved.generators[0]) == "done"
    wanted = {**recorded, "out": str(new / "gan" / "seed0"),
              "synthetic": [str(new / "synthetic" / "s")]}
    check_run_config(new / "gan" / "seed0", wanted)  # files outside it stay where they were
    # the file at the same place beside the new folder is another file
    (tmp_path / "laptop" / "more").mkdir()
    with pytest.raises(ConfigError, match="extra_train"):
        check_run_config(new / "gan" / "seed0",
                         {**wanted, "extra_train": [str(tmp_path / "laptop" / "more")]})
    with pytest.raises(ConfigError, match="synthetic"):
        check_run_config(new / "gan" / "seed0",
                         {**wanted, "synthetic": [str(new / "synthetic" / "other")]})
    from feraug.models.checkpoint import read_checkpoint, save_checkpoint

    state = read_checkpoint(new / "classifiers/guide/best.pt")
    state["epoch"] = 99  # other bytes in the guide's place
    save_checkpoint(new / "classifiers/guide/best.pt", state)
    with pytest.raises(ConfigError, match="another guide file"):
        generator_status(moved, moved.generators[0])
