"""Generators: every one trains a few steps on tiny data, samples deterministically, survives a
save/load round trip, resumes exactly, and trains on the train split only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from feraug.data.dataset import FaceDataset
from feraug.engine.generator_loop import IndexStream, train_generator
from feraug.errors import CheckpointError, ConfigError, DataError
from feraug.gan import GENERATORS, build_generator, load_generator, save_generator
from feraug.gan.base import GanConfig, GeneratorModel, to_float
from feraug.io import file_sha256

CLASSES = ("disgust", "happy", "neutral")
SIZE = 48
CGAN_TINY = {"z_dim": 8, "w_dim": 8, "g_channels": [8, 8, 8, 8], "d_channels": [8, 8, 8, 8],
             "r1_every": 2, "ema_kimg": 0.01}
STARGAN_TINY = {"ngf": 4, "n_blocks": 1, "ndf": 4}
TINY: dict[str, dict] = {
    "cyclegan": {"ngf": 4, "n_blocks": 1, "ndf": 4, "batch_size": 2, "pool_size": 3},
    "cgan": {**CGAN_TINY, "batch_size": 3},
    "fastgan": {"batch_size": 3, "z_dim": 8, "g_channels": [8, 8, 8, 8],
                "d_channels": [8, 8, 8, 8], "ema_kimg": 0.01, "r1_every": 2},
    "stargan": {**STARGAN_TINY, "batch_size": 3},
    "twostage": {"batch_size": 3, "identity": CGAN_TINY, "translator": STARGAN_TINY},
}


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_faces(per_class: int = 6, held_out_value: int | None = None) -> FaceDataset:
    """Random 48 px faces: ``per_class`` train images per class, 2 val and 2 test each.

    ``held_out_value`` fills every val/test image with that constant (to spot leaks)."""
    g = torch.Generator().manual_seed(0)
    labels, split = [], []
    for name, count in (("train", per_class), ("val", 2), ("test", 2)):
        for k in range(len(CLASSES)):
            labels += [k] * count
            split += [name] * count
    images = torch.randint(0, 200, (len(labels), 1, SIZE, SIZE), generator=g, dtype=torch.uint8)
    if held_out_value is not None:
        images[[s != "train" for s in split]] = held_out_value
    return FaceDataset(images=images, labels=torch.tensor(labels), classes=CLASSES, split=split,
                       source_ids=[f"{i}.png" for i in range(len(labels))], format="fake",
                       root="tiny")


def tiny_model(name: str, **extra: object) -> GeneratorModel:
    return build_generator(name, {**TINY[name], **extra}, CLASSES, SIZE)


def sources() -> torch.Tensor:
    return torch.randint(0, 256, (5, 1, SIZE, SIZE), generator=torch.Generator().manual_seed(1),
                         dtype=torch.uint8)


def emotion_of(model: GeneratorModel) -> str:
    return model.emotions()[0]


def test_registry_names_and_default_configs() -> None:
    assert set(GENERATORS) == {"cyclegan", "cgan", "fastgan", "stargan", "twostage"}
    for name, cls in GENERATORS.items():
        assert cls.name == name
        assert issubclass(cls.config_class, GanConfig)
        cls.config_class()  # defaults are valid


@pytest.mark.parametrize("name", sorted(TINY))
def test_train_sample_save_reload(name: str, tmp_path: Path) -> None:
    model = tiny_model(name, steps=3)
    result = train_generator(model, tiny_faces(), tmp_path / "run", device="cpu",
                             sample_every=2, checkpoint_every=2, log_every=1, progress=False)
    assert result.steps == model.step == 3
    lines = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3]
    assert all(isinstance(v, float) for x in lines for k, v in x.items() if k != "step")
    assert (tmp_path / "run" / "samples" / "step_0000002.png").is_file()
    assert (tmp_path / "run" / "samples" / "step_0000003.png").is_file()
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["model"] == name

    src = sources() if model.needs_sources else None
    emotion = emotion_of(model)
    first = model.sample(emotion, 4, seed=7, sources=src)
    assert first.dtype == torch.uint8 and first.shape == (4, 1, SIZE, SIZE)
    assert first.device.type == "cpu"
    assert torch.equal(first, model.sample(emotion, 4, seed=7, sources=src))
    reloaded = load_generator(result.checkpoint)
    assert reloaded.name == name and reloaded.step == 3 and reloaded.classes == CLASSES
    assert torch.equal(first, reloaded.sample(emotion, 4, seed=7, sources=src))
    save_generator(reloaded, tmp_path / "again.pt")
    assert torch.equal(first, load_generator(tmp_path / "again.pt").sample(emotion, 4, 7, src))
    if model.needs_sources:
        with pytest.raises(ConfigError, match="source faces"):
            model.sample(emotion, 2, seed=0)
    else:
        assert not torch.equal(first, model.sample(emotion, 4, seed=8))
    with pytest.raises(ConfigError, match="cannot make"):
        model.sample("angry", 2, seed=0, sources=src)


@pytest.mark.parametrize("name", sorted(TINY))
def test_resume_is_exact(name: str, tmp_path: Path) -> None:
    check_resume_is_exact(name, {}, tmp_path)


def test_guided_cyclegan_resumes_exactly_and_records_its_guide(ckpt: Path,
                                                                tmp_path: Path) -> None:
    """The guide (a frozen classifier) is reloaded on resume; its hash is in the meta."""
    from feraug.io import file_sha256

    model = check_resume_is_exact("cyclegan", {"guide": str(ckpt)}, tmp_path)
    assert model.meta.guide_sha256 == file_sha256(ckpt)
    reloaded = load_generator(tmp_path / "b" / "checkpoint.pt")
    assert reloaded.meta.guide_sha256 == file_sha256(ckpt)


def test_guided_fastgan_resumes_exactly_and_records_its_guide(ckpt: Path,
                                                               tmp_path: Path) -> None:
    """Guidance works for noise-to-face generators too: loss logged, hash recorded."""
    from feraug.io import file_sha256

    model = check_resume_is_exact("fastgan", {"guide": str(ckpt)}, tmp_path)
    assert model.meta.guide_sha256 == file_sha256(ckpt)
    logged = [json.loads(x) for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert all(row["guide"] > 0 for row in logged)


def test_fastgan_ema_tracks_batch_norm_statistics() -> None:
    """The EMA generator samples with the running statistics of the trained one (a fresh
    copy's statistics would make every sample grey)."""
    model = tiny_model("fastgan")
    data = tiny_faces()
    real = to_float(data.images[:3])
    model.train_step(real, torch.tensor([0, 1, 2]))
    g, ema = model.nets["g"], model.nets["g_ema"]
    for b_ema, b in zip(ema.buffers(), g.buffers(), strict=True):
        assert torch.equal(b_ema, b)
    assert not ema.training


def check_resume_is_exact(name: str, extra: dict, tmp_path: Path) -> GeneratorModel:
    """Train 4 steps straight and 2 + (kill) + resume; both end bit-identical."""
    data = tiny_faces()
    straight = tiny_model(name, steps=4, **extra)
    train_generator(straight, data, tmp_path / "a", device="cpu", sample_every=2,
                    checkpoint_every=2, log_every=1, progress=False)
    killed = tiny_model(name, steps=4, **extra)
    step = killed.train_step

    def dies_at_step_3(real: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        if killed.step == 2:
            raise KeyboardInterrupt
        return step(real, labels)

    killed.train_step = dies_at_step_3  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        train_generator(killed, data, tmp_path / "b", device="cpu", sample_every=2,
                        checkpoint_every=2, log_every=1, progress=False)
    with (tmp_path / "b" / "log.jsonl").open("a") as fh:  # a line from after the checkpoint
        fh.write('{"step": 3, "stale": 1.0}\n')
    stale = tmp_path / "b" / ".checkpoint.pt.k1ll3d.tmp"  # left by a save killed mid-write
    stale.write_bytes(b"half a checkpoint")
    resumed = tiny_model(name, steps=4, **extra)
    train_generator(resumed, data, tmp_path / "b", device="cpu", sample_every=2,
                    checkpoint_every=2, log_every=1, resume=True, progress=False)
    a, b = straight.state_dict(), resumed.state_dict()
    flat_a, flat_b = _flatten(a), _flatten(b)
    assert flat_a.keys() == flat_b.keys()
    for key, value in flat_a.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, flat_b[key]), key
        else:
            assert value == flat_b[key], key
    steps = [json.loads(x)["step"] for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    assert not stale.exists()
    return resumed


def _flatten(obj: object, prefix: str = "") -> dict[str, object]:
    if isinstance(obj, dict):
        out: dict[str, object] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}/{k}"))
        return out
    if isinstance(obj, (list, tuple)):
        out = {}
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}/{i}"))
        return out
    return {prefix: obj}


def test_trainer_sees_train_split_only(tmp_path: Path) -> None:
    model = tiny_model("stargan", steps=3)
    seen: list[torch.Tensor] = []
    step = model.train_step

    def spy(real: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        seen.append(real.clone())
        return step(real, labels)

    model.train_step = spy  # type: ignore[method-assign]
    train_generator(model, tiny_faces(held_out_value=255), tmp_path / "run", device="cpu",
                    sample_every=0, progress=False)
    assert len(seen) == 3
    assert all(float(x.max()) < 0.6 for x in seen)  # val/test faces would be 1.0


def test_balanced_batches_and_cyclegan_streams() -> None:
    labels = tiny_faces().subset("train").labels
    cgan = tiny_model("cgan", batch_size=6)
    assert [k for _, k in cgan.streams(labels)] == [2, 2, 2]
    cyc = tiny_model("cyclegan")
    (src, k1), (tgt, k2) = cyc.streams(labels)
    assert k1 == k2 == 2
    assert set(labels[src].tolist()) == {CLASSES.index("neutral")}
    assert set(labels[tgt].tolist()) == {CLASSES.index("disgust")}
    assert cyc.source_emotion == "neutral" and cyc.emotions() == ("disgust",)


def test_index_stream_covers_pool_every_pass() -> None:
    stream = IndexStream(torch.arange(10, 15), seed=3)
    got = stream.take(12)
    assert sorted(got[:5].tolist()) == list(range(10, 15))
    assert sorted(got[5:10].tolist()) == list(range(10, 15))


def test_config_and_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope"):
        build_generator("cgan", {"nope": 1}, CLASSES, SIZE)
    with pytest.raises(ConfigError, match="unknown generator"):
        build_generator("pix2pix", {}, CLASSES, SIZE)
    with pytest.raises(ConfigError, match="not in the data"):
        build_generator("cyclegan", {"target": "fear"}, CLASSES, SIZE)
    with pytest.raises(ConfigError, match="DiffAugment"):
        build_generator("cgan", {"diffaugment": "color,rotate"}, CLASSES, SIZE)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_generator(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator(tmp_path / "missing.pt")
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a feraug generator"):
        load_generator(tmp_path / "other.pt")


def test_refuses_non_empty_out_and_missing_resume(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("mine")
    from feraug.errors import FeraugError

    with pytest.raises(FeraugError, match="not empty"):
        train_generator(tiny_model("cgan", steps=1), tiny_faces(), tmp_path / "full",
                        device="cpu", progress=False)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train_generator(tiny_model("cgan", steps=1), tiny_faces(), tmp_path / "empty",
                        device="cpu", resume=True, progress=False)


def test_twostage_samples_need_no_real_face() -> None:
    model = tiny_model("twostage")
    out = model.sample("happy", 3, seed=0)
    assert out.shape == (3, 1, SIZE, SIZE) and not model.needs_sources
    assert model.identities(3, seed=0).shape == (3, 1, SIZE, SIZE)


def test_twostage_reuses_a_trained_stargan(tmp_path: Path) -> None:
    data = tiny_faces()
    star = tiny_model("stargan", steps=1)
    train_generator(star, data, tmp_path / "star", device="cpu", sample_every=0,
                    progress=False)
    two = tiny_model("twostage", steps=2, translator={"ngf": 8},  # replaced by the checkpoint's
                     translator_from=str(tmp_path / "star" / "checkpoint.pt"))
    train_generator(two, data, tmp_path / "two", device="cpu", sample_every=0, progress=False)
    assert two.config.translator.ngf == 4
    for k, net in star.nets.items():
        for a, b in zip(net.parameters(), two.translator.nets[k].parameters(), strict=True):
            assert torch.equal(a, b)  # stage 2 stayed fixed
    star_sha = file_sha256(tmp_path / "star" / "checkpoint.pt")
    (tmp_path / "star" / "checkpoint.pt").unlink()  # the twostage checkpoint is self-contained
    reloaded = load_generator(tmp_path / "two" / "checkpoint.pt")
    assert torch.equal(reloaded.sample("happy", 2, 0), two.sample("happy", 2, 0))
    assert reloaded.meta.translator_from_step == 1
    assert reloaded.meta.translator_from_sha256 == star_sha


def test_translators_see_the_target_emotion(tmp_path: Path) -> None:
    """The target emotion must change the output. (Regression: one-hot label maps tiled onto
    the input were erased by reflection padding + instance norm, so StarGAN ignored them.)"""
    from feraug.gan.editnets import MaskUNet

    torch.manual_seed(0)
    net = MaskUNet(ngf=4, n_blocks=1, num_classes=3)
    x = torch.randn(2, 1, SIZE, SIZE).clamp(-1, 1)
    untrained = [net(x, torch.tensor([k, k])) for k in (0, 1)]
    for edited, mask in untrained:  # every emotion starts at (nearly) the identity
        assert mask.mean() < 0.06 and (edited - x).abs().mean() < 0.1
    # each emotion has its own output head: different targets, different edits from step 0
    assert not torch.equal(untrained[0][0], untrained[1][0])
    for block in net.blocks:
        torch.nn.init.normal_(block.film.weight, 0.0, 0.5)
    torch.nn.init.normal_(net.mask.weight, 0.0, 0.5)  # untrained masks barely read features
    masks = [net(x, torch.tensor([k, k]))[1] for k in (0, 1)]
    assert (masks[0] - masks[1]).abs().mean() > 1e-3

    model = tiny_model("stargan", steps=4, lr=0.05)
    train_generator(model, tiny_faces(), tmp_path / "run", device="cpu", sample_every=0,
                    progress=False)
    x = to_float(sources())
    happy, disgust = (model.translate(x, CLASSES.index(e)) for e in ("happy", "disgust"))
    # edits start small (the mask starts near 0), so compare float outputs, not uint8 faces;
    # the label-erasing bug this guards against gave differences of ~1e-6
    assert (happy - disgust).abs().mean() > 1e-4


def test_a_stream_without_faces_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    ds = tiny_faces()
    no_neutral = [i for i in range(len(ds))
                  if not (ds.split[i] == "train" and ds.labels[i] == CLASSES.index("neutral"))]
    model = tiny_model("twostage", steps=1, identity_data="neutral")
    with pytest.raises(DataError, match="no faces"):
        train_generator(model, ds.select(no_neutral), tmp_path / "run", device="cpu",
                        sample_every=0, progress=False)
    assert not (tmp_path / "run").exists()


def test_twostage_records_its_translators_guide(ckpt: Path, tmp_path: Path) -> None:
    """The scorer refuses a generator's guide as judge; for twostage that is stage 2's guide."""
    from feraug.io import file_sha256

    model = tiny_model("twostage", steps=1, translator={**STARGAN_TINY, "guide": str(ckpt)})
    train_generator(model, tiny_faces(), tmp_path / "run", device="cpu", sample_every=0,
                    progress=False)
    assert load_generator(tmp_path / "run" / "checkpoint.pt").meta.guide_sha256 == \
        file_sha256(ckpt)


def test_sampling_only_copy_is_small_samples_alike_and_cannot_resume(tmp_path: Path) -> None:
    from feraug.gan.base import save_for_sampling

    model = tiny_model("fastgan", steps=2)
    train_generator(model, tiny_faces(), tmp_path / "run", device="cpu", sample_every=0,
                    checkpoint_every=0, progress=False)
    full = tmp_path / "run" / "checkpoint.pt"
    save_for_sampling(full, tmp_path / "slim.pt")
    assert (tmp_path / "slim.pt").stat().st_size < full.stat().st_size / 2
    a = load_generator(full).generate(0, 4, seed=5)
    b = load_generator(tmp_path / "slim.pt").generate(0, 4, seed=5)
    assert (a - b).abs().max() < 0.02  # float16 weights: the same faces within rounding
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "checkpoint.pt").write_bytes((tmp_path / "slim.pt").read_bytes())
    (copy / "manifest.json").write_bytes((tmp_path / "run" / "manifest.json").read_bytes())
    with pytest.raises(CheckpointError, match="sampling-only"):
        train_generator(tiny_model("fastgan", steps=3), tiny_faces(), copy, device="cpu",
                        resume=True, progress=False)


def test_a_run_killed_before_its_first_checkpoint_restarts_in_place(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No checkpoint yet (killed during or before the first save): --resume starts again from
    step 0 in the same folder and ends as an unbroken run; another generator is refused."""
    whole = tiny_model("fastgan", steps=3)
    train_generator(whole, tiny_faces(), tmp_path / "whole", device="cpu", sample_every=1,
                    checkpoint_every=0, log_every=1, progress=False)
    killed = tmp_path / "killed"
    train_generator(tiny_model("fastgan", steps=3), tiny_faces(), killed, device="cpu",
                    sample_every=1, checkpoint_every=0, log_every=1, progress=False)
    (killed / "checkpoint.pt").unlink()
    with pytest.raises(CheckpointError, match="not a cgan run"):
        train_generator(tiny_model("cgan", steps=3), tiny_faces(), killed, device="cpu",
                        resume=True, progress=False)
    capsys.readouterr()
    again = tiny_model("fastgan", steps=3)
    train_generator(again, tiny_faces(), killed, device="cpu", sample_every=1,
                    checkpoint_every=0, log_every=1, resume=True, progress=False)
    assert "starting this run again from step 0" in capsys.readouterr().err
    for key, value in _flatten(whole.state_dict()).items():
        other = _flatten(again.state_dict())[key]
        assert torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other
    assert len((killed / "log.jsonl").read_text().splitlines()) == 3
