"""`feraug gan train|sample|config` on a small slice of the real FER2013 folders."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import yaml

from feraug.gan import load_generator

TINY_CGAN = {"z_dim": 8, "w_dim": 8, "g_channels": [8, 8, 8, 8], "d_channels": [8, 8, 8, 8],
             "batch_size": 7}
TINY_CYCLEGAN = {"ngf": 4, "n_blocks": 1, "ndf": 4, "batch_size": 2}


pytestmark = pytest.mark.usefixtures("one_thread")


def write_config(path: Path, values: dict) -> Path:
    path.write_text(yaml.safe_dump(values))
    return path


def test_train_resume_sample_cgan(fer_slice: Path, tmp_path: Path, run_cli) -> None:
    cfg = write_config(tmp_path / "cgan.yaml", {"model": "cgan", **TINY_CGAN})
    run = tmp_path / "run"
    # the generator named by the config file's `model:` line, no --model needed
    res = run_cli("gan", "train", "--data", fer_slice, "--config", cfg,
                  "--steps", 2, "--out", run, "--sample-every", 1, "--device", "cpu")
    assert res.code == 0, res.stderr
    assert (run / "samples" / "step_0000001.png").is_file()
    grid = cv2.imread(str(run / "samples" / "step_0000002.png"), cv2.IMREAD_GRAYSCALE)
    assert grid.shape[0] == 2 + 7 * 50  # one row per emotion, 48 px tiles + 2 px padding
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["model"] == "cgan" and manifest["data"] == str(fer_slice)
    assert manifest["kind"] == "feraug-gan-run" and "git_commit" in manifest
    assert manifest["data_fingerprint"] and manifest["environment"]["torch"]

    again = run_cli("gan", "train", "--model", "cgan", "--data", fer_slice, "--config", cfg,
                    "--steps", 2, "--out", run, "--device", "cpu")
    assert again.code == 2 and "not empty" in again.stderr

    # on resume the run's own generator, no --model needed
    res = run_cli("gan", "train", "--data", fer_slice, "--out", run,
                  "--resume", "--steps", 3, "--device", "cpu")
    assert res.code == 0, res.stderr
    assert load_generator(run / "checkpoint.pt").step == 3

    out = tmp_path / "faces"
    res = run_cli("gan", "sample", run / "checkpoint.pt", "--emotion", "disgusted", "-n", 5,
                  "--out", out, "--seed", 3, "--device", "cpu")
    assert res.code == 0, res.stderr
    assert sorted(p.name for p in out.glob("disgust_*.png")) == \
        [f"disgust_{i:05d}.png" for i in range(5)]
    assert (out / "grid.png").is_file()
    meta = json.loads((out / "manifest.json").read_text())
    assert meta["emotion"] == "disgust" and meta["n"] == 5 and meta["step"] == 3
    assert len(meta["checkpoint_sha256"]) == 64


def test_cyclegan_train_and_translate(fer_slice: Path, tmp_path: Path, run_cli) -> None:
    cfg = write_config(tmp_path / "cyc.yaml", TINY_CYCLEGAN)
    run = tmp_path / "cyc"
    res = run_cli("gan", "train", "-m", "cyclegan", "-d", fer_slice, "-c", cfg, "--steps", 1,
                  "--source", "neutral", "--target", "happy", "--out", run, "--device", "cpu")
    assert res.code == 0, res.stderr
    res = run_cli("gan", "sample", run / "checkpoint.pt", "-e", "happy", "-n", 3,
                  "--out", tmp_path / "no-data", "--device", "cpu")
    assert res.code == 2 and "--data" in res.stderr
    res = run_cli("gan", "sample", run / "checkpoint.pt", "-e", "sad", "-n", 3,
                  "--out", tmp_path / "wrong", "--data", fer_slice, "--device", "cpu")
    assert res.code == 2 and "cannot make 'sad'" in res.stderr
    res = run_cli("gan", "sample", run / "checkpoint.pt", "-e", "happy", "-n", 3,
                  "--out", tmp_path / "ok", "--data", fer_slice, "--device", "cpu")
    assert res.code == 0, res.stderr
    meta = json.loads((tmp_path / "ok" / "manifest.json").read_text())
    assert len(meta["sources"]) == 3
    assert all(s.startswith("Training/neutral/") for s in meta["sources"])  # train split only


@pytest.mark.parametrize("args, message", [
    (["--model", "pix2pix"], "unknown generator"),
    (["--model", "cgan", "--target", "happy"], "--target applies to cyclegan only"),
    (["--model", "cgan", "--resume"], "nothing to resume"),
    (["--model", "stargan", "--source", "bored"], "unknown emotion label"),
    ([], "no generator named: give --model"),
    (["--model", "stargan", "--resume", "--seed", "3"], "only --steps may change"),
])
def test_train_user_errors_are_one_line(fer_slice: Path, tmp_path: Path, run_cli,
                                        args: list[str], message: str) -> None:
    res = run_cli("gan", "train", "--data", fer_slice, "--out", tmp_path / "x", *args)
    assert res.code == 2 and message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_config_model_must_match_model_option(fer_slice: Path, tmp_path: Path,
                                             run_cli) -> None:
    cfg = write_config(tmp_path / "cgan.yaml", {"model": "cgan", **TINY_CGAN})
    res = run_cli("gan", "train", "-m", "stargan", "-d", fer_slice, "-c", cfg, "--out",
                  tmp_path / "x")
    assert res.code == 2 and "'cgan' does not match --model stargan" in res.stderr
    assert str(cfg) in res.stderr and not (tmp_path / "x").exists()


def test_bad_config_key_and_dry_run(fer_slice: Path, tmp_path: Path, run_cli) -> None:
    bad = write_config(tmp_path / "bad.yaml", {"lr": -1})
    res = run_cli("gan", "train", "-m", "stargan", "-d", fer_slice, "-c", bad, "--out",
                  tmp_path / "x")
    assert res.code == 2 and "lr" in res.stderr and str(bad) in res.stderr
    res = run_cli("gan", "train", "-m", "stargan", "-d", fer_slice, "--steps", 9, "--dry-run",
                  "--out", tmp_path / "y")
    assert res.code == 0 and yaml.safe_load(res.stdout)["steps"] == 9
    assert not (tmp_path / "y").exists()


def test_config_command_prints_defaults(run_cli) -> None:
    res = run_cli("gan", "config", "twostage")
    assert res.code == 0
    values = yaml.safe_load(res.stdout)
    assert values["model"] == "twostage" and "identity" in values and "translator" in values
    assert run_cli("gan", "--help").code == 0


def test_split_options_are_stored_and_another_fold_is_refused(make_ckplus, tmp_path: Path,
                                                              run_cli) -> None:
    """On a data set without splits a generator trained on fold 1 must not feed fold 0's
    classifier (fold 0's test faces were its training faces): sample and synth refuse."""
    data = make_ckplus(subjects=12, per_class=2, side=48)
    cfg = write_config(tmp_path / "cyc.yaml", TINY_CYCLEGAN)
    run = tmp_path / "cyc"
    res = run_cli("gan", "train", "-m", "cyclegan", "-d", data, "-c", cfg, "--steps", 1,
                  "--source", "sad", "--target", "happy", "--out", run, "--device", "cpu",
                  "--folds", 3, "--fold", 1, "--data-seed", 4)
    assert res.code == 0, res.stderr
    generator = load_generator(run / "checkpoint.pt")
    assert generator.meta.data_spec == {
        "path": str(data), "format": None, "size": 48, "class_map": None, "folds": 3, "fold": 1,
        "seed": 4, "train_fraction": 1.0, "subsample_seed": 0}
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["data_spec"]["fold"] == 1

    same = run_cli("gan", "sample", run / "checkpoint.pt", "-e", "happy", "-n", 2, "--out",
                   tmp_path / "same", "--data", data, "--device", "cpu")  # stored split reused
    assert same.code == 0, same.stderr
    other = run_cli("gan", "sample", run / "checkpoint.pt", "-e", "happy", "-n", 2, "--out",
                    tmp_path / "other", "--data", data, "--device", "cpu", "--fold", 0)
    assert other.code == 2 and "different train split" in other.stderr
    assert not (tmp_path / "other").exists()
    synth = run_cli("synth", "--generator", run / "checkpoint.pt", "--data", data,
                    "--out", tmp_path / "syn", "--emotions", "happy", "--multiply", 1,
                    "--device", "cpu", "--folds", 3, "--fold", 0, "--data-seed", 4)
    assert synth.code == 2 and "different train split" in synth.stderr
    reused = run_cli("synth", "--generator", run / "checkpoint.pt", "--data", data,
                     "--out", tmp_path / "syn-ok", "--emotions", "happy", "--multiply", 1,
                     "--device", "cpu")  # no split options: the generator's split is reused
    assert reused.code == 0, reused.stderr
    assert run_cli("gan", "train", "-m", "cyclegan", "-d", data, "--out", tmp_path / "bad",
                   "--folds", 3, "--fold", 3).code == 2


def test_sample_refuses_val_test_and_data_folders(fer_slice: Path, tmp_path: Path,
                                                  run_cli) -> None:
    """Generated faces never land in a validation/test split or inside the data set."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("batch_size: 2\nngf: 4\nn_blocks: 1\nndf: 4\npool_size: 2\n")
    run = tmp_path / "run"
    res = run_cli("gan", "train", "-m", "cyclegan", "-d", fer_slice, "-c", cfg, "--steps", 1,
                  "--out", run, "--device", "cpu")
    assert res.code == 0, res.stderr
    before = sorted(p.name for p in (fer_slice / "PublicTest" / "disgust").iterdir())
    for out in (fer_slice / "PublicTest" / "disgust", fer_slice / "Training" / "extra",
                tmp_path / "elsewhere" / "test"):
        res = run_cli("gan", "sample", run / "checkpoint.pt", "-e", "disgust", "-n", 2,
                      "--data", fer_slice, "--out", out, "--device", "cpu")
        assert res.code != 0 and len(res.stderr.strip().splitlines()) == 1, out
    assert sorted(p.name for p in (fer_slice / "PublicTest" / "disgust").iterdir()) == before
    assert not (fer_slice / "Training" / "extra").exists()
