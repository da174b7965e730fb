"""Two-stage synthesis (Gholipour Picha et al. 2023): first make a new person, then give them
the requested expression.

- Stage 1, identity generator: an unconditional noise-to-face generator with a single class,
  ``cgan``'s StyleGAN2-style networks or ``fastgan``'s (``identity_model``), trained on all
  training faces (``identity_data: all``) or on the neutral ones only
  (``identity_data: neutral``).
- Stage 2, expression translator: a ``stargan`` translator trained on all training faces.

``sample(emotion, n, seed)`` draws ``n`` identities from noise seeded by ``seed`` and
translates them into ``emotion``; it needs no real face. Both stages are trained in the same
run, interleaved step by step (each step is one identity-GAN step on its own batch and one
translator step on a class-balanced batch). The two stages share no parameters and no losses,
so this is equivalent to training stage 1 and then stage 2 for the same number of steps; it
only halves the bookkeeping (one run, one checkpoint). Top-level ``steps``, ``batch_size``,
``seed``, ``amp`` and ``flip`` apply to both stages.

To reuse a translator trained on its own (``feraug gan train --model stargan``), set
``translator_from`` to its checkpoint: a fresh run then copies that translator (its config and
weights, into the new checkpoint, so the file is self-contained) and trains stage 1 only.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from feraug.errors import ConfigError
from feraug.gan.base import GanConfig, GeneratorModel, to_uint8
from feraug.gan.cgan import CGan, CGanConfig
from feraug.gan.fastgan import FastGan, FastGanConfig
from feraug.gan.meta import GeneratorMeta
from feraug.gan.stargan import StarGan
from feraug.gan.stargan_config import StarGanConfig

SHARED = ("steps", "batch_size", "seed", "amp", "flip")
IDENTITY_MODELS = {"cgan": (CGan, CGanConfig), "fastgan": (FastGan, FastGanConfig)}


class TwoStageConfig(GanConfig):
    """twostage settings: the two stages' own configs plus where identities come from."""

    identity_model: Literal["cgan", "fastgan"] = Field(
        "cgan", description="stage 1's networks: cgan (StyleGAN2-style) or fastgan")
    identity: CGanConfig | FastGanConfig = Field(
        default_factory=CGanConfig, description="stage 1 settings (of identity_model)")
    translator: StarGanConfig = Field(default_factory=StarGanConfig,
                                      description="stage 2 (stargan) settings")
    identity_data: Literal["all", "neutral"] = Field(
        "all", description="train the identity generator on all faces or on neutral ones")
    translator_from: str | None = Field(
        None, description="stargan checkpoint to use as a fixed stage 2 (trains stage 1 only)")

    @classmethod
    def same_run_settings(cls, dumped: dict) -> dict:
        """With ``translator_from`` the stored ``translator`` holds the copied checkpoint's
        settings, not the config's: the path is what identifies stage 2."""
        if dumped.get("translator_from"):
            return {k: v for k, v in dumped.items() if k != "translator"}
        return dumped

    @model_validator(mode="before")
    @classmethod
    def _identity_settings_of_its_model(cls, values: Any) -> Any:
        """Read ``identity`` as the settings of ``identity_model`` (a union alone would take
        whichever class accepts the keys first)."""
        if isinstance(values, dict) and not isinstance(values.get("identity"), GanConfig):
            model = values.get("identity_model", "cgan")
            if model in IDENTITY_MODELS:
                settings = IDENTITY_MODELS[model][1].model_validate(values.get("identity") or {})
                values = {**values, "identity": settings}
        return values


class TwoStage(GeneratorModel):
    """Identity generator followed by the expression translator."""

    name = "twostage"
    config_class = TwoStageConfig

    def __init__(self, config: TwoStageConfig, classes: tuple[str, ...], image_size: int) -> None:
        super().__init__(config, classes, image_size)
        if config.identity_data == "neutral" and "neutral" not in self.classes:
            raise ConfigError("twostage: identity_data is 'neutral' but the data has no "
                              "neutral class")
        shared = {k: getattr(config, k) for k in SHARED}
        id_cfg = config.identity.model_copy(update={**shared, "balanced": False})
        tr_cfg = config.translator.model_copy(update={**shared, "source": None})
        self.identity = IDENTITY_MODELS[config.identity_model][0](id_cfg, ("face",), image_size)
        self._set_translator(StarGan(tr_cfg, self.classes, image_size))

    def _set_translator(self, translator: StarGan) -> None:
        self.translator = translator
        self.stages = {"identity": self.identity, "translator": translator}
        self.nets = {f"{s}.{k}": v for s, m in self.stages.items() for k, v in m.nets.items()}
        # the stages step their own optimisers; the trainer sees them here (with several
        # processes it averages their gradients before every step)
        self.optims = {f"{s}.{k}": o for s, m in self.stages.items()
                       for k, o in m.optims.items()}

    def prepare(self) -> None:
        """Copy the ``translator_from`` stargan (config and weights) into stage 2, and record
        the guide of stage 2 (its own or the copied one's) so that the scorer can refuse it as
        a judge."""
        self._copy_translator()
        self.translator.prepare()
        self.update_meta(self.translator.meta.guide_record())

    def set_meta(self, meta: GeneratorMeta) -> None:
        """Restore the record, and hand its guide hashes to stage 2, whose guide loads lazily
        on resume and must refuse a changed file as a single generator does."""
        super().set_meta(meta)
        self.translator.update_meta(meta.guide_record())

    def _copy_translator(self) -> None:
        path = self.config.translator_from
        if path is None:
            return
        from feraug.gan.base import load_generator
        from feraug.io import file_sha256

        loaded = load_generator(path)
        if loaded.name != "stargan" or loaded.classes != self.classes \
                or loaded.image_size != self.image_size:
            raise ConfigError(f"{path}: translator_from needs a stargan checkpoint for classes "
                              f"{', '.join(self.classes)} at {self.image_size} px")
        tr_cfg = loaded.config.model_copy(update={k: getattr(self.config, k) for k in SHARED}
                                          | {"source": None})
        self.config = self.config.model_copy(update={"translator": tr_cfg})
        translator = StarGan(tr_cfg, self.classes, self.image_size)
        for k, net in translator.nets.items():
            net.load_state_dict(loaded.nets[k].state_dict())
        self._set_translator(translator)
        self.update_meta({"translator_from_step": loaded.step,
                          "translator_from_sha256": file_sha256(path)})
        translator.update_meta(loaded.meta.guide_record())

    def streams(self, labels: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
        """Identity faces first (all, or neutral), then the translator's balanced streams."""
        if self.config.identity_data == "neutral":
            pool = (labels == self.classes.index("neutral")).nonzero().flatten()
        else:
            pool = torch.arange(len(labels))
        if self.config.translator_from is not None:
            return [(pool, self.config.batch_size)]
        return [(pool, self.config.batch_size), *self.translator.streams(labels)]

    def _train_step(self, real: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        b = self.config.batch_size
        faces = real[:b]
        id_losses = self.identity.train_step(faces, torch.zeros_like(labels[:b]))
        if self.config.translator_from is not None:  # stage 2 is fixed
            return {f"id_{k}": v for k, v in id_losses.items()}
        tr_losses = self.translator.train_step(real[b:], labels[b:])
        return {**{f"id_{k}": v for k, v in id_losses.items()},
                **{f"tr_{k}": v for k, v in tr_losses.items()}}

    @torch.no_grad()
    def identities(self, n: int, seed: int) -> torch.Tensor:
        """Stage 1 only: ``n`` new faces (uint8, CPU) with whatever expression they have."""
        return to_uint8(self.identity.generate(0, n, seed))

    def sample(self, emotion: str, n: int, seed: int,
               sources: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` new people showing ``emotion`` (``sources`` ignored)."""
        label = self.class_index(emotion)
        faces = self.identity.generate(0, n, seed).float().clamp(-1, 1)
        # seed + 1: the style codes must not repeat the identity noise's first draws
        return to_uint8(self.translator.translate(faces, label, seed + 1))

    @property
    def amp(self) -> bool:
        """Mixed precision flag, shared with both stages."""
        return self._amp

    @amp.setter
    def amp(self, value: bool) -> None:
        self._amp = bool(value)
        for stage in getattr(self, "stages", {}).values():
            stage.amp = self._amp

    def to(self, device: str | torch.device) -> TwoStage:
        self.device = torch.device(device)
        for stage in self.stages.values():
            stage.to(device)
        return self

    def state_dict(self) -> dict:
        return {"step": self.step, **{s: m.state_dict() for s, m in self.stages.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        for s, m in self.stages.items():
            m.load_state_dict(state[s])
