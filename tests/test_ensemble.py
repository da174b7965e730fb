"""`feraug ensemble`: several trained classifiers become one ordinary checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_training import tiny_dataset

from feraug.classifier.config import build_train_config
from feraug.classifier.ensemble import assemble_ensemble
from feraug.classifier.infer import predict_proba
from feraug.classifier.trainer import fit
from feraug.errors import CheckpointError, ConfigError
from feraug.export import export_model
from feraug.models.checkpoint import load_classifier, read_checkpoint


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two tiny zhu-cnn runs on the same toy data with different seeds."""
    root = tmp_path_factory.mktemp("members")
    paths = []
    for seed in (0, 1):
        cfg = build_train_config({"data": "toy", "out": str(root / f"s{seed}"), "epochs": 1,
                                  "max_steps": 2, "batch_size": 8, "device": "cpu",
                                  "seed": seed})
        paths.append(fit(cfg, dataset=tiny_dataset()).best_checkpoint)
    return paths


def test_ensemble_averages_member_log_probabilities(members: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "ens.pt"
    info = assemble_ensemble(members, out)
    assert info["members"] == [str(p) for p in members]
    stored = read_checkpoint(out)
    assert stored["model_name"] == "ensemble"
    assert stored["model_kwargs"] == {"members": ["zhu-cnn", "zhu-cnn"]}
    assert [m["seed"] for m in stored["members"]] == [0, 1]
    ens, a, b = (load_classifier(p) for p in (out, *members))
    assert (ens.classes, ens.tta, ens.image_size) == (a.classes, a.tta, a.image_size)
    faces = tiny_dataset().subset("test").images[:6]
    got = predict_proba(ens.model, faces, None, "none")
    pa, pb = (predict_proba(m.model, faces, None, "none") for m in (a, b))
    want = torch.softmax((pa.log() + pb.log()) / 2, dim=1)  # normalised geometric mean
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(pa, pb, atol=1e-3)  # the members really differ
    with pytest.raises(CheckpointError, match="already exists"):
        assemble_ensemble(members, out)


def test_ensemble_takes_logit_adjustment_and_export(members: list[Path], tmp_path: Path) -> None:
    from feraug.classifier.logit_adjust import adjust_logits

    ds = tiny_dataset()
    ens, adjusted = tmp_path / "ens.pt", tmp_path / "adj.pt"
    assemble_ensemble(members, ens)
    info = adjust_logits(ens, ds, adjusted, taus=(0.5,))
    before, after = read_checkpoint(ens)["model"], read_checkpoint(adjusted)["model"]
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == ["combine.bias"] and info["tau"] == 0.5
    res = export_model(adjusted, tmp_path / "ens.ts", "torchscript")
    assert res.checked and res.max_abs_diff < 1e-5


def test_half_ensemble_is_smaller(members: list[Path], tmp_path: Path) -> None:
    full, half = tmp_path / "full.pt", tmp_path / "half.pt"
    assemble_ensemble(members, full)
    assemble_ensemble(members, half, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    assert read_checkpoint(half)["config"]["seed"] == 0  # the first member's split is recorded
    from feraug.classifier.logit_adjust import adjust_logits

    adjust_logits(half, tiny_dataset(), tmp_path / "adj.pt", taus=(0.0,))  # written as float32
    assert "weights_dtype" not in read_checkpoint(tmp_path / "adj.pt")
    x = torch.randint(0, 256, (3, 1, 48, 48), dtype=torch.uint8)
    p_full = predict_proba(load_classifier(full).model, x, None)
    p_half = predict_proba(load_classifier(half).model, x, None)
    assert torch.allclose(p_full, p_half, atol=5e-3)


def test_ensemble_refuses_mismatched_or_too_few_members(members: list[Path], ckpt: Path,
                                                        tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least two"):
        assemble_ensemble(members[:1], tmp_path / "one.pt")
    with pytest.raises(ConfigError, match="twice"):
        assemble_ensemble([members[0], members[0].parent / "." / members[0].name],
                          tmp_path / "dup.pt")
    with pytest.raises(CheckpointError, match=f"{ckpt}: .*differs"):
        assemble_ensemble([members[0], ckpt], tmp_path / "mixed.pt")
    assert not (tmp_path / "mixed.pt").exists()
    nested = tmp_path / "nested.pt"
    assemble_ensemble(members, nested)
    with pytest.raises(CheckpointError, match="already an ensemble"):
        assemble_ensemble([nested, members[0]], tmp_path / "n2.pt")


def test_ensemble_cli_and_training_refusal(members: list[Path], ckpt: Path, tmp_path: Path,
                                           run_cli) -> None:
    out = tmp_path / "cli.pt"
    ok = run_cli("ensemble", *map(str, members), "--out", str(out))
    assert ok.code == 0 and "2 members" in ok.stdout and out.is_file()
    bad = run_cli("ensemble", str(members[0]), str(ckpt), "--out", str(tmp_path / "x.pt"))
    assert bad.code == 2 and bad.stderr.count("error:") == 1 and "differs" in bad.stderr
    train = run_cli("train", "--data", "toy", "--model", "ensemble", "--dry-run")
    assert train.code == 2 and "unknown model 'ensemble'" in train.stderr
