"""Synthetic sets joining a real data set (train split only, the same real split), and the
check that a generator was trained on the split it is used with."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_synth import CLASSES, SIZE, FakeGenerator, make_real

from feraug.data.synthetic import load_synthetic, split_fingerprint, with_synthetic
from feraug.errors import DataError
from feraug.gan.meta import GeneratorMeta
from feraug.synth.build import build_synthetic_set
from feraug.synth.plan import make_plan


def test_load_synthetic_and_with_synthetic(tmp_path: Path) -> None:
    real = make_real()
    out = tmp_path / "synth"
    build_synthetic_set(FakeGenerator(), real, make_plan(), out)
    synth = load_synthetic(out, CLASSES, SIZE)
    assert len(synth) == 14 and bool(synth.synthetic.all()) and set(synth.split) == {"train"}
    assert synth.class_counts() == {"angry": 4, "disgust": 8, "happy": 0, "neutral": 2}
    resized = load_synthetic(out, CLASSES, 32)
    assert resized.size == 32

    both = with_synthetic(real, [out])
    assert len(both) == len(real) + 14
    assert both.class_counts("train") == {"angry": 10, "disgust": 10, "happy": 10, "neutral": 10}
    assert both.class_counts("val") == real.class_counts("val")
    assert both.class_counts("test") == real.class_counts("test")
    flagged = [s for s, f in zip(both.split, both.synthetic.tolist(), strict=True) if f]
    assert len(flagged) == 14 and set(flagged) == {"train"}
    assert split_fingerprint(both) == split_fingerprint(real)
    assert with_synthetic(real, []) is real

    other = make_real().with_split(["train"] * len(real))  # val/test images moved into train
    with pytest.raises(DataError, match="different data set or split"):
        with_synthetic(other, [out])
    assert len(with_synthetic(other, [out], strict=False)) == len(real) + 14
    assert not (out / "happy").exists()  # nothing requested, no folder
    with pytest.raises(DataError, match="'disgust' is not a class"):
        load_synthetic(out, ("angry", "happy", "neutral"), SIZE)
    plain = tmp_path / "plain"
    (plain / "happy").mkdir(parents=True)
    with pytest.raises(DataError, match=re.escape(str(plain))):
        load_synthetic(plain, CLASSES, SIZE)


def test_generator_split_check_tells_a_refold_from_another_data_set(make_ckplus) -> None:
    from feraug.data.load import load_dataset
    from feraug.synth.safety import check_generator_split

    root = make_ckplus(subjects=12, per_class=2)
    fold0, fold1 = load_dataset(root, fold=0, folds=3), load_dataset(root, fold=1, folds=3)
    assert fold0.content_fingerprint() == fold1.content_fingerprint()  # same faces, re-cut
    meta = GeneratorMeta(data_content=fold0.content_fingerprint(),
                         train_content=fold0.subset("train").content_fingerprint())
    check_generator_split(meta, fold0)  # same split: fine
    with pytest.raises(DataError, match="different train split"):
        check_generator_split(meta, fold1)
    other = load_dataset(make_ckplus(name="other", subjects=12, per_class=2, seed=5), folds=3)
    assert other.content_fingerprint() != fold0.content_fingerprint()
    check_generator_split(meta, other)  # another data set: no leak possible
    check_generator_split(GeneratorMeta(), fold1)  # checkpoints without the record pass
