"""Generators train with two processes through torchrun (gloo on CPU): both ranks end with
identical weights, the checkpoint holds both ranks' batch streams, and a resume continues
exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

SCRIPT = textwrap.dedent("""
    import os, sys
    import torch
    sys.path.insert(0, sys.argv[1])
    from test_gan import tiny_faces, tiny_model
    from test_gan_ddp import nets_of
    from feraug.engine.generator_loop import train_generator
    names, out, steps, resume = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"
    for name in names.split(","):  # several trainings in one process: each into OUT-NAME
        where = out if "," not in names else f"{out}-{name}"
        model = tiny_model(name, steps=steps)
        train_generator(model, tiny_faces(), where, device="cpu", sample_every=0,
                        checkpoint_every=2, log_every=1, resume=resume, progress=False)
        torch.save(nets_of(model.state_dict()), f"{where}.rank{os.environ['RANK']}.pt")
""")


def _torchrun(tmp_path: Path, name: str, out: Path, steps: int, resume: bool = False) -> None:
    """Train the generator ``name`` (or several, comma-separated, one after another) with
    two processes (torchrun, gloo)."""
    script = tmp_path / "ddp_gan.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", FERAUG_QUIET="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", str(script), str(Path(__file__).parent), name, str(out), str(steps),
           "1" if resume else "0"]
    subprocess.run(cmd, env=env, check=True, timeout=240, capture_output=True)


def nets_of(state: dict) -> dict[str, dict[str, torch.Tensor]]:
    """Every network's weights in a generator's state, by name (a two-stage generator's
    stages too, as ``identity/g``, ``translator/g``, ...)."""
    if "nets" in state:
        return dict(state["nets"])
    return {f"{stage}/{net}": weights for stage in ("identity", "translator")
            for net, weights in state[stage]["nets"].items()}


def _nets(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    return torch.load(path, weights_only=True)


def _assert_same(a: dict, b: dict) -> None:
    for net, params in a.items():
        for key, value in params.items():
            assert torch.equal(value, b[net][key]), f"{net}/{key}"


@pytest.mark.parametrize("name", ["fastgan", "cgan"])
def test_two_ranks_end_identical_and_resume_exactly(name: str, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    _torchrun(tmp_path, name, straight, steps=4)
    r0, r1 = _nets(Path(f"{straight}.rank0.pt")), _nets(Path(f"{straight}.rank1.pt"))
    _assert_same(r0, r1)
    ckpt = torch.load(straight / "checkpoint.pt", weights_only=True)
    assert len(ckpt["trainer"]["ranks"]) == 2
    _assert_same(r0, nets_of(ckpt["model"]))
    # the ranks drew different batches: the run is not the single-process run
    from test_gan import tiny_faces, tiny_model

    from feraug.engine.generator_loop import train_generator

    single = tiny_model(name, steps=4)
    train_generator(single, tiny_faces(), tmp_path / "single", device="cpu", sample_every=0,
                    checkpoint_every=0, progress=False)
    assert any(not torch.equal(v, r0["g"][k]) for k, v in single.state_dict()["nets"]["g"].items())
    # stop after 2 steps, resume to 4: the same weights as the straight run
    split = tmp_path / "split"
    _torchrun(tmp_path, name, split, steps=2)
    _torchrun(tmp_path, name, split, steps=4, resume=True)
    _assert_same(r0, _nets(Path(f"{split}.rank0.pt")))
    _assert_same(r0, _nets(Path(f"{split}.rank1.pt")))


def test_translators_end_identical_on_both_ranks(tmp_path: Path) -> None:
    """The editing generators too, trained one after another in the same two processes: a
    StarGAN step trains only the output heads of the emotions in a rank's batch, so the
    ranks' gradients cover different parameters; a two-stage generator steps its stages'
    optimisers; a second training joins the process group the first one made."""
    names = ["stargan", "cyclegan", "twostage"]
    out = tmp_path / "run"
    _torchrun(tmp_path, ",".join(names), out, steps=3)
    for name in names:
        where = Path(f"{out}-{name}")
        r0, r1 = _nets(Path(f"{where}.rank0.pt")), _nets(Path(f"{where}.rank1.pt"))
        _assert_same(r0, r1)
        _assert_same(r0, nets_of(torch.load(where / "checkpoint.pt", weights_only=True)["model"]))
