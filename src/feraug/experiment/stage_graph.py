"""An experiment's stages as separate units of work, each with the stages it needs.

A stage is a helper classifier, a generator, a synthetic set, the judge or one generator's
score (:class:`Stage`). What a stage or a run needs follows from the config alone:

- a stage or run needs every stage whose folder holds a file it reads, named by
  ``classifier:<name>``, by a stage's name or by a path: a helper classifier as ``init``,
  ``guide`` or ``filter_model``; a generator's checkpoint (a synthetic set's, a score's, a
  two-stage generator's ``translator_from``, a reused ``checkpoint`` inside another
  generator stage's folder); a synthetic set (an arm's, and with ``match_steps`` the arm it
  matches, whose file counts set its epochs); the judge (a score's).
- a helper classifier trained on other ``data`` takes no ``init`` (its config drops it), so it
  needs none.

A job executor submits each stage as its own job once the stages it needs have finished, so
independent generators train side by side and a run starts as soon as its own sets exist
(:mod:`feraug.experiment.executors`); the sequential runner runs them in :func:`stages`
order, which already respects these needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feraug.data.dataset import FaceDataset
from feraug.errors import ConfigError
from feraug.experiment.config import REF_PREFIX, ExperimentConfig
from feraug.experiment.step_match import synthetic_dirs_read

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


def label(item: Stage | Run) -> str:
    """How progress lines name a stage (``generator g``) or a run (``real seed 0``)."""
    return str(item) if isinstance(item, Stage) else f"{item[0]} seed {item[1]}"


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


def _stage_folders(cfg: ExperimentConfig) -> list[tuple[Path, Stage]]:
    """Each folder a stage of ``cfg`` writes, with that stage (a reused generator writes
    none; neither does a given judge)."""
    folders = [(cfg.classifier_dir(c.name), Stage("classifier", c.name))
               for c in cfg.classifiers]
    folders += [(cfg.generator_dir(g.name), Stage("generator", g.name))
                for g in cfg.generators if not g.checkpoint]
    folders += [(Path(cfg.synthetic_dir(s.name)), Stage("synthetic", s.name))
                for s in cfg.synthetic]
    if cfg.judge is not None and cfg.generators and not cfg.judge.checkpoint:
        folders.append((cfg.judge_dir(), Stage("judge", "judge")))
    return [(folder.resolve(), stage) for folder, stage in folders]


def _made_by(cfg: ExperimentConfig, values: Any) -> set[Stage]:
    """The stages whose folders hold a path named anywhere in ``values`` (references such
    as ``classifier:<name>`` already resolved to files): what reads those paths needs them."""
    folders = _stage_folders(cfg)
    found = set()
    for text in _strings(values):
        if not text or text.startswith(REF_PREFIX):
            continue
        path = Path(text).resolve()
        found |= {stage for folder, stage in folders if path.is_relative_to(folder)}
    return found


def _read_by(cfg: ExperimentConfig, stage: Stage) -> Any:
    """Every value a stage's work reads, with references resolved to the files it opens."""
    from feraug.experiment.classifiers import (
        resolve_reference,
        resolved_generator_config,
        resolved_plan,
    )
    from feraug.experiment.judging import judge_checkpoint
    from feraug.experiment.stages import generator_checkpoint

    if stage.kind == "classifier":
        return cfg.classifier_config(stage.name).init
    if stage.kind == "generator":
        spec = next(g for g in cfg.generators if g.name == stage.name)
        return [spec.checkpoint, resolved_generator_config(cfg, spec.config)]
    if stage.kind == "synthetic":
        spec = next(s for s in cfg.synthetic if s.name == stage.name)
        return [str(generator_checkpoint(cfg, spec.generator)), resolved_plan(cfg, spec.plan)]
    if stage.kind == "judge":
        return cfg.judge_config().init if cfg.judge is None or not cfg.judge.checkpoint \
            else cfg.judge.checkpoint
    filters = [resolve_reference(cfg, s.plan.get("filter_model")) for s in cfg.synthetic
               if s.generator == stage.name]
    return [str(judge_checkpoint(cfg)), str(generator_checkpoint(cfg, stage.name)), filters]


def stage_needs(cfg: ExperimentConfig, stage: Stage) -> set[Stage]:
    """The stages ``stage`` needs finished before it can start: those whose folders hold a
    file it reads (see the module docstring)."""
    return _made_by(cfg, _read_by(cfg, stage)) - {stage}


def run_needs(cfg: ExperimentConfig, arm: str) -> set[Stage]:
    """The stages a run of ``arm`` needs: its synthetic sets, those of the arm it matches in
    steps (``match_steps``), and a helper classifier named as its ``init``; by name or by
    path."""
    init = cfg.train_config(arm, cfg.seeds[0], Path(cfg.out) / "unused").init
    return _made_by(cfg, [init, synthetic_dirs_read(cfg, arm)])


def needs(cfg: ExperimentConfig, item: Stage | Run) -> set[Stage]:
    """What a stage or a run (an ``(arm, seed)`` pair) needs."""
    return stage_needs(cfg, item) if isinstance(item, Stage) else run_needs(cfg, item[0])


def check_arm_names(cfg: ExperimentConfig, names: Iterable[str]) -> None:
    """Refuse (one line) arm names that ``cfg`` does not have, naming those it has."""
    known = [a.name for a in cfg.arms]
    names = list(names)
    if not names:
        raise ConfigError(f"no arm named to run (its arms: {', '.join(known)})")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"no arm named {', '.join(map(repr, unknown))} in this experiment "
                          f"(its arms: {', '.join(known)})")


def stages_needed(cfg: ExperimentConfig, arms: Iterable[str]) -> set[Stage]:
    """Every stage the runs of ``arms`` need, directly or through other stages (finished
    ones included): what a run of only these arms must make first."""
    found: set[Stage] = set()
    todo = [st for arm in dict.fromkeys(arms) for st in run_needs(cfg, arm)]
    while todo:
        stage = todo.pop()
        if stage not in found:
            found.add(stage)
            todo.extend(stage_needs(cfg, stage))
    return found


def selected_stages(cfg: ExperimentConfig, arms: Iterable[str] | None = None) -> list[Stage]:
    """The stages of ``cfg`` in their order; with ``arms``, only those their runs need."""
    every = stages(cfg)
    if arms is None:
        return every
    wanted = stages_needed(cfg, arms)
    return [stage for stage in every if stage in wanted]


def never_ready(waits: dict[Stage | Run, set[Stage]]) -> list[Stage | Run]:
    """The items of ``waits`` (item -> the unfinished stages it needs) that could never start
    even if every job succeeded: they wait, directly or not, for themselves or for a stage
    that is not in ``waits``."""
    done: set[Stage | Run] = set()
    changed = True
    while changed:
        changed = False
        for item, wanted in waits.items():
            if item not in done and wanted <= done:
                done.add(item)
                changed = True
    return [item for item in waits if item not in done]


def never_ready_problem(waits: dict[Stage | Run, set[Stage]]) -> str | None:
    """The line naming the items of ``waits`` that could never start (see
    :func:`never_ready`), or None."""
    stuck = never_ready(waits)
    return "these could never start (they wait for themselves): " + \
        ", ".join(map(label, stuck)) if stuck else None


def order_problems(cfg: ExperimentConfig) -> list[str]:
    """One line naming the stages and runs of ``cfg`` that a job executor could never start
    (they wait for themselves through the stages they need), or nothing."""
    items: list[Stage | Run] = [*stages(cfg), *cfg.runs()]
    problem = never_ready_problem({item: needs(cfg, item) for item in items})
    return [] if problem is None else [problem]


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
