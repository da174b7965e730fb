"""`feraug synth` core: plan counts, filters, manifest, refusals, loading synthetic sets."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import torch

from feraug.data.dataset import FaceDataset
from feraug.data.synthetic import load_synthetic
from feraug.errors import ConfigError, FeraugError
from feraug.gan.meta import GeneratorMeta
from feraug.models import build_classifier
from feraug.models.checkpoint import save_checkpoint
from feraug.synth import build as build_mod
from feraug.synth import filters as filters_mod
from feraug.synth.build import build_synthetic_set, derive_seed
from feraug.synth.filters import MemorisationGuard
from feraug.synth.plan import make_plan

CLASSES = ("angry", "disgust", "happy", "neutral")
TRAIN = {"angry": 6, "disgust": 2, "happy": 10, "neutral": 8}
SIZE = 16


def make_real(root: Path | None = None, seed: int = 0) -> FaceDataset:
    """Random faces: train counts TRAIN, two val and two test images per class."""
    g = torch.Generator().manual_seed(seed)
    labels: list[int] = []
    split: list[str] = []
    for name, counts in (("train", TRAIN), ("val", dict.fromkeys(CLASSES, 2)),
                         ("test", dict.fromkeys(CLASSES, 2))):
        for c in CLASSES:
            labels += [CLASSES.index(c)] * counts[c]
            split += [name] * counts[c]
    n = len(labels)
    return FaceDataset(
        images=torch.randint(0, 256, (n, 1, SIZE, SIZE), generator=g, dtype=torch.uint8),
        labels=torch.tensor(labels), classes=CLASSES, split=split,
        source_ids=[f"img{i}.png" for i in range(n)], format="fake",
        root=str(root) if root is not None else "")


class FakeGenerator:
    """The `feraug.gan` generator interface; ``mode`` picks what it returns."""

    name = "fake"
    image_size = SIZE

    def __init__(self, mode: str = "noise", real: FaceDataset | None = None,
                 classes: tuple[str, ...] = CLASSES, makes: tuple[str, ...] | None = None
                 ) -> None:
        self.mode, self.real, self.classes, self.makes = mode, real, classes, makes
        self.needs_sources = mode in ("translate", "local_edit", "swap")
        self.source_emotion: str | None = "neutral" if self.needs_sources else None
        self.meta = GeneratorMeta()
        self.seen_sources: list[torch.Tensor] = []

    def emotions(self) -> tuple[str, ...]:
        return self.makes or self.classes

    def use_sources(self, emotion: str | None) -> None:
        self.source_emotion = None if emotion == "any" else emotion

    def sample(self, emotion: str, n: int, seed: int,
               sources: torch.Tensor | None = None) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        if self.mode == "translate":
            assert sources is not None and sources.shape == (n, 1, SIZE, SIZE)
            self.seen_sources.append(sources.clone())
            return sources.clone()  # a "translation" that copies its source face
        if self.mode == "local_edit":  # a clear edit of 4 pixels (1.6% of the face)
            out = sources.clone()
            patch = out[:, :, 6:8, 6:8].int()
            out[:, :, 6:8, 6:8] = torch.where(patch < 128, patch + 60, patch - 60).to(torch.uint8)
            return out
        if self.mode == "swap":  # each sample is another source face of the batch, unedited
            return sources.roll(1, 0).clone()
        if self.mode == "copy":  # memorised real training faces
            train = self.real.images[self.real.indices("train")]
            return train[torch.randint(0, len(train), (n,), generator=g)].clone()
        if self.mode == "brightdark":  # even positions bright, odd positions dark
            out = torch.full((n, 1, SIZE, SIZE), 30, dtype=torch.uint8)
            out[0::2] = 200
            return out
        return torch.randint(0, 256, (n, 1, SIZE, SIZE), generator=g, dtype=torch.uint8)


def fake_classifier(path: Path, favourite: str) -> Path:
    """A real zhu-cnn checkpoint whose output is (almost surely) ``favourite``."""
    torch.manual_seed(0)
    model = build_classifier("zhu-cnn", len(CLASSES), SIZE)
    last = model.head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[CLASSES.index(favourite)] = 20.0
    save_checkpoint(path, {"model_name": "zhu-cnn", "classes": list(CLASSES),
                           "image_size": SIZE, "crop_size": None, "tta": "flip",
                           "model": model.state_dict()})
    return path


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.png"))


def check_invariants(manifest: dict) -> None:
    for c in manifest["counts"].values():
        assert c["generated"] == (c["kept"] + c["dropped_quality"] + c["dropped_memorisation"]
                                  + c["dropped_unchanged"] + c["dropped_duplicate"]
                                  + c["surplus"])
        assert c["shortfall"] == c["requested"] - c["kept"]


def test_balance_counts_labels_and_manifest(tmp_path: Path) -> None:
    real = make_real()
    ckpt = tmp_path / "gen.pt"
    ckpt.write_bytes(b"generator weights")
    out = tmp_path / "synth"
    m = build_synthetic_set(FakeGenerator(), real, make_plan(seed=3), out, ckpt)
    want = {"angry": 4, "disgust": 8, "happy": 0, "neutral": 2}
    assert {e: c["kept"] for e, c in m["counts"].items()} == want
    assert {e: c["requested"] for e, c in m["counts"].items()} == want
    check_invariants(m)
    for emotion, n in want.items():
        files = pngs(out / emotion)
        assert len(files) == n
        assert all(f.name.startswith(f"{emotion}_3_") for f in files)
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["complete"] is True
    assert on_disk["generator"]["name"] == "fake"
    assert on_disk["generator"]["checkpoint"] == str(ckpt)
    assert on_disk["generator"]["sha256"] == build_mod.file_sha256(ckpt)
    assert len(on_disk["generator"]["sha256"]) == 64
    assert on_disk["real"]["train_counts"] == TRAIN
    assert on_disk["real"]["fingerprint"] == real.fingerprint()
    assert on_disk["plan"]["mode"] == "balance" and on_disk["plan"]["seed"] == 3
    assert on_disk["feraug_version"]
    assert len(on_disk["files"]) == 14 and on_disk["seeds"]["batches"]


def test_multiply_counts_and_determinism(tmp_path: Path) -> None:
    real = make_real()
    plan = make_plan(mode="multiply", k=1.5, emotions=["Disgust", "happy"],
                     batch_size=4)
    a = build_synthetic_set(FakeGenerator(), real, plan, tmp_path / "a")
    b = build_synthetic_set(FakeGenerator(), real, plan, tmp_path / "b")
    assert {e: c["kept"] for e, c in a["counts"].items()} == {"disgust": 3, "happy": 15}
    assert a["counts"] == b["counts"] and a["generator"]["sha256"] is None
    fa, fb = pngs(tmp_path / "a"), pngs(tmp_path / "b")
    assert [f.name for f in fa] == [f.name for f in fb]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(fa, fb, strict=True))
    # each file can be regenerated from the batch seed recorded in the manifest
    rec = next(r for r in a["files"] if r["emotion"] == "happy" and r["index"] == 5)
    batch = next(bt for bt in a["seeds"]["batches"] if bt["seed"] == rec["seed"])
    again = FakeGenerator().sample("happy", batch["n"], rec["seed"])[rec["position"]]
    loaded = load_synthetic(tmp_path / "a", CLASSES, SIZE)
    i = loaded.source_ids.index(f"synthetic:a/{rec['file']}")
    assert torch.equal(loaded.images[i], again)
    assert rec["seed"] == derive_seed(0, "happy", batch["batch"])


def test_plan_validation_and_emotion_choice(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs k"):
        make_plan(mode="multiply")
    with pytest.raises(ConfigError, match="k"):
        make_plan(mode="multiply", k=6)
    with pytest.raises(ConfigError, match="unknown emotion"):
        make_plan(emotions=["grumpy"])
    real = make_real()
    gen = FakeGenerator(classes=("disgust", "fear"))
    with pytest.raises(ConfigError, match="not a class of the real"):
        build_synthetic_set(gen, real, make_plan(emotions=["fear"]), tmp_path / "x")
    with pytest.raises(ConfigError, match="cannot make"):
        build_synthetic_set(gen, real, make_plan(emotions=["happy"]), tmp_path / "x")
    m = build_synthetic_set(gen, real, make_plan(), tmp_path / "y")  # default: disgust only
    assert list(m["counts"]) == ["disgust"]
    # like CycleGAN: knows every class of its data, makes one
    one_way = FakeGenerator("translate", makes=("angry",))
    m = build_synthetic_set(one_way, real, make_plan(delta=0), tmp_path / "z")
    assert list(m["counts"]) == ["angry"]
    with pytest.raises(ConfigError, match="cannot make 'happy'"):
        build_synthetic_set(one_way, real, make_plan(emotions=["happy"]), tmp_path / "z2")


def test_quality_filter_with_real_checkpoint(tmp_path: Path) -> None:
    real = make_real()
    clf = fake_classifier(tmp_path / "clf.pt", favourite="disgust")
    plan = make_plan(emotions=["disgust", "neutral"], filter_model=str(clf), tau=0.5,
                     delta=0, max_attempts=2, oversample=1.5)
    m = build_synthetic_set(FakeGenerator(), real, plan, tmp_path / "out")
    check_invariants(m)
    d, n = m["counts"]["disgust"], m["counts"]["neutral"]
    assert d["kept"] == 8 and d["dropped_quality"] == 0 and d["shortfall"] == 0
    assert n["kept"] == 0 and n["dropped_quality"] == n["generated"] == 3 + 3
    assert n["shortfall"] == 2 and m["complete"] is False
    assert m["filter"]["model_name"] == "zhu-cnn" and m["filter"]["tau"] == 0.5
    assert all(r["p_emotion"] >= 0.5 for r in m["files"])
    assert not pngs(tmp_path / "out" / "neutral")


def test_quality_filter_oversampling_meets_target(tmp_path: Path, monkeypatch) -> None:
    """A (patched) classifier that accepts bright faces: half of each batch passes."""

    def bright(model, images, crop_size, tta, batch_size):
        p = (images.float().mean(dim=(1, 2, 3)) > 127).float()
        return p[:, None].expand(-1, len(CLASSES)).clone()

    monkeypatch.setattr(filters_mod, "predict_proba", bright)
    clf = fake_classifier(tmp_path / "clf.pt", favourite="happy")
    plan = make_plan(emotions=["disgust"], filter_model=str(clf), tau=0.5, oversample=1.5,
                     unique=False)  # its bright faces are all alike
    m = build_synthetic_set(FakeGenerator("brightdark"), make_real(), plan, tmp_path / "o")
    d = m["counts"]["disgust"]  # 8 wanted: round 1 makes 12 (6 pass), round 2 makes 3 (2 pass)
    assert (d["requested"], d["kept"], d["rounds"]) == (8, 8, 2)
    assert (d["generated"], d["dropped_quality"], d["surplus"]) == (15, 7, 0)
    assert m["complete"] is True
    loaded = load_synthetic(tmp_path / "o", CLASSES, SIZE)
    assert len(loaded) == 8 and bool((loaded.images == 200).all())


def test_a_per_emotion_tau_is_calibrated_on_real_validation_faces(tmp_path: Path,
                                                                   monkeypatch) -> None:
    """tau_quantile: each emotion's tau is that quantile of the filter's probability on the
    real *validation* faces of the emotion (never train or test faces), recorded in the
    manifest; samples are held to their emotion's tau."""

    def brightness(model, images, crop_size, tta, batch_size):
        p = images.float().mean(dim=(1, 2, 3)) / 255
        return p[:, None].expand(-1, len(CLASSES)).clone()

    monkeypatch.setattr(filters_mod, "predict_proba", brightness)
    real = make_real()
    # the validation faces set the bar: angry's are dark (tau 0.1), disgust's bright (0.9)
    val = real.indices("val")
    for emotion, level in (("angry", 25), ("disgust", 230)):
        real.images[val[real.labels[val] == CLASSES.index(emotion)]] = level
    clf = fake_classifier(tmp_path / "clf.pt", favourite="happy")
    plan = make_plan(emotions=["angry", "disgust"], filter_model=str(clf), tau_quantile=0.5,
                     delta=0, max_attempts=1, oversample=1.0)
    m = build_synthetic_set(FakeGenerator("brightdark"), real, plan, tmp_path / "o")
    taus = m["filter"]["tau_by_emotion"]
    assert taus == {"angry": pytest.approx(25 / 255, abs=1e-5),
                    "disgust": pytest.approx(230 / 255, abs=1e-5)}
    # bright (200) and dark (30) samples alternate: angry keeps both kinds, disgust neither
    assert m["counts"]["angry"]["dropped_quality"] == 0
    assert m["counts"]["disgust"]["kept"] == 0
    with pytest.raises(ConfigError, match="filter_model"):
        make_plan(tau_quantile=0.5)


def test_memorisation_guard_drops_copies(tmp_path: Path) -> None:
    real = make_real()
    plan = make_plan(emotions=["angry", "disgust"], delta=0.05, max_attempts=3)
    m = build_synthetic_set(FakeGenerator("copy", real), real, plan, tmp_path / "o")
    check_invariants(m)
    for c in m["counts"].values():
        assert c["kept"] == 0 and c["generated"] > 0 and c["dropped_memorisation"] > 0
        # a training face drawn twice is dropped the second time as a copy of the first draft
        assert c["dropped_memorisation"] + c["dropped_duplicate"] == c["generated"]
    assert not pngs(tmp_path / "o") and m["totals"]["shortfall"] == 12

    guard = MemorisationGuard(real.images[real.indices("train")], delta=0.05, chunk=5)
    near = real.images[:3].int() + torch.tensor([2, -2]).repeat(128)[: SIZE * SIZE].view(
        1, 1, SIZE, SIZE)
    near = near.clamp(0, 255).to(torch.uint8)
    noise = torch.randint(0, 256, (3, 1, SIZE, SIZE), generator=torch.Generator().manual_seed(9),
                          dtype=torch.uint8)
    keep, rms = guard.keep(torch.cat([near, noise]))
    assert keep.tolist() == [False] * 3 + [True] * 3
    assert float(rms[:3].max()) < 0.02 and float(rms[3:].min()) > 0.2
    _, where = guard.nearest(real.images[:3])
    assert where.tolist() == [0, 1, 2]


def test_a_deterministic_translator_gives_each_face_once(tmp_path: Path) -> None:
    """Asked for more faces than it has sources, or drawing the same sources again in a
    filter round, a translator without a noise input repeats itself: the copies are dropped
    and counted, and the shortfall is reported, unless the plan allows copies."""
    real = make_real()
    plan = dict(mode="multiply", k=2, emotions=["happy"], max_attempts=3, batch_size=7)
    unique = build_synthetic_set(FakeGenerator("local_edit"), real, make_plan(**plan),
                                 tmp_path / "u")
    check_invariants(unique)
    c = unique["counts"]["happy"]
    assert c["requested"] == 20 and c["kept"] == TRAIN["neutral"] == c["distinct_sources"]
    assert c["dropped_duplicate"] == c["generated"] - TRAIN["neutral"] > 0
    assert c["shortfall"] == 12 and not unique["complete"]
    # the first batch of nothing but repeats ends the emotion: no further rounds of copies
    assert c["exhausted"] and c["rounds"] == 1 and c["generated"] == 21  # 3 batches of 7
    written = [p.read_bytes() for p in pngs(tmp_path / "u")]
    assert len(written) == len(set(written)) == TRAIN["neutral"]

    copies = build_synthetic_set(FakeGenerator("local_edit"), real,
                                 make_plan(**plan, unique=False), tmp_path / "c")
    check_invariants(copies)
    assert copies["counts"]["happy"]["kept"] == 20
    assert copies["counts"]["happy"]["dropped_duplicate"] == 0
    # with a filter, a repeat of a face the filter dropped is not filtered again: a copy
    clf = fake_classifier(tmp_path / "clf.pt", favourite="happy")
    filtered = build_synthetic_set(FakeGenerator("local_edit"), real,
                                   make_plan(**plan, filter_model=str(clf)), tmp_path / "f")
    check_invariants(filtered)
    f = filtered["counts"]["happy"]
    assert f["kept"] == TRAIN["neutral"] and f["dropped_quality"] == 0 and f["exhausted"]
    # a generator that draws new faces is not affected
    noise = build_synthetic_set(FakeGenerator("noise"), real, make_plan(**plan, delta=0),
                                tmp_path / "n")
    assert noise["counts"]["happy"]["kept"] == 20


def test_translators_are_judged_by_their_edit_and_guarded_against_other_faces(
        tmp_path: Path) -> None:
    """A clear local edit is kept although its whole-face RMS to its own source is under
    delta; an unedited face is dropped as unchanged (or kept with min_change 0: its own
    source is not a memorised face); another training face passed off as a translation is
    dropped by the memorisation guard."""
    real = make_real()
    local = build_synthetic_set(FakeGenerator("local_edit"), real,
                                make_plan(emotions=["disgust"], max_attempts=1), tmp_path / "a")
    check_invariants(local)
    c = local["counts"]["disgust"]
    assert c["kept"] == c["requested"] and c["dropped_memorisation"] == 0
    assert c["edit_size_min"] == pytest.approx(60 / 255, abs=1e-3)
    assert all(r["nearest_real_rms"] > 0.05 for r in local["files"])
    src = real.images[real.source_ids.index(local["files"][0]["source"])]
    rms_to_source = float(((torch.from_numpy(cv2.imread(
        str(tmp_path / "a" / local["files"][0]["file"]), cv2.IMREAD_GRAYSCALE)).float()
        - src[0].float()) / 255).pow(2).mean().sqrt())
    assert rms_to_source < 0.05  # what the guard used to drop

    copies = build_synthetic_set(FakeGenerator("translate"), real,
                                 make_plan(emotions=["disgust"], min_change=0, max_attempts=1),
                                 tmp_path / "b")
    assert copies["counts"]["disgust"]["kept"] == copies["counts"]["disgust"]["requested"]

    swapped = build_synthetic_set(FakeGenerator("swap"), real,
                                  make_plan(emotions=["disgust"], max_attempts=1), tmp_path / "c")
    check_invariants(swapped)
    c = swapped["counts"]["disgust"]
    assert c["kept"] == 0 and c["dropped_unchanged"] == 0
    # every draft is a memorised face; those drawn from a second pass over the 8 sources
    # repeat a draft already dropped, and count as copies
    assert c["dropped_memorisation"] == TRAIN["neutral"]
    assert c["dropped_memorisation"] + c["dropped_duplicate"] == c["generated"]


def test_refusals(tmp_path: Path) -> None:
    real = make_real(root=tmp_path / "data")
    (tmp_path / "data").mkdir()
    gen, plan = FakeGenerator(), make_plan()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(FeraugError, match="not empty"):
        build_synthetic_set(gen, real, plan, busy)
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]
    for bad in (tmp_path / "fer" / "PrivateTest" / "synth", tmp_path / "x" / "VAL",
                tmp_path / "test"):
        with pytest.raises(FeraugError, match="validation/test"):
            build_synthetic_set(gen, real, plan, bad)
        assert not bad.exists()
    with pytest.raises(FeraugError, match="inside the real data set"):
        build_synthetic_set(gen, real, plan, tmp_path / "data" / "train" / "synth")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert build_synthetic_set(gen, real, plan, empty)["complete"]
    tiny = FaceDataset(images=torch.zeros(1, 1, 8, 8, dtype=torch.uint8),
                       labels=torch.tensor([0]), classes=CLASSES, split=["train"],
                       source_ids=["a"])
    with pytest.raises(ConfigError, match="px"):
        build_synthetic_set(gen, tiny, plan, tmp_path / "s")
