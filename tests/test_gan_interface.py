"""The generator interface: every registered generator offers all of it, typed, and a
generator's training record (``meta``) reads every checkpoint written before, unknown keys
included, and writes it back unchanged."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from test_gan import CLASSES, TINY, tiny_model

from feraug.gan import GENERATORS, GeneratorMeta, load_generator, save_generator
from feraug.gan.base import GeneratorModel
from feraug.synth.plan import SampleGenerator, generator_emotions, source_emotion

PKG = Path(__file__).resolve().parents[1] / "src" / "feraug"

#: A record as older checkpoints hold it: a split from before ``data_spec``, and a key this
#: version does not know.
OLD_META = {"data": "data/ck", "data_format": "folder", "data_fingerprint": "f" * 64,
            "split": {"class_map": None, "folds": 3, "fold": 1, "seed": 4},
            "guide_sha256": "a" * 64, "written_by_a_later_version": {"x": [1, 2]}}

pytestmark = pytest.mark.usefixtures("one_thread")


def variants() -> list[tuple[str, dict]]:
    """Every registered generator, and the settings that change what it makes or takes."""
    assert set(TINY) == set(GENERATORS), "give every registered generator a tiny config"
    return [*((name, {}) for name in sorted(GENERATORS)), ("stargan", {"source": "neutral"}),
            ("cyclegan", {"source": "happy", "target": "neutral"})]


@pytest.mark.parametrize(("name", "extra"), variants())
def test_every_generator_implements_the_interface(name: str, extra: dict) -> None:
    model = tiny_model(name, **extra)
    assert isinstance(model, GeneratorModel) and isinstance(model, SampleGenerator)
    made = model.emotions()
    assert isinstance(made, tuple) and made and set(made) <= set(model.classes) == set(CLASSES)
    assert generator_emotions(model) == tuple(sorted(made, key=CLASSES.index))
    assert isinstance(model.needs_sources, bool)
    assert model.source_emotion is None or model.source_emotion in model.classes
    if not model.needs_sources:
        assert model.source_emotion is None
    assert source_emotion(model) == model.source_emotion
    if extra.get("source"):
        assert model.source_emotion == extra["source"]
    assert isinstance(model.meta, GeneratorMeta) and model.meta.to_dict() == {}


def test_the_record_changes_only_through_the_generator() -> None:
    model = tiny_model("cgan")
    with pytest.raises(AttributeError):
        model.meta = GeneratorMeta()  # type: ignore[misc]
    with pytest.raises(ValidationError):
        model.meta.data = "elsewhere"  # type: ignore[misc]
    model.update_meta({"data": "a", "guide_sha256": "b"})
    model.update_meta({"data": "c", "something_new": 1})
    assert model.meta.to_dict() == {"data": "c", "guide_sha256": "b", "something_new": 1}
    with pytest.raises(ValidationError):  # what is recorded now is checked
        model.update_meta({"translator_from_step": "not a step"})
    model.set_meta(GeneratorMeta(data="d"))
    assert model.meta.to_dict() == {"data": "d"}


def test_an_older_checkpoints_record_loads_and_is_written_back_unchanged(tmp_path: Path
                                                                          ) -> None:
    path = tmp_path / "gen.pt"
    save_generator(tiny_model("stargan"), path)
    state = torch.load(path, weights_only=True)
    torch.save({**state, "meta": OLD_META}, path)
    model = load_generator(path)
    meta = model.meta
    assert (meta.data, meta.split, meta.guide_sha256) == ("data/ck", OLD_META["split"], "a" * 64)
    assert meta.data_spec is None and meta.train_content is None
    assert meta.model_extra == {"written_by_a_later_version": {"x": [1, 2]}}
    save_generator(model, tmp_path / "again.pt")
    assert torch.load(tmp_path / "again.pt", weights_only=True)["meta"] == OLD_META


def test_a_record_of_an_unexpected_type_still_loads_as_stored() -> None:
    stored = {"data": "data/ck", "translator_from_step": "7", "data_spec": None}
    meta = GeneratorMeta.from_stored(stored)
    assert meta.data == "data/ck" and meta.to_dict() == stored
    assert GeneratorMeta.from_stored(None).to_dict() == {}


def test_no_consumer_probes_a_generator_with_getattr() -> None:
    """The interface is declared on GeneratorModel, so nobody needs to ask whether it is
    there (classifier checkpoints and configs are other objects; their names differ)."""
    names = {"meta", "source_emotion", "target_emotion", "target_emotions", "needs_sources",
             "emotions", "guide"}
    found = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr") and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value in names):
                found.append(f"{path.relative_to(PKG)}:{node.lineno}")
    assert not found, f"getattr probes of the generator interface: {found}"
