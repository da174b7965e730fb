"""An experiment's stages as separate units of work, each with the stages it needs.

A stage is a helper classifier, a generator, a synthetic set, the judge or one generator's
score (:class:`Stage`). What a stage or a run needs follows from the config alone:

- a helper classifier, a generator, a synthetic set's plan, the judge or an arm naming
  ``classifier:<name>`` (``init``, ``guide``, ``filter_model``) needs that classifier;
- a generator whose config holds a path inside another generator stage's folder (a two-stage
  generator's ``translator_from``) needs that generator;
- a synthetic set needs its generator (unless it is a reused checkpoint: no stage makes it);
- a score needs the judge, its generator and the filters of the sets made from it (the scorer
  refuses a judge that is one of them, compared by file);
- a run needs the synthetic sets of its arm and, with ``match_steps``, those of the arm it
  matches (their file counts set its epochs).

A job executor submits each stage as its own job once the stages it needs have finished, so
independent generators train side by side and a run starts as soon as its own sets exist
(:mod:`feraug.experiment.executors`); the sequential runner runs them in :func:`stages`
order, which already respects these needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feraug.data.dataset import FaceDataset
from feraug.experiment.config import REF_PREFIX, ExperimentConfig

Log = Callable[[str], None]
#: A run of an arm with one seed, as the runner and executors name it.
Run = tuple[str, int]
#: Stage kinds in the order the sequential runner runs them.
KINDS = ("classifier", "generator", "synthetic", "judge", "score")


@dataclass(frozen=True)
class Stage:
    """One stage: its kind (one of :data:`KINDS`) and name (the judge's is ``judge``; a
    score's is its generator's)."""

    kind: str
    name: str

    def __str__(self) -> str:
        return "judge" if self.kind == "judge" else f"{self.kind} {self.name}"


def stages(cfg: ExperimentConfig) -> list[Stage]:
    """Every stage of ``cfg`` (finished or not) in the order the sequential runner runs them:
    helper classifiers, generators, synthetic sets, then the judge and one score per
    generator (only when the config has a judge and generators)."""
    units = [Stage("classifier", c.name) for c in cfg.classifiers]
    units += [Stage("generator", g.name) for g in cfg.generators]
    units += [Stage("synthetic", s.name) for s in cfg.synthetic]
    if cfg.judge is not None and cfg.generators:
        units.append(Stage("judge", "judge"))
        units += [Stage("score", g.name) for g in cfg.generators]
    return units


def _strings(value: Any) -> Iterator[str]:
    """Every string inside ``value`` (nested dicts and lists included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _classifiers_named(values: Any) -> set[Stage]:
    return {Stage("classifier", s.removeprefix(REF_PREFIX)) for s in _strings(values)
            if s.startswith(REF_PREFIX)}


def _generators_inside(cfg: ExperimentConfig, values: Any, own: str) -> set[Stage]:
    """Generator stages (besides ``own``) whose folder holds a path named in ``values``."""
    paths = [Path(s).resolve() for s in _strings(values) if "/" in s or "\\" in s]
    return {Stage("generator", g.name) for g in cfg.generators if g.name != own
            and not g.checkpoint
            and any(p.is_relative_to(cfg.generator_dir(g.name).resolve()) for p in paths)}


def _made_generator(cfg: ExperimentConfig, name: str) -> set[Stage]:
    """The generator stage ``name`` when the experiment trains it (a reused checkpoint is no
    stage's work)."""
    return {Stage("generator", g.name) for g in cfg.generators
            if g.name == name and not g.checkpoint}


def stage_needs(cfg: ExperimentConfig, stage: Stage) -> set[Stage]:
    """The stages ``stage`` needs finished before it can start (see the module docstring)."""
    if stage.kind == "classifier":
        spec = next(c for c in cfg.classifiers if c.name == stage.name)
        return _classifiers_named({"init": cfg.base.get("init"), **spec.train})
    if stage.kind == "generator":
        spec = next(g for g in cfg.generators if g.name == stage.name)
        return _classifiers_named(spec.config) | _generators_inside(cfg, spec.config,
                                                                    stage.name)
    if stage.kind == "synthetic":
        spec = next(s for s in cfg.synthetic if s.name == stage.name)
        return _classifiers_named(spec.plan) | _made_generator(cfg, spec.generator)
    if stage.kind == "judge":
        train = {} if cfg.judge is None or cfg.judge.checkpoint else cfg.judge.train
        return _classifiers_named({"init": cfg.base.get("init"), **train})
    filters = [s.plan for s in cfg.synthetic if s.generator == stage.name]
    return {Stage("judge", "judge")} | _made_generator(cfg, stage.name) | \
        _classifiers_named(filters)


def run_needs(cfg: ExperimentConfig, arm: str) -> set[Stage]:
    """The stages a run of ``arm`` needs: its synthetic sets, those of the arm it matches in
    steps (``match_steps``), and a helper classifier named as its ``init``."""
    spec = cfg.arm(arm)
    sets = list(spec.synthetic)
    if spec.match_steps:
        sets += cfg.arm(spec.match_steps).synthetic
    made = {s.name for s in cfg.synthetic}
    init = spec.train.get("init", cfg.base.get("init"))
    return {Stage("synthetic", name) for name in sets if name in made} | \
        _classifiers_named([init])


def needs(cfg: ExperimentConfig, item: Stage | Run) -> set[Stage]:
    """What a stage or a run (an ``(arm, seed)`` pair) needs."""
    return stage_needs(cfg, item) if isinstance(item, Stage) else run_needs(cfg, item[0])


def run_stage(cfg: ExperimentConfig, stage: Stage, real: FaceDataset, log: Log) -> None:
    """Do one stage (skipped when finished, resumed or rebuilt when started), on ``real``
    (a helper classifier with its own ``data`` loads those instead)."""
    from feraug.experiment.classifiers import run_classifier_stage
    from feraug.experiment.judging import score_generator_stage, train_judge
    from feraug.experiment.stages import run_generator_stage, run_synthetic_stage

    if stage.kind == "classifier":
        run_classifier_stage(cfg, next(c for c in cfg.classifiers if c.name == stage.name),
                             real, log)
    elif stage.kind == "generator":
        run_generator_stage(cfg, next(g for g in cfg.generators if g.name == stage.name),
                            real, log)
    elif stage.kind == "synthetic":
        run_synthetic_stage(cfg, next(s for s in cfg.synthetic if s.name == stage.name),
                            real, log)
    elif stage.kind == "judge":
        train_judge(cfg, real, log)
    else:
        score_generator_stage(cfg, real, stage.name, log)
