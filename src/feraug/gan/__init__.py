"""Generators, registered by name. Adding one is one new module plus one line in
:data:`GENERATORS` (a :class:`~feraug.gan.base.GeneratorModel` subclass with its config)."""

from __future__ import annotations

from feraug.errors import ConfigError
from feraug.gan.base import (
    GanConfig,
    GeneratorModel,
    build_generator,
    load_generator,
    save_generator,
)
from feraug.gan.cgan import CGan
from feraug.gan.cyclegan import CycleGan
from feraug.gan.fastgan import FastGan
from feraug.gan.meta import GeneratorMeta
from feraug.gan.stargan import StarGan
from feraug.gan.twostage import TwoStage

GENERATORS: dict[str, type[GeneratorModel]] = {
    "cyclegan": CycleGan,
    "cgan": CGan,
    "fastgan": FastGan,
    "stargan": StarGan,
    "twostage": TwoStage,
}


def get_generator_class(name: str) -> type[GeneratorModel]:
    """The generator class registered as ``name``; ConfigError listing the known ones."""
    try:
        return GENERATORS[name]
    except KeyError:
        raise ConfigError(f"unknown generator {name!r} (known: {', '.join(GENERATORS)})") from None


__all__ = [
    "GENERATORS",
    "GanConfig",
    "GeneratorMeta",
    "GeneratorModel",
    "build_generator",
    "get_generator_class",
    "load_generator",
    "save_generator",
]
