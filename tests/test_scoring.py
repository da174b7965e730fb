"""feraug gan score: distances against hand computations, the scorer's numbers against a
recomputation from the judge, and the refusal of a judge that guided the generator."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from feraug.classifier.config import build_train_config
from feraug.classifier.infer import predict_logits
from feraug.classifier.logit_adjust import log_prior
from feraug.classifier.trainer import fit
from feraug.data.dataset import FaceDataset
from feraug.data.procedural import make_procedural_faces, save_image_folder
from feraug.engine.generator_loop import train_generator
from feraug.gan import build_generator
from feraug.models.checkpoint import load_classifier
from feraug.scoring import score_generator
from feraug.scoring.distances import fid, kid, mean_pairwise_distance

COUNTS = {"angry": 10, "disgust": 8, "fear": 10, "happy": 12, "sad": 10, "surprise": 10,
          "neutral": 12}


def poly(x: torch.Tensor, y: torch.Tensor) -> float:
    return float((x @ y / len(x) + 1) ** 3)


def test_kid_matches_hand_computation() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(6, 3, generator=gen, dtype=torch.float64) + 1
    m = len(a)
    xx = sum(poly(a[i], a[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(poly(b[i], b[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(poly(a[i], b[j]) for i in range(m) for j in range(m))
    hand = (xx + yy) / (m * (m - 1)) - 2 * xy / m**2
    # subsets of the full size are permutations: every subset gives the same unbiased value
    result = kid(a, b, subsets=4, subset_size=m)
    assert result["kid"] == pytest.approx(hand, rel=1e-9)
    assert result["se"] == pytest.approx(0.0, abs=1e-12)
    assert result["subset_size"] == m
    assert kid(a[:1], b) is None


def test_fid_and_diversity_hand_values() -> None:
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(40, 3, generator=gen)
    shift = torch.tensor([1.0, -2.0, 0.5])
    # equal covariances: the trace term vanishes and FID is the squared mean difference
    assert fid(a, a + shift) == pytest.approx(float(shift.pow(2).sum()), abs=1e-6)
    pts = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    assert mean_pairwise_distance(pts) == pytest.approx((5 + 4 + 3) / 3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Procedural faces on disk, a tiny judge and a tiny guide (2 steps each)."""
    root = tmp_path_factory.mktemp("scoring")
    ds = make_procedural_faces(COUNTS, size=48, n_identities=8, seed=0)
    data = save_image_folder(ds, root / "data")
    paths = {}
    for name, seed in (("judge", 1), ("guide", 2)):
        cfg = build_train_config({"data": str(data), "model": "zhu-cnn"},
                                 {"out": str(root / name), "epochs": 1, "max_steps": 2,
                                  "batch_size": 16, "seed": seed, "device": "cpu"},
                                 source="test")
        paths[name] = fit(cfg, dataset=ds).best_checkpoint
    return {"root": root, "ds": ds, "data": data, **paths}


def train_tiny_cyclegan(ds, out: Path, guide: Path | list[str] | None = None) -> Path:
    config = {"steps": 2, "batch_size": 2, "ngf": 4, "n_blocks": 1, "ndf": 4, "pool_size": 2,
              "guide": guide if guide is None or isinstance(guide, list) else str(guide)}
    model = build_generator("cyclegan", config, ds.classes, ds.size)
    return train_generator(model, ds, out, device="cpu", sample_every=0, checkpoint_every=0,
                           progress=False).checkpoint


def test_scorer_numbers_match_the_judge(tiny: dict, tmp_path: Path, one_thread) -> None:
    ds = tiny["ds"]
    ckpt = train_tiny_cyclegan(ds, tmp_path / "gan")
    result = score_generator(ckpt, ds, tiny["judge"], n=20, out=tmp_path / "score")
    row = result["emotions"]["disgust"]
    # recompute agreement and the judge's real recall by hand: the zhu-cnn judge was not
    # trained balanced, so its decisions get logit adjustment with tau 1
    judge = load_classifier(tiny["judge"])
    shift = log_prior(ds, judge.classes)
    train, test = ds.subset("train"), ds.subset("test")
    sources = train.images[train.labels == ds.classes.index("neutral")]
    from feraug.gan import load_generator

    faces = load_generator(ckpt).sample("disgust", 20, 0, sources[torch.arange(20) % len(sources)])
    k = ds.classes.index("disgust")

    def decide(x: torch.Tensor) -> torch.Tensor:
        return (predict_logits(judge.model, x, judge.crop_size, judge.tta) - shift).argmax(1)

    agreement = float((decide(faces) == k).float().mean())
    real = test.images[test.labels == k]
    recall = float((decide(real) == k).float().mean())
    assert row["agreement"] == pytest.approx(agreement)
    assert row["judge_recall_real"] == pytest.approx(recall)
    if recall:
        assert row["agreement_ratio"] == pytest.approx(agreement / recall)
    assert result["judge"]["decisions"].startswith("logit-adjusted here")
    assert row["n"] == 20 and row["real_test"] == len(real)
    assert 0 <= row["source_survival"]["near_copy_share"] <= 1
    # strict JSON (no NaN/Infinity) and both figures on disk
    text = (tmp_path / "score" / "score.json").read_text()
    json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    for name in ("best_worst.png", "nearest_real.png", "first_samples.png"):
        assert (tmp_path / "score" / name).stat().st_size > 0
    assert not math.isnan(row["memorisation"]["pixel_rms_mean"])


def _decide_by_pixels(judge, images: torch.Tensor) -> torch.Tensor:
    """A stand-in judge whose decisions differ from face to face (a 2-step judge calls every
    face the same class, which no agreement figure could tell apart)."""
    k = images.to(torch.int64).sum((1, 2, 3)) % len(judge.loaded.classes)
    return torch.nn.functional.one_hot(k, len(judge.loaded.classes)).float()


def test_a_noise_to_face_generator_is_scored_without_sources(tiny: dict, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            one_thread) -> None:
    """Every emotion of a class-conditional fastgan gets a row; agreement is the judge's
    decisions on the very faces the generator samples for that seed; no source measures."""
    from feraug.gan import load_generator
    from feraug.scoring.judge import Judge

    ds = tiny["ds"]
    config = {"steps": 2, "batch_size": 3, "z_dim": 8, "g_channels": [8, 8, 8, 8],
              "d_channels": [8, 8, 8, 8], "ema_kimg": 0.01, "r1_every": 2}
    model = build_generator("fastgan", config, ds.classes, ds.size)
    ckpt = train_generator(model, ds, tmp_path / "gan", device="cpu", sample_every=0,
                           checkpoint_every=0, progress=False).checkpoint
    monkeypatch.setattr(Judge, "predict", _decide_by_pixels)
    result = score_generator(ckpt, ds, tiny["judge"], n=8, out=tmp_path / "score")
    assert result["sources"] is None
    assert sorted(result["emotions"]) == sorted(load_generator(ckpt).emotions())
    classes = load_classifier(tiny["judge"]).classes
    by_hand = {}
    for emotion, row in result["emotions"].items():
        assert "source_survival" not in row and row["n"] == 8
        faces = load_generator(ckpt).sample(emotion, 8, 0)
        sums = faces.to(torch.int64).sum((1, 2, 3)) % len(classes)
        by_hand[emotion] = float((sums == classes.index(emotion)).float().mean())
        assert row["agreement"] == pytest.approx(by_hand[emotion])
    assert len(set(by_hand.values())) > 1  # the comparison can tell faces apart
    assert not (tmp_path / "score" / "first_samples.png").exists()
    assert (tmp_path / "score" / "best_worst.png").stat().st_size > 0


def test_a_used_out_folder_is_refused_before_any_scoring(tiny: dict, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         run_cli, one_thread) -> None:
    from feraug.errors import FeraugError
    from feraug.scoring import score

    used = tmp_path / "used"
    used.mkdir()
    (used / "mine.txt").write_text("the user's")
    # the command refuses it first of all, before reading the checkpoint or the data
    res = run_cli("gan", "score", tmp_path / "no-such.pt", "--data", tiny["data"], "--judge",
                  tiny["judge"], "--inception", "off", "--out", used)
    assert res.code == 2 and "not empty" in res.stderr and str(used) in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    # and so does the Python API, before loading the generator
    ckpt = train_tiny_cyclegan(tiny["ds"], tmp_path / "gan")
    monkeypatch.setattr(score, "load_generator", lambda *a: pytest.fail("scoring started"))
    with pytest.raises(FeraugError, match="not empty"):
        score.score_generator(ckpt, tiny["ds"], tiny["judge"], n=4, out=used)
    assert [p.name for p in used.iterdir()] == ["mine.txt"]


def test_scorer_refuses_the_guide_as_judge(tiny: dict, tmp_path: Path, run_cli,
                                           one_thread) -> None:
    ckpt = train_tiny_cyclegan(tiny["ds"], tmp_path / "gan", guide=tiny["guide"])
    res = run_cli("gan", "score", ckpt, "--data", tiny["data"], "--judge", tiny["guide"],
                  "-n", 4, "--inception", "off", "--device", "cpu")
    assert res.code != 0
    assert "guide" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    ok = run_cli("gan", "score", ckpt, "--data", tiny["data"], "--judge", tiny["judge"],
                 "--n", 4, "--inception", "off", "--device", "cpu", "--split", "val", "--json")
    assert ok.code == 0, ok.stderr
    scored = json.loads(ok.stdout)
    assert scored["guide_sha256"] is not None and scored["reference_split"] == "val"


def test_every_member_of_a_guide_ensemble_is_refused_as_judge(tiny: dict, tmp_path: Path,
                                                              run_cli, one_thread) -> None:
    """An ensemble guide records every member's hash; the second member is as unfit a
    judge as the first."""
    from feraug.gan import load_generator
    from feraug.io import file_sha256

    members = [str(tiny["guide"]), str(tiny["judge"])]
    ckpt = train_tiny_cyclegan(tiny["ds"], tmp_path / "gan", guide=members)
    meta = load_generator(ckpt).meta
    assert meta.guide_hashes() == tuple(file_sha256(m) for m in members)
    res = run_cli("gan", "score", ckpt, "--data", tiny["data"], "--judge", tiny["judge"],
                  "-n", 4, "--inception", "off", "--device", "cpu")
    assert res.code != 0
    assert "a guide of" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_scorer_refuses_a_judge_that_filtered_the_faces(tiny: dict, tmp_path: Path, run_cli,
                                                        one_thread) -> None:
    """A synth filter is not in the generator's meta: declared with --filter-model, a judge
    with the same file contents (a copy under another name) is refused."""
    import shutil

    ckpt = train_tiny_cyclegan(tiny["ds"], tmp_path / "gan")
    copy = tmp_path / "filter.pt"
    shutil.copyfile(tiny["judge"], copy)
    args = ["gan", "score", ckpt, "--data", tiny["data"], "--judge", tiny["judge"], "-n", 4,
            "--inception", "off", "--device", "cpu"]
    res = run_cli(*args, "--filter-model", copy, "--filter-model", tiny["guide"])
    assert res.code != 0
    assert "quality filter" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    missing = run_cli(*args, "--filter-model", tmp_path / "typo.pt")
    assert missing.code != 0 and "no such filter model" in missing.stderr
    assert run_cli(*args, "--filter-model", tiny["guide"]).code == 0


def test_the_experiment_passes_its_filters_to_the_scorer(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    """Each generator is scored knowing the filters of the synthetic sets made from it."""
    from experiment_helpers import tiny_config

    from feraug.experiment import judging
    from feraug.experiment.config import parse_experiment_config

    values = tiny_config(tmp_path / "exp")
    values["classifiers"] = [{"name": "helper"}]
    values["generators"] = [{"name": "a", "model": "cyclegan", "config": {"steps": 1}},
                            {"name": "b", "model": "cyclegan", "config": {"steps": 1}}]
    values["synthetic"] = [{"name": "sa", "generator": "a",
                            "plan": {"mode": "balance", "filter_model": "classifier:helper"}},
                           {"name": "sb", "generator": "b", "plan": {"mode": "balance"}}]
    values["judge"] = {"n": 8}
    cfg = parse_experiment_config(values)
    seen: dict[str, list] = {}

    def fake_score(generator, *args, filter_models=(), **kwargs):
        seen[Path(generator).parent.name] = list(filter_models)
        return {"mean_agreement_ratio": 1.0}

    monkeypatch.setattr("feraug.scoring.score_generator", fake_score)
    monkeypatch.setattr("feraug.scoring.inception.resolve_inception", lambda spec: None)
    judging.score_generators(cfg, None, lambda line: None)
    assert seen == {"a": [str(cfg.classifier_dir("helper") / "best.pt")], "b": []}


class _TinyInception(torch.nn.Module):
    """Honours the Inception contract ([N, 3, 299, 299] -> [N, 2048]) in a few operations."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 2048)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((2, 3)))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is how the network ships
def test_real_faces_inception_features_come_back_from_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second request for the same faces reads the disk cache (the network is not run);
    other faces, or another network file, miss it."""
    from feraug.data.load import cache_dir
    from feraug.scoring.inception import InceptionFeatures

    monkeypatch.setenv("FERAUG_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    net = tmp_path / "tiny_inception.pt"
    torch.jit.save(torch.jit.script(_TinyInception()), str(net))
    faces = torch.randint(0, 256, (5, 1, 48, 48), dtype=torch.uint8)
    inception = InceptionFeatures(net, batch_size=2)
    first = inception.cached(faces)
    assert torch.equal(first, inception(faces))
    entries = set((cache_dir() / "inception").iterdir())
    assert len(entries) == 1

    def refuse(_: torch.Tensor) -> torch.Tensor:
        raise AssertionError("the network ran although the features were cached")

    inception.model = refuse
    assert torch.equal(inception.cached(faces), first)
    with pytest.raises(AssertionError):
        inception.cached(faces.flip(-1))
    torch.jit.save(torch.jit.script(_TinyInception()), str(tmp_path / "other.pt"))
    other = InceptionFeatures(tmp_path / "other.pt")
    assert not torch.equal(other.cached(faces), first)
    assert len(set((cache_dir() / "inception").iterdir())) == 2


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_an_unwritable_feature_cache_only_costs_time(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from feraug.scoring.inception import InceptionFeatures

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("FERAUG_CACHE", str(blocker))
    net = tmp_path / "tiny_inception.pt"
    torch.jit.save(torch.jit.script(_TinyInception()), str(net))
    faces = torch.randint(0, 256, (3, 1, 48, 48), dtype=torch.uint8)
    inception = InceptionFeatures(net)
    assert torch.equal(inception.cached(faces), inception(faces))


def _labelled_faces() -> FaceDataset:
    """A train split whose every face is filled with its class index, so a face's pixels say
    which emotion it was."""
    classes = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    labels = torch.arange(7).repeat_interleave(3)
    images = labels.to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 48, 48).contiguous()
    return FaceDataset(images, labels, classes, ["train"] * len(labels),
                       [f"f{i}" for i in range(len(labels))])


def test_translator_sources_per_emotion_and_the_any_source_override() -> None:
    """A translator with a source emotion translates those faces for every emotion; a
    StarGAN told to take any source gets every emotion's faces but the one it makes, like
    `feraug synth`; a CycleGAN (trained on one pair) refuses the override."""
    from feraug.errors import ConfigError
    from feraug.scoring.score import source_faces

    train = _labelled_faces()
    model = build_generator("stargan", {"ngf": 4, "n_blocks": 1, "ndf": 4}, train.classes, 48)
    neutral = train.classes.index("neutral")
    for emotion in ("angry", "happy"):
        faces = source_faces(model, train, emotion, 5, seed=0)
        assert faces.shape == (5, 1, 48, 48) and bool((faces == neutral).all())
    model.use_sources(None)
    for k, emotion in enumerate(train.classes):
        faces = source_faces(model, train, emotion, 40, seed=0)
        made_from = set(faces[:, 0, 0, 0].tolist())
        assert k not in made_from and len(made_from) == 6, emotion
    again = source_faces(model, train, "angry", 40, seed=0)
    assert torch.equal(again, source_faces(model, train, "angry", 40, seed=0))
    model.use_sources("happy")
    assert bool((source_faces(model, train, "sad", 4, seed=0) == 3).all())
    with pytest.raises(ConfigError, match="no 'contempt' faces"):
        model.use_sources("contempt")
    cyclegan = build_generator("cyclegan", {"ngf": 4, "n_blocks": 1, "ndf": 4}, train.classes,
                               48)
    with pytest.raises(ConfigError, match="cannot be changed"):
        cyclegan.use_sources(None)
