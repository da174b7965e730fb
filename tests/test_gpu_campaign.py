"""The prepared GPU campaign runs its whole path on the CPU (``--smoke``), brings back loadable
checkpoints, and skips finished phases when run again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_campaign_brings_back_loadable_results(tmp_path: Path) -> None:
    from feraug.gan import load_generator
    from feraug.models.checkpoint import load_classifier

    env = dict(os.environ, OMP_NUM_THREADS="1", FERAUG_QUIET="1",
               FERAUG_CACHE=str(tmp_path / "cache"))
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_campaign.py"), "--smoke", "--out",
           str(tmp_path / "out")]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert first.returncode == 0, first.stderr[-2000:]
    report = json.loads(first.stdout)
    phases = report["phases"]
    assert phases["classifier"]["result"]["status"] == "done"
    assert all(g["status"] == "done" and g["steps"] == 3
               for g in phases["generators"]["result"].values())
    assert set(phases["throughput"]["result"].values()) == {"done"}
    out = tmp_path / "out"
    assert load_classifier(out / "classifier-half.pt").classes
    for name in ("fastgan", "stargan"):
        assert load_generator(out / f"{name}-sampling-half.pt").step == 3
    assert json.loads((out / "gan_throughput.json").read_text())["generators"]
    assert json.loads((out / "campaign.json").read_text())["git_commit"]

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0
    assert json.loads(again.stdout)["phases"] == phases  # nothing re-run


def test_guides_that_did_not_travel_come_from_the_carried_folder(tmp_path: Path) -> None:
    import importlib.util

    import yaml

    spec = importlib.util.spec_from_file_location("gpu_campaign",
                                                  ROOT / "benchmarks" / "gpu_campaign.py")
    campaign = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(campaign)
    config = tmp_path / "gan.yaml"
    config.write_text("model: stargan\nguide: [runs/not-here.pt, runs/carried.pt, bundled]\n")
    carried = tmp_path / "carry"
    carried.mkdir()
    (carried / "carried.pt").write_bytes(b"x")
    used, dropped = campaign.carried_config(config, carried, tmp_path / "out.yaml")
    assert used == tmp_path / "out.yaml" and dropped == ["runs/not-here.pt"]
    assert yaml.safe_load(used.read_text())["guide"] == [str((carried / "carried.pt").resolve()),
                                                          "bundled"]
    config.write_text("model: stargan\nguide: runs/not-here.pt\n")
    used, dropped = campaign.carried_config(config, carried, tmp_path / "out.yaml")
    assert yaml.safe_load(used.read_text())["guide"] == "bundled"
    config.write_text("model: stargan\nguide: bundled\n")
    assert campaign.carried_config(config, carried, tmp_path / "x.yaml") == (config, [])
    # the chosen recipe's guides: the bundled model, and one file that lives under runs/
    chosen = yaml.safe_load((ROOT / campaign.GENERATOR_CONFIGS["stargan"]).read_text())
    assert "bundled" in chosen["guide"]
