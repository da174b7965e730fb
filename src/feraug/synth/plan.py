"""What ``feraug synth`` should make: a :class:`SynthPlan`, and how it turns into per-emotion
sample counts for a given generator and real data set."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from feraug.emotions import canonical, canonical_sources, sort_classes
from feraug.errors import ConfigError, DataError, validate_config

if TYPE_CHECKING:
    from feraug.gan.meta import GeneratorMeta

#: Folder names that hold a data set's validation or test images; synthetic sets never go there.
HELD_OUT_NAMES: frozenset[str] = frozenset(
    {"publictest", "privatetest", "val", "valid", "validation", "test", "testing"}
)


@runtime_checkable
class SampleGenerator(Protocol):
    """What the synthesis step needs from a trained generator: the part of
    :class:`feraug.gan.base.GeneratorModel`'s interface it uses (documented there)."""

    name: str
    classes: tuple[str, ...]
    image_size: int
    needs_sources: bool
    source_emotion: str | None

    @property
    def meta(self) -> GeneratorMeta:
        """The generator's training record (data, split, guide)."""
        ...

    def emotions(self) -> tuple[str, ...]:
        """The emotions it can make, a subset of ``classes``."""
        ...

    def sample(self, emotion: str, n: int, seed: int,
               sources: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` uint8 faces ``[n,1,S,S]`` of ``emotion``; translators need ``sources``."""
        ...

    def use_sources(self, emotion: str | None) -> None:
        """Translate faces of ``emotion`` (None or ``"any"``: of every other emotion) from
        now on."""
        ...


class SynthPlan(BaseModel):
    """Which emotions to synthesise, how many, and which samples to throw away.

    - ``mode="balance"``: every chosen emotion is filled up to the largest real class count of
      the train split (an emotion already that large gets nothing).
    - ``mode="multiply"``: ``k`` x each chosen emotion's real train count (0.5 <= k <= 5).
    - ``filter_model`` + ``tau``: keep a sample only when that classifier gives the requested
      emotion a probability >= ``tau``. With ``tau_quantile`` each emotion gets its own tau:
      that quantile of the filter's probabilities on real validation faces of the emotion
      (validation, never test, chooses it; the faces are only scored).
    - ``delta``: memorisation guard, drop samples whose RMS pixel distance (pixels in [0,1]) to
      the nearest real training image is < ``delta``; 0 switches it off. A translator's
      sample is compared with every training face except its own source: an edited training
      face is meant to resemble the face it edits, and a whole-face RMS would call a clear
      local edit (a lowered brow) a copy of it.
    - ``min_change`` (translators): drop samples whose edit is too small to carry the
      emotion, the 99th percentile of the absolute pixel change from their own source below
      ``min_change`` (0.05: at least 1% of the pixels moved by 13 grey levels); 0 keeps all.
    - ``unique``: drop a sample identical to an earlier draft of its emotion (kept or
      dropped: the filters would decide the same again). A translator without a noise or
      style input gives one face per source, so a plan that asks for more faces than there
      are sources, or a filter round that draws the same sources again, would otherwise write
      copies: oversampling dressed up as new faces. A batch of nothing but copies ends that
      emotion (``exhausted`` in the manifest) and ``shortfall`` says how many were missing;
      ``unique: false`` allows the copies.
    - ``oversample`` / ``max_attempts``: when filters drop samples, each round generates
      ``ceil(missing * oversample)`` candidates, at most ``max_attempts`` rounds per emotion.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    emotions: list[str] | None = Field(
        None, description="emotions to synthesise; default: all the generator can make")
    mode: Literal["balance", "multiply"] = "balance"
    k: float | None = Field(None, ge=0.5, le=5.0, description="multiplier for mode=multiply")
    seed: int = Field(0, ge=0)
    filter_model: str | None = Field(None, description="classifier checkpoint for the filter "
                                     "('bundled': feraug's default model)")
    tau: float = Field(0.5, ge=0.0, le=1.0, description="minimum probability of the emotion")
    tau_quantile: float | None = Field(
        None, ge=0.0, le=1.0, description="instead of one tau, one per emotion: this quantile "
        "of the filter's probability of the emotion on the real *validation* faces of that "
        "emotion (0.5: as convincing to the filter as the median real face); keeps emotions "
        "the filter is unsure of even on real faces (fear, sad)")
    delta: float = Field(0.05, ge=0.0, le=1.0, description="minimum RMS distance to real train "
                         "(translators: to any but the own source)")
    min_change: float = Field(0.05, ge=0.0, le=1.0, description="translators: minimum edit, "
                              "the 99th percentile of the absolute change from the source")
    unique: bool = Field(True, description="drop a sample identical to an earlier draft of "
                         "its emotion (a deterministic translator repeats itself)")
    sources: str | None = Field(
        None, description="translators trained between every pair of emotions (stargan): "
        "translate faces of this emotion, or 'any' (every emotion but the one made), instead "
        "of the source emotion the generator was trained with")
    oversample: float = Field(1.5, ge=1.0, le=20.0)
    max_attempts: int = Field(5, ge=1, le=100)
    batch_size: int = Field(256, ge=1, le=65536)

    @field_validator("emotions")
    @classmethod
    def _canonical_emotions(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = [v for v in (s.strip() for s in value) if v]
        if not names:
            raise ValueError("no emotions given")
        try:
            return list(sort_classes(names))
        except DataError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("sources")
    @classmethod
    def _canonical_sources(cls, value: str | None) -> str | None:
        try:
            return None if value is None else canonical_sources(value)
        except DataError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _quantile_needs_a_filter(self) -> SynthPlan:
        if self.tau_quantile is not None and not self.filter_model:
            raise ValueError("tau_quantile needs a filter_model")
        return self

    @model_validator(mode="after")
    def _mode_needs_k(self) -> SynthPlan:
        if self.mode == "multiply" and self.k is None:
            raise ValueError("mode 'multiply' needs k (0.5 to 5)")
        if self.mode == "balance" and self.k is not None:
            raise ValueError("k is only used with mode 'multiply'")
        return self


def make_plan(**values: object) -> SynthPlan:
    """Build a :class:`SynthPlan`, turning validation problems into one ConfigError line."""
    return validate_config(SynthPlan, values, "invalid synthesis plan", whole="plan")


def source_emotion(generator: SampleGenerator) -> str | None:
    """The emotion a translator starts from; ``None`` for noise-to-face generators and for
    translators that start from any emotion (then every other emotion's faces are sources)."""
    if not generator.needs_sources:
        return None
    name = generator.source_emotion
    return canonical(name, source=f"generator {generator.name}") if name else None


def generator_emotions(generator: SampleGenerator) -> tuple[str, ...]:
    """The emotions a generator can really make (its ``emotions()``), canonical and in
    canonical order: a one-way translator (CycleGAN) knows every class of its data but makes
    only its target emotion."""
    source = f"generator {generator.name}"
    return sort_classes([canonical(c, source=source) for c in generator.emotions()])


def resolve_emotions(plan: SynthPlan, generator: SampleGenerator,
                     real_classes: tuple[str, ...]) -> list[str]:
    """The emotions to synthesise, in canonical order.

    Default: every emotion the generator makes that the real data set has, except a
    translator's own source emotion (translating neutral to neutral adds no new expression).
    Explicitly requested emotions must be made by the generator and exist in the real set.
    """
    made = generator_emotions(generator)
    if plan.emotions is None:
        src = source_emotion(generator)
        chosen = [c for c in made if c in real_classes and c != src]
        if not chosen:
            raise ConfigError(f"generator {generator.name!r} makes {list(made)}, none of which "
                              f"is a class of the real data set {list(real_classes)}")
        return chosen
    for emotion in plan.emotions:
        if emotion not in made:
            raise ConfigError(f"generator {generator.name!r} cannot make {emotion!r} "
                              f"(it makes: {', '.join(made)})")
        if emotion not in real_classes:
            raise ConfigError(f"{emotion!r} is not a class of the real data set "
                              f"(classes: {', '.join(real_classes)})")
    return list(plan.emotions)


def target_counts(plan: SynthPlan, emotions: list[str],
                  train_counts: dict[str, int]) -> dict[str, int]:
    """How many synthetic images of each emotion the plan asks for."""
    if plan.mode == "balance":
        top = max(train_counts.values(), default=0)
        return {e: max(0, top - train_counts.get(e, 0)) for e in emotions}
    assert plan.k is not None  # guaranteed by the validator
    return {e: int(math.floor(plan.k * train_counts.get(e, 0) + 0.5)) for e in emotions}
