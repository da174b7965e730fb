"""`feraug synth`: where translators' source faces come from (their source emotion, every
other emotion, or the emotion a plan names), always the train split."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_synth import CLASSES, TRAIN, FakeGenerator, make_real

from feraug.errors import ConfigError
from feraug.gan import build_generator
from feraug.synth.build import build_synthetic_set
from feraug.synth.plan import make_plan


def test_translator_without_source_emotion_uses_other_emotions(tmp_path: Path) -> None:
    real = make_real()
    gen = FakeGenerator("translate")  # like StarGAN without a fixed source: any emotion
    gen.source_emotion = None
    m = build_synthetic_set(gen, real, make_plan(emotions=["disgust"], delta=0, min_change=0),
                            tmp_path / "o")
    assert m["counts"]["disgust"]["kept"] == 8 and m["generator"]["source_emotion"] is None
    disgust = real.images[real.labels == CLASSES.index("disgust")].flatten(1)
    train = real.images[real.indices("train")].flatten(1)
    for img in torch.cat(gen.seen_sources).flatten(1):
        assert not bool((disgust == img).all(1).any())
        assert bool((train == img).all(1).any())


def test_a_plan_can_change_a_translators_sources(tmp_path: Path) -> None:
    """`sources: any` (every emotion but the one made) and `sources: <emotion>` override the
    translator's own source emotion; a noise-to-face generator has no sources to change."""
    real = make_real()
    train = real.images[real.indices("train")]
    train_labels = real.labels[real.indices("train")]

    def labels_of(faces: torch.Tensor) -> set[str]:
        same = (faces.flatten(1)[:, None] == train.flatten(1)[None]).all(2)
        return {CLASSES[int(train_labels[same[i].nonzero()[0, 0]])] for i in range(len(faces))}

    gen = FakeGenerator("translate")
    m = build_synthetic_set(gen, real, make_plan(emotions=["disgust"], delta=0, min_change=0,
                                                 sources="any"), tmp_path / "any")
    assert m["generator"]["source_emotion"] is None and m["plan"]["sources"] == "any"
    made_from = labels_of(torch.cat(gen.seen_sources))
    assert "disgust" not in made_from and len(made_from) > 1
    gen = FakeGenerator("translate")
    build_synthetic_set(gen, real, make_plan(emotions=["disgust"], delta=0, min_change=0,
                                             sources="Happy"), tmp_path / "happy")
    assert labels_of(torch.cat(gen.seen_sources)) == {"happy"}
    # build_synthetic_set hands the plan's sources to the generator, which may refuse them
    for tiny, refusal in (("cgan", "makes faces from noise"), ("cyclegan", "cannot be changed")):
        model = build_generator(tiny, None if tiny == "cgan" else
                                {"ngf": 4, "n_blocks": 1, "ndf": 4}, CLASSES, 32)
        with pytest.raises(ConfigError, match=refusal):
            model.use_sources(None)
    with pytest.raises(ConfigError, match="sources"):
        make_plan(sources="boredom")


def test_translator_sources_come_from_train_only(tmp_path: Path) -> None:
    real = make_real()
    gen = FakeGenerator("translate")
    plan = make_plan(mode="multiply", k=2, delta=0, min_change=0, batch_size=5, unique=False)
    m = build_synthetic_set(gen, real, plan, tmp_path / "o")
    assert "neutral" not in m["counts"]  # a translator's source emotion is not a default
    assert m["generator"]["source_emotion"] == "neutral"
    train_neutral = real.images[(real.labels == CLASSES.index("neutral"))
                                & torch.tensor([s == "train" for s in real.split])]
    held_out = real.images[torch.tensor([s != "train" for s in real.split])]
    used = torch.cat(gen.seen_sources)
    assert len(used) == m["totals"]["generated"] == 2 * (6 + 2 + 10)
    flat_train = train_neutral.flatten(1)
    for img in used.flatten(1):
        assert bool((flat_train == img).all(1).any())
        assert not bool((held_out.flatten(1) == img).all(1).any())
    assert all(r["source"] in real.source_ids for r in m["files"])
    assert m["counts"]["happy"]["distinct_sources"] == TRAIN["neutral"]  # 20 from 8 faces
    # by default, "translations" that copy their source are dropped as unchanged
    m2 = build_synthetic_set(FakeGenerator("translate"), real,
                             make_plan(emotions=["disgust"], max_attempts=1, unique=False),
                             tmp_path / "o2")
    assert m2["counts"]["disgust"]["dropped_unchanged"] == m2["counts"]["disgust"]["generated"]
