"""One prepared GPU run: the classifier recipe, the generators at full scale and the throughput
benchmarks, within a fixed wall-clock budget, bringing back only what fits a small return
limit (half-precision checkpoints, JSON, grids).

    python benchmarks/gpu_campaign.py --data .carry/fer2013 --out "$OUT" --budget 540
    python benchmarks/gpu_campaign.py --smoke --out /tmp/campaign-smoke   # CPU, about a minute

Phases, each with a share of the budget and run as feraug commands in subprocesses:

1. ``classifier``: vgg-fer with its recipe (configs/fer2013_vgg_fer.yaml) on FER2013 Training,
   selected on PublicTest. Give it a copy of the data without PrivateTest, so the test split
   never travels. Cut off at its share; the best epoch so far stands. Brought back as a
   float16 checkpoint ``classifier-half.pt`` (``feraug adjust --taus=0 --half``) to score
   on PrivateTest elsewhere.
2. ``generators``: fastgan and the StarGAN recipe chosen on the CPU (neutral -> every
   emotion; configs/gan/stargan_smooth_cond_r1_bundled_fer2013.yaml), each trained until
   its share runs out and brought back as a sampling-only float16 checkpoint plus its last
   sample grid; score them elsewhere with ``feraug gan score`` and an independent judge.
   A guide file the config names but the machine lacks (``runs/`` does not travel) is taken
   from ``--guides`` (a carried folder) under the same file name; one found nowhere is
   dropped, and ``campaign.json`` says so.
3. ``throughput``: ``train_throughput.py`` and ``gan_throughput.py`` on the device.

Resumable: finished phases are recorded in ``WORK/campaign.json`` and skipped when the command
is run again; a phase that was cut off continues its runs with ``--resume``. Everything the
run needs to report (device name, versions, commit, per-phase status and seconds) is written
to ``OUT/campaign.json``. Prints that JSON at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARES = {"classifier": 0.45, "generators": 0.4, "throughput": 0.15}
GENERATOR_CONFIGS = {"fastgan": "configs/gan/fastgan_guided_fer2013.yaml",
                     "stargan": "configs/gan/stargan_smooth_cond_r1_bundled_fer2013.yaml"}
SMOKE_CONFIGS = {"fastgan": {"model": "fastgan", "batch_size": 8, "z_dim": 8,
                             "g_channels": [8, 8, 8, 8], "d_channels": [8, 8, 8, 8]},
                 "stargan": {"model": "stargan", "batch_size": 7, "ngf": 4, "n_blocks": 1,
                             "ndf": 4, "edit": "warp"}}


def feraug(*args: str) -> list[str]:
    return [sys.executable, "-m", "feraug", *args]


def run(cmd: list[str], seconds: float, log: Path) -> str:
    """Run ``cmd`` for at most ``seconds``: ``done``, ``cut off`` or ``failed (rc N)``."""
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        try:
            rc = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                                timeout=max(seconds, 1)).returncode
        except subprocess.TimeoutExpired:
            return "cut off"
    return "done" if rc == 0 else f"failed (rc {rc})"


def classifier(a: argparse.Namespace, seconds: float) -> dict:
    run_dir = a.work / "vgg-fer"
    resume = ["--resume"] if (run_dir / "last.pt").is_file() else []
    cmd = feraug("train", "-c", "configs/fer2013_vgg_fer.yaml", "--data", str(a.data),
                 "--device", a.device, "--out", str(run_dir), "--checkpoint-every", "200",
                 *resume)
    if a.smoke:
        cmd = feraug("train", "--data", str(a.data), "--model", "zhu-cnn", "--epochs", "1",
                     "--max-steps", "3", "--batch-size", "16", "--device", a.device,
                     "--out", str(run_dir), *resume)
    status = run(cmd, seconds, a.work / "classifier.log")
    best = run_dir / "best.pt"
    if best.is_file():
        target = a.out / "classifier-half.pt"
        target.unlink(missing_ok=True)
        run(feraug("adjust", str(best), str(a.data), "--taus=0", "--half", "--out",
                   str(target)), 300, a.work / "classifier.log")
    epochs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()] \
        if (run_dir / "metrics.jsonl").is_file() else []
    return {"status": status, "epochs": len(epochs),
            "best_val_accuracy": max((e["val_accuracy"] for e in epochs), default=None)}


def carried_config(config: Path, guides: Path, target: Path) -> tuple[Path, list[str]]:
    """``config`` with every guide path that does not exist here replaced by the file of the
    same name in ``guides``, or dropped when that is missing too (``bundled`` when no guide
    is left). Returns the config to train with and the guides dropped."""
    values = yaml.safe_load(config.read_text())
    named = values.get("guide")
    if named is None:
        return config, []
    named = [named] if isinstance(named, str) else list(named)
    kept, dropped = [], []
    for guide in named:
        if guide == "bundled" or (ROOT / guide).is_file():
            kept.append(guide)
        elif (guides / Path(guide).name).is_file():
            kept.append(str((guides / Path(guide).name).resolve()))
        else:
            dropped.append(guide)
    if not dropped and kept == named:
        return config, []
    values["guide"] = kept or "bundled"
    target.write_text(json.dumps(values))  # JSON is YAML
    return target, dropped


def generator_command(a: argparse.Namespace, name: str, run_dir: Path) -> list[str]:
    """``feraug gan train`` for one generator (``--resume`` when its run has a checkpoint)."""
    cmd = ["gan", "train", "-m", name, "-d", str(a.data), "-o", str(run_dir), "--device",
           a.device, "--checkpoint-every", "200", "--sample-every", "500",
           "--steps", "3" if a.smoke else "200000"]
    if (run_dir / "checkpoint.pt").is_file():  # a resumed run keeps its own config
        return feraug(*cmd, "--resume")
    config = Path(GENERATOR_CONFIGS[name])
    if a.smoke:
        config = a.work / f"smoke-{name}.yaml"
        config.write_text(json.dumps(SMOKE_CONFIGS[name]))  # JSON is YAML
    config, a.dropped_guides[name] = carried_config(config, a.guides,
                                                    a.work / f"carried-{name}.yaml")
    return feraug(*cmd, "-c", str(config))


def generators(a: argparse.Namespace, seconds: float) -> dict:
    from feraug.gan.base import save_for_sampling

    out = {}
    for name in GENERATOR_CONFIGS:
        run_dir = a.work / name
        status = run(generator_command(a, name, run_dir), seconds / len(GENERATOR_CONFIGS),
                     a.work / "generators.log")
        ckpt = run_dir / "checkpoint.pt"
        row: dict = {"status": status, "dropped_guides": a.dropped_guides.get(name, [])}
        if ckpt.is_file():
            save_for_sampling(ckpt, a.out / f"{name}-sampling-half.pt")
            state = torch.load(ckpt, map_location="cpu", weights_only=True)
            row["steps"] = int(state["model"]["step"])
            grids = sorted((run_dir / "samples").glob("step_*.png"))
            if grids:
                shutil.copy2(grids[-1], a.out / f"{name}-{grids[-1].name}")
        out[name] = row
    return out


def throughput(a: argparse.Namespace, seconds: float) -> dict:
    steps = ["--steps", "2"] if a.smoke else []
    jobs = {
        "train_throughput": [sys.executable, "benchmarks/train_throughput.py", "--data",
                             str(a.data / "Training"), "--device", a.device,
                             *(["--steps", "2", "--rounds", "1", "--batch", "16",
                                "--skip-compile"] if a.smoke else ["--batch", "256"])],
        "gan_throughput": [sys.executable, "benchmarks/gan_throughput.py", "--device",
                           a.device, *steps, *(["--batch-size", "4", "--warmup", "1",
                                                "--models", "fastgan"] if a.smoke else [])],
    }
    out = {}
    for name, cmd in jobs.items():
        target = a.out / f"{name}.json"
        with target.open("w") as fh:
            try:
                rc = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.DEVNULL,
                                    timeout=seconds / len(jobs)).returncode
                out[name] = "done" if rc == 0 else f"failed (rc {rc})"
            except subprocess.TimeoutExpired:
                out[name] = "cut off"
    return out


PHASES = {"classifier": classifier, "generators": generators, "throughput": throughput}


def device_facts(device: str) -> dict:
    facts = {"torch": torch.__version__, "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
    try:
        facts["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT,
                                             capture_output=True, text=True).stdout.strip()
    except OSError:
        facts["git_commit"] = None
    return facts


def make_smoke_data(root: Path) -> Path:
    """Procedural faces in FER2013's folder layout, Training and PublicTest only."""
    from feraug.data.procedural import make_procedural_faces, save_image_folder

    if not (root / "Training").is_dir():
        counts = dict.fromkeys(("angry", "disgust", "fear", "happy", "sad", "surprise",
                                "neutral"), 12)
        save_image_folder(make_procedural_faces(counts, size=48, n_identities=6, seed=0), root)
        shutil.rmtree(root / "PrivateTest", ignore_errors=True)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT / ".carry" / "fer2013")
    ap.add_argument("--out", type=Path, required=True, help="what comes back (small files)")
    ap.add_argument("--work", type=Path, default=None, help="run folders (default OUT/../work)")
    ap.add_argument("--budget", type=float, default=540, help="seconds for all phases")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--guides", type=Path, default=ROOT / ".carry",
                    help="folder of carried guide checkpoints (see carried_config)")
    ap.add_argument("--smoke", action="store_true", help="the same path on the CPU, tiny")
    a = ap.parse_args()
    a.dropped_guides = {}
    a.out = a.out.resolve()
    a.work = (a.work or a.out.parent / f"{a.out.name}-work").resolve()
    a.out.mkdir(parents=True, exist_ok=True)
    a.work.mkdir(parents=True, exist_ok=True)
    if a.smoke:
        # the smoke phases take seconds; the budget is only a ceiling, generous so that a
        # busy machine does not cut a phase off (what the test checks is the path, not speed)
        a.device, a.budget = "cpu", max(a.budget, 1200)
        a.data = make_smoke_data(a.work / "data")
    a.data = a.data.resolve()
    state_path = a.work / "campaign.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {"phases": {}}
    for name, phase in PHASES.items():
        if state["phases"].get(name, {}).get("finished"):
            continue
        t0 = time.perf_counter()
        result = phase(a, a.budget * SHARES[name])
        state["phases"][name] = {"finished": True, "seconds": round(time.perf_counter() - t0, 1),
                                 "result": result}
        state_path.write_text(json.dumps(state, indent=2))
    report = {**device_facts(a.device), "smoke": a.smoke, "budget_s": a.budget, **state}
    (a.out / "campaign.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
