"""Transfer learning, imbalance options, local pretrained weights, batches and augmentation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_training import tiny_dataset
from torchvision.models import resnet18

from feraug.classifier.augment import augment_batch, random_crop
from feraug.classifier.batches import TensorBatches
from feraug.classifier.config import AugmentConfig, build_train_config
from feraug.classifier.setup import build_loss
from feraug.classifier.trainer import fit
from feraug.errors import CheckpointError, ConfigError
from feraug.models import CLASSIFIERS, build_classifier
from feraug.models.checkpoint import load_classifier, read_checkpoint


def _cfg(tmp_path: Path, name: str, **kw) -> object:
    values = {"data": "toy", "out": str(tmp_path / name), "epochs": 1, "batch_size": 8,
              "device": "cpu", **kw}
    return build_train_config(values)


def test_init_fine_tunes_with_new_head_and_frozen_backbone(tmp_path: Path) -> None:
    source = fit(_cfg(tmp_path, "pre"), dataset=tiny_dataset())
    pre = read_checkpoint(source.best_checkpoint)["model"]
    two_class = tiny_dataset().select([i for i, y in enumerate(tiny_dataset().labels) if y < 2])
    two_class.classes = two_class.classes[:2]
    result = fit(_cfg(tmp_path, "ft", init=str(source.best_checkpoint), freeze_backbone=True,
                      lr=0.05), dataset=two_class)
    tuned = read_checkpoint(result.best_checkpoint)["model"]
    assert tuned["head.4.weight"].shape[0] == 2  # new 2-way head
    for key, value in pre.items():
        if key.startswith("features.") and key.endswith("weight"):
            assert torch.equal(value, tuned[key]), key  # backbone frozen
    assert load_classifier(result.best_checkpoint).classes == ("angry", "happy")


def test_init_refuses_another_architecture(tmp_path: Path) -> None:
    source = fit(_cfg(tmp_path, "pre", max_steps=1), dataset=tiny_dataset())
    with pytest.raises(CheckpointError, match="holds a zhu-cnn model"):
        fit(_cfg(tmp_path, "ft", model="resnet18", init=str(source.best_checkpoint)),
            dataset=tiny_dataset())


def test_class_weighted_loss_upweights_rare_classes() -> None:
    cfg = build_train_config({"data": "x", "class_weighted_loss": True})
    labels = torch.tensor([0] * 90 + [1] * 10)
    loss = build_loss(cfg, labels, 2, torch.device("cpu"))
    assert loss.weight[1] / loss.weight[0] == pytest.approx(9.0)


def test_logit_adjusted_loss_shifts_logits_by_log_prior() -> None:
    cfg = build_train_config({"data": "x", "logit_adjust_tau": 1.0, "label_smoothing": 0.0})
    labels = torch.tensor([0] * 90 + [1] * 10)
    loss = build_loss(cfg, labels, 2, torch.device("cpu"))
    logits = torch.tensor([[0.3, -0.2], [1.0, 2.0]])
    target = torch.tensor([1, 0])
    shifted = logits + torch.tensor([0.9, 0.1]).log()
    expected = torch.nn.functional.cross_entropy(shifted, target)
    assert loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)
    # equal logits: the rare class costs more than plain cross-entropy would say
    even = torch.zeros(1, 2)
    rare = torch.tensor([1])
    assert loss(even, rare) > torch.nn.functional.cross_entropy(even, rare)


def test_balanced_sampling_evens_out_classes() -> None:
    labels = torch.tensor([0] * 950 + [1] * 50)
    batches = TensorBatches(labels, batch_size=100, seed=0, balanced=True)
    drawn = torch.cat(list(batches.epoch(0)))
    share = (labels[drawn] == 1).float().mean().item()
    assert 0.4 < share < 0.6
    plain = torch.cat(list(TensorBatches(labels, 100, seed=0).epoch(0)))
    assert sorted(plain.tolist()) == list(range(1000))  # a permutation, each image once


def test_batches_shard_disjointly_across_ranks() -> None:
    labels = torch.arange(64) % 4
    r0 = torch.cat(list(TensorBatches(labels, 8, 1, rank=0, world_size=2).epoch(3)))
    r1 = torch.cat(list(TensorBatches(labels, 8, 1, rank=1, world_size=2).epoch(3)))
    assert set(r0.tolist()).isdisjoint(r1.tolist()) and len(r0) == len(r1) == 32


def test_resnet18_loads_local_imagenet_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    reference = resnet18(weights=None)
    weights = tmp_path / "resnet18-local.pth"
    torch.save(reference.state_dict(), weights)
    model = build_classifier("resnet18", 7, 48, pretrained_weights=str(weights))
    assert torch.equal(model.net.layer1[0].conv1.weight, reference.layer1[0].conv1.weight)
    assert model.net.conv1.weight.shape == (64, 1, 3, 3)
    assert model(torch.zeros(2, 1, 48, 48)).shape == (2, 7)
    bad = tmp_path / "bad.pth"
    torch.save({"something": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="not a ResNet-18 state dict"):
        build_classifier("resnet18", 7, 48, pretrained_weights=str(bad))
    for name, content in (("garbage.pth", b"not a checkpoint at all"), ("empty.pth", b"")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match="cannot load ResNet-18 weights"):
            build_classifier("resnet18", 7, 48, pretrained_weights=str(tmp_path / name))
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(CheckpointError, match="not a ResNet-18 state dict"):
        build_classifier("resnet18", 7, 48, pretrained_weights=str(tmp_path / "tensor.pth"))


def test_vgg16_loads_local_imagenet_weights_and_fine_tunes_its_head(tmp_path: Path) -> None:
    from torchvision.models import vgg16

    torch.manual_seed(0)
    reference = vgg16(weights=None)
    weights = tmp_path / "vgg16-local.pth"
    torch.save(reference.state_dict(), weights)
    model = build_classifier("vgg16", 7, 48, pretrained_weights=str(weights))
    assert torch.equal(model.features[2].weight, reference.features[2].weight)
    assert torch.allclose(model.features[0].weight,
                          reference.features[0].weight.sum(dim=1, keepdim=True))
    assert model(torch.zeros(2, 1, 48, 48)).shape == (2, 7)
    assert model.embed(torch.zeros(2, 1, 48, 48)).shape == (2, 512)
    bn = tmp_path / "vgg16bn.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "features.1.weight":
                torch.zeros(64)}, bn)
    with pytest.raises(CheckpointError, match="incompatible VGG16 weights"):
        build_classifier("vgg16", 7, 48, pretrained_weights=str(bn))
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot load VGG16 weights"):
        build_classifier("vgg16", 7, 48, pretrained_weights=str(tmp_path / "garbage.pth"))


def test_checkpoint_missing_a_key_is_one_clear_error(ckpt: Path, tmp_path: Path,
                                                     run_cli) -> None:
    """A correctly tagged classifier checkpoint without one of its keys: one error line."""
    from feraug.io import atomic_torch_save

    state = read_checkpoint(ckpt)
    del state["classes"]
    broken = tmp_path / "broken.pt"
    atomic_torch_save(state, broken)
    with pytest.raises(CheckpointError, match="lacks classes"):
        load_classifier(broken)
    res = run_cli("predict", tmp_path / "none.png", "--model", broken)
    assert res.code != 0 and len(res.stderr.strip().splitlines()) == 1


def test_augmentation_is_seeded_batched_and_shape_preserving() -> None:
    x = torch.randn(16, 1, 48, 48)
    cfg = AugmentConfig(erasing=0.5, brightness=0.2)
    a = augment_batch(x, cfg, 40, torch.Generator().manual_seed(1))
    b = augment_batch(x, cfg, 40, torch.Generator().manual_seed(1))
    c = augment_batch(x, cfg, 40, torch.Generator().manual_seed(2))
    assert a.shape == (16, 1, 40, 40) and torch.equal(a, b) and not torch.equal(a, c)
    ident = augment_batch(x, AugmentConfig(flip=False, rotation=0, translate=0, scale=0), None,
                          torch.Generator())
    assert torch.allclose(ident, x, atol=1e-5)


def test_photometric_augmentations_change_what_they_claim() -> None:
    from feraug.classifier.augment import random_blur, random_gamma, random_lowres, random_noise

    torch.manual_seed(0)
    x = (torch.rand(8, 1, 48, 48) * 2 - 1)  # white noise: all high frequencies
    g = torch.Generator().manual_seed(0)

    def roughness(t: torch.Tensor) -> torch.Tensor:  # mean neighbour difference per face
        return (t[..., 1:] - t[..., :-1]).abs().mean(dim=(1, 2, 3))

    blurred = random_blur(x, 1.0, g)
    assert blurred.shape == x.shape and bool((roughness(blurred) < 0.9 * roughness(x)).all())
    assert torch.equal(random_blur(x, 0.0, g), x)
    low = random_lowres(x, 1.0, g)
    assert bool((roughness(low) < roughness(x)).all())
    flat = torch.zeros(8, 1, 48, 48)
    noisy = random_noise(flat, 0.2, g)
    assert 0 < float(noisy.std()) < 0.2 and float(noisy.abs().max()) <= 1
    ramp = torch.linspace(-1, 1, 48).view(1, 1, 1, 48).expand(8, 1, 48, 48)
    curved = random_gamma(ramp, 0.5, g)
    assert float(curved.min()) >= -1 and float(curved.max()) <= 1
    assert not torch.allclose(curved, ramp) and bool((curved.diff(dim=-1) >= 0).all())
    cfg = AugmentConfig(gamma=0.3, blur=0.5, noise=0.05, lowres=0.3)
    a = augment_batch(x, cfg, 40, torch.Generator().manual_seed(3))
    b = augment_batch(x, cfg, 40, torch.Generator().manual_seed(3))
    assert a.shape == (8, 1, 40, 40) and torch.equal(a, b)


def test_random_crop_takes_windows_of_the_input() -> None:
    x = torch.arange(2 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6)
    out = random_crop(x, 4, torch.Generator().manual_seed(0))
    for i in range(2):
        windows = [x[i, 0, r:r + 4, c:c + 4] for r in range(3) for c in range(3)]
        assert any(torch.equal(out[i, 0], w) for w in windows)


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_best_checkpoint_follows_the_selection_metric(tmp_path: Path, metric: str) -> None:
    result = fit(_cfg(tmp_path, metric, epochs=3, select_metric=metric), dataset=tiny_dataset())
    scores = [row[f"val_{metric}"] for row in result.history]
    best = result.history[scores.index(max(scores))]
    assert result.best_val["epoch"] == best["epoch"]
    assert read_checkpoint(result.best_checkpoint)["val_metrics"]["epoch"] == best["epoch"]


def test_logit_adjustment_picks_tau_on_val_and_writes_a_new_checkpoint(tmp_path: Path) -> None:
    from feraug.classifier.logit_adjust import DEFAULT_TAUS, adjust_logits

    ds = tiny_dataset()
    rare = [i for i in range(len(ds)) if ds.split[i] != "train" or ds.labels[i] != 0 or i % 4 == 0]
    ds = ds.select(rare)  # class 0 is rare in train, so the prior is not uniform
    base = fit(_cfg(tmp_path, "base", max_steps=3), dataset=ds)
    out = tmp_path / "adjusted.pt"
    info = adjust_logits(base.best_checkpoint, ds, out)
    assert info["tau"] in DEFAULT_TAUS and set(info["val"]) == set(DEFAULT_TAUS)
    before, after = read_checkpoint(base.best_checkpoint), read_checkpoint(out)
    assert after["logit_adjustment"]["chosen_on"] == "val"
    prior = torch.tensor(after["logit_adjustment"]["log_prior"])
    assert prior[0] < prior[1]
    changed = [k for k in before["model"] if not torch.equal(before["model"][k], after["model"][k])]
    assert len(changed) == (info["tau"] > 0)  # only the head's bias
    for key in changed:
        assert torch.allclose(after["model"][key], before["model"][key] - info["tau"] * prior)
    assert load_classifier(out).classes == load_classifier(base.best_checkpoint).classes
    with pytest.raises(CheckpointError, match="already exists"):
        adjust_logits(base.best_checkpoint, ds, out)
    assert load_classifier(out).tta == before["tta"] == "flip"
    adjust_logits(base.best_checkpoint, ds, tmp_path / "tta-none.pt", taus=(0.0,), tta="none")
    assert load_classifier(tmp_path / "tta-none.pt").tta == "none"
    assert read_checkpoint(tmp_path / "tta-none.pt")["logit_adjustment"]["source_tta"] == "flip"
    with pytest.raises(ConfigError, match="tta must be"):
        adjust_logits(base.best_checkpoint, ds, tmp_path / "x.pt", tta="fivecrop")
    with pytest.raises(ConfigError, match="tencrop needs a model trained on crops"):
        adjust_logits(base.best_checkpoint, ds, tmp_path / "x.pt", tta="tencrop")


def test_tau_scores_from_one_pass_match_scoring_each_adjusted_checkpoint(tmp_path: Path) -> None:
    from feraug.classifier.evaluate import evaluate_classifier
    from feraug.classifier.logit_adjust import adjust_logits

    ds = tiny_dataset()
    rare = [i for i in range(len(ds)) if ds.split[i] != "train" or ds.labels[i] != 0 or i % 4 == 0]
    ds = ds.select(rare)
    base = fit(_cfg(tmp_path, "base", max_steps=3), dataset=ds)
    taus = (0.0, 1.0, 3.0)
    info = adjust_logits(base.best_checkpoint, ds, tmp_path / "all.pt", taus=taus)
    for tau in taus:  # each tau written on its own, then scored by ordinary inference
        out = tmp_path / f"tau{tau}.pt"
        adjust_logits(base.best_checkpoint, ds, out, taus=(tau,))
        scored = evaluate_classifier(load_classifier(out), ds, split="val")
        assert scored["accuracy"] == pytest.approx(info["val"][tau]["accuracy"])
        assert scored["macro_f1"] == pytest.approx(info["val"][tau]["macro_f1"])
    assert len({round(v["macro_f1"], 6) for v in info["val"].values()}) > 1  # tau changes something


def test_half_precision_checkpoint_is_smaller_and_predicts_the_same(tmp_path: Path) -> None:
    from feraug.classifier.logit_adjust import adjust_logits

    ds = tiny_dataset()
    base = fit(_cfg(tmp_path, "base", max_steps=2), dataset=ds)
    full, half = tmp_path / "full.pt", tmp_path / "half.pt"
    adjust_logits(base.best_checkpoint, ds, full, taus=(0.0,))
    adjust_logits(base.best_checkpoint, ds, half, taus=(0.0,), half=True)
    stored = read_checkpoint(half)
    assert stored["weights_dtype"] == "float16"
    assert all(v.dtype in (torch.float16, torch.int64) for v in stored["model"].values())
    assert half.stat().st_size < 0.6 * full.stat().st_size
    x = torch.randn(4, 1, 48, 48)
    with torch.no_grad():
        p_full = load_classifier(full).model(x).softmax(1)
        p_half = load_classifier(half).model(x).softmax(1)
    assert next(load_classifier(half).model.parameters()).dtype == torch.float32
    assert torch.allclose(p_full, p_half, atol=5e-3)


def test_tau_grid_parses_negative_values_and_refuses_text() -> None:
    from feraug.classifier.logit_adjust import parse_taus

    assert parse_taus("-0.5, 0,1") == (-0.5, 0.0, 1.0)
    with pytest.raises(ConfigError, match="comma-separated"):
        parse_taus("0,half")


def test_progress_goes_to_stderr_so_json_stdout_stays_clean(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FERAUG_QUIET", raising=False)
    fit(_cfg(tmp_path, "loud", max_steps=1), dataset=tiny_dataset())
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "epoch 1" in captured.err


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_every_registered_classifier_builds_and_has_an_adjustable_head(name: str) -> None:
    from feraug.classifier.logit_adjust import adjustable_head
    from feraug.models import recipe

    assert recipe(name)["optimizer"] in ("adam", "sgd", "adamw")
    torch.manual_seed(0)
    model = build_classifier(name, 7, 48).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 1, 48, 48))
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()
    assert adjustable_head(model, 7)[1].out_features == 7  # `feraug adjust` works on it


@pytest.mark.parametrize("command", ["evaluate", "adjust"])
def test_unknown_tta_is_one_error_line_before_any_loading(command: str, run_cli,
                                                          tmp_path: Path) -> None:
    extra = ["--out", tmp_path / "x.pt"] if command == "adjust" else []
    result = run_cli(command, tmp_path / "missing.pt", tmp_path / "no-data", "--tta", "fivecrop",
                     *extra)
    assert result.code == 2
    assert result.stderr.strip().splitlines() == [
        "error: tta must be one of none, flip, tencrop, not 'fivecrop'"]


def test_train_takes_the_same_split_flags_as_the_other_commands(tmp_path: Path,
                                                                run_cli) -> None:
    res = run_cli("train", "--data", tmp_path, "--folds", "3", "--fold", "2",
                  "--class-map", "Happy=happy,Sad=sad", "--dry-run")
    config = json.loads(res.stdout)
    assert (config["folds"], config["fold"]) == (3, 2)
    assert config["class_map"] == {"Happy": "happy", "Sad": "sad"}
    res = run_cli("train", "--data", tmp_path, "--folds", "3", "--fold", "3", "--dry-run")
    assert res.code == 2 and "fold 3 is out of range for 3 folds" in res.stderr


def test_extra_train_adds_only_the_train_faces_of_another_data_set(tmp_path: Path) -> None:
    from test_training import CLASSES, write_image_folder

    from feraug.classifier.setup import load_training_data

    primary = tiny_dataset()
    other = tiny_dataset(per_class=5, seed=3)
    keep = [i for i in range(len(other)) if other.classes[other.labels[i]] != CLASSES[0]]
    other_root = write_image_folder(other.select(keep), tmp_path / "other")
    cfg = _cfg(tmp_path, "extra", extra_train=[str(other_root)])
    ds = load_training_data(cfg, primary)
    extra_train = 5 * (len(CLASSES) - 1)  # the other set's train faces, one class missing
    assert len(ds.indices("train")) == len(primary.indices("train")) + extra_train
    for split in ("val", "test"):  # never the other set's validation or test faces
        assert ds.class_counts(split) == primary.class_counts(split)
    added = [i for i, s in enumerate(ds.source_ids) if s.startswith(f"{other_root}:")]
    assert len(added) == extra_train and {ds.split[i] for i in added} == {"train"}
    assert ds.classes == primary.classes and int(ds.labels[added].min()) >= 1
    result = fit(cfg, dataset=primary)
    manifest = json.loads((result.out_dir / "manifest.json").read_text())
    assert manifest["config"]["extra_train"] == [str(other_root)]


def test_cpu_bf16_autocasts_only_when_asked() -> None:
    from feraug.engine.device import make_engine

    layer = torch.nn.Linear(4, 2)
    x = torch.ones(3, 4)
    for cpu_bf16, dtype in ((False, torch.float32), (True, torch.bfloat16)):
        engine = make_engine("cpu", amp=True, cpu_bf16=cpu_bf16)
        with engine.autocast():
            assert layer(x).dtype == dtype


def test_cpu_bf16_training_keeps_float32_weights_and_finite_losses(tmp_path: Path) -> None:
    result = fit(_cfg(tmp_path, "bf16", epochs=2, cpu_bf16=True), dataset=tiny_dataset())
    assert all(torch.isfinite(torch.tensor(row["train_loss"])) for row in result.history)
    state = read_checkpoint(result.best_checkpoint)["model"]
    assert all(t.dtype == torch.float32 for t in state.values() if t.is_floating_point())
