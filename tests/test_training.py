"""Wiring of classifier training: outputs, evaluation, exact resume, and two-process DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from feraug.classifier.config import build_train_config
from feraug.classifier.evaluate import evaluate_classifier
from feraug.classifier.trainer import fit
from feraug.data.dataset import FaceDataset
from feraug.models.checkpoint import load_classifier, read_checkpoint

CLASSES = ("angry", "happy", "sad")


def tiny_dataset(per_class: int = 8, size: int = 48, seed: int = 0) -> FaceDataset:
    """Learnable toy faces: each class has its own mean brightness pattern."""
    gen = torch.Generator().manual_seed(seed)
    images, labels, split = [], [], []
    for name in ("train", "val", "test"):
        for c in range(len(CLASSES)):
            base = torch.full((per_class, 1, size, size), 60.0 + 60 * c)
            noise = torch.randint(0, 40, (per_class, 1, size, size), generator=gen)
            images.append((base + noise).clamp(0, 255).to(torch.uint8))
            labels += [c] * per_class
            split += [name] * per_class
    n = len(labels)
    return FaceDataset(images=torch.cat(images), labels=torch.tensor(labels), classes=CLASSES,
                       split=split, source_ids=[f"img{i}" for i in range(n)], format="toy",
                       root="toy")


def write_image_folder(ds: FaceDataset, root: Path) -> Path:
    """Write ``root/<split>/<class>/<i>.png`` so the CLI can read the data back."""
    for i in range(len(ds)):
        folder = root / ds.split[i] / ds.classes[int(ds.labels[i])]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i:04d}.png"), ds.images[i, 0].numpy())
    return root


def test_fit_writes_checkpoints_metrics_and_manifest(tmp_path: Path) -> None:
    ds = tiny_dataset()
    cfg = build_train_config({"data": "toy", "out": str(tmp_path / "run"), "epochs": 2,
                              "batch_size": 8, "lr": 3e-3, "device": "cpu"})
    result = fit(cfg, dataset=ds)
    assert result.best_checkpoint.is_file() and result.last_checkpoint.is_file()
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["data_fingerprint"] == ds.fingerprint()
    assert manifest["seed"] == 0 and "git_commit" in manifest and manifest["config"]["epochs"] == 2

    loaded = load_classifier(result.best_checkpoint)
    assert loaded.classes == CLASSES
    metrics = evaluate_classifier(loaded, ds, split="test", out_dir=tmp_path / "eval")
    assert set(metrics["per_class"]) == set(CLASSES)
    assert np.array(metrics["confusion_matrix"]).sum() == len(ds.indices("test"))
    assert (tmp_path / "eval" / "confusion.png").is_file()
    # best is chosen on validation: its recorded val accuracy is the maximum over epochs
    assert read_checkpoint(result.best_checkpoint)["val_metrics"]["val_accuracy"] == max(
        r["val_accuracy"] for r in rows)


def test_tensorboard_events_mirror_the_epoch_log(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = build_train_config({"data": "toy", "out": str(tmp_path / "run"), "epochs": 2,
                              "batch_size": 8, "device": "cpu", "tensorboard": True})
    fit(cfg, dataset=tiny_dataset())
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    logged = [e.value for e in events.Scalars("train/val_accuracy")]
    assert logged == pytest.approx([r["val_accuracy"] for r in rows])
    assert [e.step for e in events.Scalars("train/train_loss")] == [r["step"] for r in rows]


def test_fit_refuses_non_empty_output(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "mine.txt").write_text("user data")
    cfg = build_train_config({"data": "toy", "out": str(tmp_path / "run"), "max_steps": 1})
    from feraug.errors import FeraugError

    with pytest.raises(FeraugError, match="refusing to overwrite"):
        fit(cfg, dataset=tiny_dataset())
    assert (tmp_path / "run" / "mine.txt").read_text() == "user data"


def _cli_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, FERAUG_CACHE=str(tmp_path / "cache"), FERAUG_QUIET="1",
               OMP_NUM_THREADS="1")
    env.pop("FERAUG_TEST_CRASH_AFTER_STEP", None)
    return env


def _train_cmd(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "feraug", "train", "--data", str(data), "--out", str(out),
            "--model", "zhu-cnn", "--epochs", "2", "--batch-size", "8", "--device", "cpu",
            "--checkpoint-every", "3", "--seed", "3"]


def test_killed_run_resumes_to_identical_weights(tmp_path: Path) -> None:
    # 36 training images / batch 8 = 4 steps per epoch, 8 steps in all
    data = write_image_folder(tiny_dataset(per_class=12), tmp_path / "data")
    env = _cli_env(tmp_path)
    subprocess.run(_train_cmd(data, tmp_path / "straight"), env=env, check=True)

    crashed = subprocess.run(_train_cmd(data, tmp_path / "resumed"),
                             env={**env, "FERAUG_TEST_CRASH_AFTER_STEP": "7"})
    assert crashed.returncode == 3  # killed mid-epoch 2 after step 7; last checkpoint: step 6
    assert read_checkpoint(tmp_path / "resumed" / "last.pt")["run_state"]["step"] == 6
    subprocess.run(_train_cmd(data, tmp_path / "resumed") + ["--resume"], env=env, check=True)

    a = read_checkpoint(tmp_path / "straight" / "last.pt")
    b = read_checkpoint(tmp_path / "resumed" / "last.pt")
    assert a["run_state"]["step"] == b["run_state"]["step"] == 8
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()


DDP_SCRIPT = textwrap.dedent("""
    import os, sys, torch
    import torch.distributed as dist
    import feraug.classifier.trainer as trainer
    from feraug.classifier.config import build_train_config
    from feraug.classifier.trainer import fit
    data, out = sys.argv[1], sys.argv[2]
    rank = int(os.environ["RANK"])

    def run(name, resume=False):
        cfg = build_train_config({"data": data, "out": f"{out}/{name}", "epochs": 2,
                                  "batch_size": 4, "device": "cpu", "lr": 0.01,
                                  "checkpoint_every": 3})
        result = fit(cfg, resume=resume)
        torch.save(result.model.state_dict(), f"{out}/{name}.rank{rank}.pt")

    run("straight")
    # 2 steps an epoch: killed on every rank during step 4, after last.pt of step 3
    augment, calls = trainer.augment_batch, []
    def killed_in_step_4(*args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return augment(*args)
    trainer.augment_batch = killed_in_step_4
    try:
        run("split")
    except KeyboardInterrupt:
        pass
    trainer.augment_batch = augment
    run("split", resume=True)
    dist.destroy_process_group()
""")


def test_two_process_ddp_ranks_end_identical_and_resume_exactly(tmp_path: Path) -> None:
    """Two gloo processes end with the same weights; last.pt holds each rank's own random
    streams, so a run killed mid-epoch resumes to exactly the weights of an unbroken one."""
    data = write_image_folder(tiny_dataset(per_class=6), tmp_path / "data")
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", str(script), str(data), str(tmp_path)]
    subprocess.run(cmd, env=_cli_env(tmp_path), check=True, timeout=240)
    r0 = torch.load(tmp_path / "straight.rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "straight.rank1.pt", weights_only=True)
    saved = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    for key in r0:
        assert torch.equal(r0[key], r1[key]), key
        assert torch.equal(r0[key], saved["model"][key]), key
    ranks = saved["rng"]["ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["augment"], ranks[1]["augment"])
    for rank in (0, 1):
        resumed = torch.load(tmp_path / f"split.rank{rank}.pt", weights_only=True)
        for key in r0:
            assert torch.equal(r0[key], resumed[key]), (rank, key)
    assert read_checkpoint(tmp_path / "split" / "last.pt")["run_state"]["step"] == 4
    # weights moved away from initialisation: compare with a fresh model of the same seed
    from feraug.models import build_classifier

    torch.manual_seed(0)
    fresh = build_classifier("zhu-cnn", 3, 48).state_dict()
    assert any(not torch.equal(r0[k], fresh[k]) for k in fresh if k.endswith("weight"))
