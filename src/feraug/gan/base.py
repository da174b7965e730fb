"""The one generator interface, its typed config base, and generator checkpoints.

Every generator is a :class:`GeneratorModel` subclass in its own module, registered by name in
:data:`feraug.gan.GENERATORS`. A generator owns its networks (``nets``), optimisers
(``optims``), LR schedulers (``scheds``) and step counter; the shared driver in
:mod:`feraug.engine.generator_loop` feeds it batches. What every generator offers:

- ``streams(labels)``: how the trainer composes a batch (e.g. CycleGAN: source faces, then
  target faces; conditional models: class-balanced);
- ``train_step(real, labels)``: one optimisation step on a float batch in [-1, 1], returning
  detached 0-dim loss tensors;
- ``emotions()``: what it can make (CycleGAN: its ``target_emotion`` only), a non-empty
  subset of ``classes`` (the classes of the data it was trained on);
- ``needs_sources`` and ``source_emotion``: whether it translates real faces and, if so, of
  which emotion (``None``: noise-to-face generators, and translators that take faces of any
  emotion); ``use_sources(emotion)`` changes the latter for translators trained between
  every pair of emotions (``any_source``, e.g. StarGAN);
- ``sample(emotion, n, seed, sources=None)``: ``n`` uint8 faces ``[n, 1, S, S]`` on the CPU,
  the same for the same seed. Translators (``needs_sources = True``) turn the given real
  faces of ``source_emotion`` into ``emotion``; the others ignore ``sources``;
- ``meta``: a :class:`~feraug.gan.meta.GeneratorMeta`, what is known about its training
  (data, split, guide), stored in its checkpoint; changed only through ``update_meta`` and
  ``set_meta``;
- ``state_dict()`` / ``load_state_dict()`` covering networks, optimisers, schedulers, EMA,
  the step counter and any extra state (e.g. an image history pool).

:func:`save_generator` and :func:`load_generator` write and read checkpoints that load with
``torch.load(..., weights_only=True)``: the generator is rebuilt from its registered name and
its config dict, never from pickled code.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from feraug.devices import choose_device
from feraug.errors import CheckpointError, ConfigError, validate_config
from feraug.gan.meta import GeneratorMeta
from feraug.io import atomic_torch_save, read_torch_checkpoint

FORMAT = "feraug-generator-v1"
SAMPLE_CHUNK = 256


class GanConfig(BaseModel):
    """Settings every generator has; each generator extends it with its own defaults."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)

    steps: int = Field(20000, ge=0, description="total training steps (LR schedules use it)")
    batch_size: int = Field(32, ge=1, description="real images per stream per step")
    seed: int = Field(0, description="seeds weights, batches and noise")
    amp: bool = Field(True, description="bf16 autocast on CUDA (ignored on CPU)")
    flip: bool = Field(True, description="random horizontal flip of real faces")

    @classmethod
    def same_run_settings(cls, dumped: dict) -> dict:
        """The part of a dumped config that says whether a stored run is the one a config
        asks for (all of it, unless a generator stores settings it copied from elsewhere)."""
        return dumped


def build_config(config_class: type[GanConfig], values: dict | None = None,
                 source: str = "config") -> GanConfig:
    """Validate ``values`` into ``config_class``; ConfigError naming ``source`` on problems."""
    return validate_config(config_class, values or {}, source)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ConfigError for unavailable CUDA or an
    unknown name (:func:`feraug.devices.choose_device`, the rule of every ``--device``)."""
    return choose_device(name)


def quantise(x: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8 [0, 255] on the same device."""
    return x.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8 [0, 255] on the CPU."""
    return quantise(x).cpu()


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [-1, 1] (same device)."""
    return x.float().div(127.5).sub(1.0)


def count_parameters(net: nn.Module) -> int:
    """Number of parameters of a network."""
    return sum(p.numel() for p in net.parameters())


class GeneratorModel(ABC):
    """Base class of all generators (see the module docstring for the contract).

    ``needs_sources`` is true for translators (``sample`` needs real faces);
    ``source_emotion`` is the emotion of the faces a translator takes, ``None`` for
    noise-to-face generators and for translators that take any emotion.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[GanConfig]] = GanConfig
    needs_sources: ClassVar[bool] = False
    #: trained to translate faces of every emotion into every other, so the source emotion
    #: used when sampling may differ from the one its config names
    any_source: ClassVar[bool] = False
    source_emotion: str | None

    def __init__(self, config: GanConfig, classes: tuple[str, ...], image_size: int) -> None:
        if not isinstance(config, self.config_class):
            raise TypeError(f"{self.name} needs a {self.config_class.__name__}")
        if image_size % 8 or not 32 <= image_size <= 256:
            raise ConfigError(f"{self.name}: image size must be a multiple of 8 in 32..256, "
                              f"got {image_size}")
        self.config = config
        self.classes = tuple(classes)
        self.image_size = int(image_size)
        self.step = 0
        self.device = torch.device("cpu")
        self.amp = False
        self._meta = GeneratorMeta()
        self.nets: dict[str, nn.Module] = {}
        self.optims: dict[str, torch.optim.Optimizer] = {}
        self.scheds: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.source_emotion = None

    # ---- training -------------------------------------------------------------------------
    def streams(self, labels: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
        """How to draw a batch: ``(indices into the training images, count)`` per stream.

        The trainer concatenates ``count`` images from each stream, in order. The default is
        one stream over all images.
        """
        return [(torch.arange(len(labels)), self.config.batch_size)]

    def prepare(self) -> None:
        """Hook run by the trainer once before a fresh (not resumed) run; e.g. to load
        pretrained parts. The default does nothing."""
        return None

    def use_adam_with_linear_decay(self, params: dict[str, list[nn.Parameter]],
                                   lr: float | dict[str, float], beta1: float) -> None:
        """One Adam optimiser (betas ``(beta1, 0.999)``) per named parameter group, each with
        the CycleGAN/StarGAN linear learning-rate decay (:meth:`linear_decay`); ``lr`` is one
        rate for all groups or one per group name."""
        rates = lr if isinstance(lr, dict) else dict.fromkeys(params, lr)
        self.optims = {k: torch.optim.Adam(p, rates[k], (beta1, 0.999))
                       for k, p in params.items()}
        self.scheds = {k: torch.optim.lr_scheduler.LambdaLR(o, self.linear_decay)
                       for k, o in self.optims.items()}

    def train_step(self, real: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimisation step on ``real`` (float [-1, 1] on ``self.device``) and their
        class ``labels``. Returns detached 0-dim loss tensors (read them with ``float``)."""
        losses = self._train_step(real, labels)
        self.step += 1
        for sched in self.scheds.values():
            sched.step()
        return losses

    @abstractmethod
    def _train_step(self, real: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """The generator's own losses and updates for one step."""

    def linear_decay(self, step: int) -> float:
        """LR factor: constant for the first half of ``config.steps``, then linearly to 0."""
        total = max(int(self.config.steps), 1)
        half = total // 2
        return 1.0 - max(0, step - half) / float(total - half + 1)

    @contextlib.contextmanager
    def seeded(self) -> Iterator[None]:
        """Seed torch with ``config.seed`` for weight initialisation, leaving the global RNG
        as it was afterwards (so loading a generator has no side effects)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            yield

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA when ``amp`` is on; a no-op elsewhere."""
        enabled = self.amp and self.device.type == "cuda"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    # ---- sampling -------------------------------------------------------------------------
    @abstractmethod
    def sample(self, emotion: str, n: int, seed: int,
               sources: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` uint8 faces ``[n, 1, S, S]`` (CPU) of ``emotion``, deterministic for ``seed``."""

    def emotions(self) -> tuple[str, ...]:
        """The emotions this generator can produce (all ``classes`` unless overridden)."""
        return self.classes

    def class_index(self, emotion: str) -> int:
        """Index of ``emotion`` in ``classes``; ConfigError when it cannot be generated."""
        if emotion not in self.emotions():
            raise ConfigError(f"{self.name} generator cannot make {emotion!r} "
                              f"(it makes: {', '.join(self.emotions())})")
        return self.classes.index(emotion)

    def use_sources(self, emotion: str | None) -> None:
        """Sample from faces of ``emotion`` (None or ``"any"``: of every emotion but the one
        made) instead of the source emotion it was configured with; only for ``any_source``
        translators."""
        if not self.needs_sources:
            raise ConfigError(f"{self.name} makes faces from noise, not from real faces: it "
                              "has no sources to change")
        if not self.any_source:
            raise ConfigError(f"{self.name} was trained to translate "
                              f"{self.source_emotion or 'its own sources'} only; its sources "
                              "cannot be changed")
        if emotion == "any":
            emotion = None
        if emotion is not None and emotion not in self.classes:
            raise ConfigError(f"{self.name}: no {emotion!r} faces in its classes "
                              f"({', '.join(self.classes)})")
        self.source_emotion = emotion

    def check_sources(self, sources: torch.Tensor | None, n: int) -> torch.Tensor:
        """Validate translator sources and return ``n`` of them (``sources[i % len]``)."""
        s = self.image_size
        if sources is None or len(sources) == 0:
            raise ConfigError(f"{self.name} translates real faces: give source faces of "
                              f"{self.source_emotion or 'any emotion'}")
        if sources.dtype != torch.uint8 or tuple(sources.shape[1:]) != (1, s, s):
            raise ConfigError(f"{self.name}: sources must be uint8 [N,1,{s},{s}], got "
                              f"{sources.dtype} {tuple(sources.shape)}")
        return sources[torch.arange(n) % len(sources)]

    def _noise(self, n: int, dim: int, seed: int) -> torch.Tensor:
        """Standard normal noise ``[n, dim]`` from a private CPU generator seeded by ``seed``."""
        gen = torch.Generator().manual_seed(int(seed))
        return torch.randn(n, dim, generator=gen).to(self.device)

    # ---- training record ------------------------------------------------------------------
    @property
    def meta(self) -> GeneratorMeta:
        """What is known about this generator's training; stored in its checkpoint."""
        return self._meta

    def update_meta(self, values: Mapping[str, Any]) -> None:
        """Record ``values`` in :attr:`meta` (a value for a recorded key replaces it)."""
        self._meta = self._meta.merged(values)

    def set_meta(self, meta: GeneratorMeta) -> None:
        """Replace :attr:`meta`, e.g. by the record of the checkpoint being loaded."""
        self._meta = meta

    # ---- devices, state -------------------------------------------------------------------
    def to(self, device: str | torch.device) -> GeneratorModel:
        """Move all networks (and optimiser state) to ``device``."""
        self.device = torch.device(device)
        for net in self.nets.values():
            net.to(self.device)
        for opt in self.optims.values():
            for state in opt.state.values():
                for k, v in state.items():
                    if isinstance(v, torch.Tensor) and k != "step":
                        state[k] = v.to(self.device)
        return self

    def num_parameters(self) -> dict[str, int]:
        """Parameter count per network."""
        return {k: count_parameters(v) for k, v in self.nets.items()}

    def extra_state(self) -> dict:
        """Generator-specific state beyond nets/optimisers/schedulers (override)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Inverse of :meth:`extra_state` (override)."""
        return None

    def state_dict(self) -> dict:
        """Everything needed to sample from and to resume training this generator."""
        return {
            "step": self.step,
            "nets": {k: v.state_dict() for k, v in self.nets.items()},
            "optims": {k: v.state_dict() for k, v in self.optims.items()},
            "scheds": {k: v.state_dict() for k, v in self.scheds.items()},
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output (networks must already be on their device).
        A sampling-only state (:func:`save_for_sampling`) has no optimiser or scheduler
        state; those stay fresh."""
        self.step = int(state["step"])
        for k, net in self.nets.items():
            net.load_state_dict(state["nets"][k])
        for k, opt in self.optims.items():
            if k in state["optims"]:
                opt.load_state_dict(state["optims"][k])
        for k, sched in self.scheds.items():
            if k in state["scheds"]:
                sched.load_state_dict(state["scheds"][k])
        self.load_extra_state(state.get("extra", {}))


def generator_checkpoint(model: GeneratorModel) -> dict:
    """The checkpoint dict of a generator (the trainer adds its own ``trainer`` entry)."""
    return {
        "format": FORMAT,
        "name": model.name,
        "config": model.config.model_dump(mode="json"),
        "classes": list(model.classes),
        "image_size": model.image_size,
        "meta": model.meta.to_dict(),
        "model": model.state_dict(),
    }


def save_generator(model: GeneratorModel, path: str | Path) -> None:
    """Write a generator checkpoint atomically."""
    atomic_torch_save(generator_checkpoint(model), Path(path))


def save_for_sampling(path: str | Path, out: str | Path) -> None:
    """Write a small copy of a generator checkpoint that samples but cannot resume: networks
    in float16, no optimiser, scheduler or trainer state (to bring a GPU run's generator
    back through a size limit). :func:`load_generator` reads it like any checkpoint."""
    state = read_generator_checkpoint(path)
    model = state["model"]
    nets = {name: {k: v.half() if v.is_floating_point() else v for k, v in net.items()}
            for name, net in model["nets"].items()}
    slim = {**state, "sampling_only": True,
            "model": {**model, "nets": nets, "optims": {}, "scheds": {}}}
    slim.pop("trainer", None)
    atomic_torch_save(slim, Path(out))


def read_generator_checkpoint(path: str | Path) -> dict:
    """Load a generator checkpoint dict safely (``weights_only=True``)."""
    return read_torch_checkpoint(path, FORMAT, "generator")


def build_generator(name: str, config: dict | GanConfig | None, classes: tuple[str, ...],
                    image_size: int, source: str = "config") -> GeneratorModel:
    """Instantiate the generator registered as ``name``."""
    from feraug.gan import get_generator_class

    cls = get_generator_class(name)
    if not isinstance(config, GanConfig):
        config = build_config(cls.config_class, config, source)
    return cls(config, tuple(classes), image_size)


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> GeneratorModel:
    """Rebuild a generator from a checkpoint (``feraug gan train`` output) on ``device``
    (``"auto"``: CUDA when available)."""
    state = read_generator_checkpoint(path)
    device = resolve_device(device) if isinstance(device, str) else device
    try:
        model = build_generator(state["name"], state["config"], tuple(state["classes"]),
                                int(state["image_size"]), source=str(path))
        model.to(device)
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{path}: does not fit generator {state.get('name')!r} "
                              f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                              ) from None
    model.set_meta(GeneratorMeta.from_stored(state.get("meta")))
    return model
