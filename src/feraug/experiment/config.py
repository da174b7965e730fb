"""``ExperimentConfig``: one YAML file describing a whole comparison.

A config names the data set once, the training settings shared by every arm (``base``), the
seeds, and a list of *arms*: named variations of training (TrainConfig overrides such as
``class_weighted_loss: true``) and/or synthetic folders written by ``feraug synth``::

    data: ../shared/data/fer2013          # or a mapping: {path, format, size, ...}
    base: {model: zhu-cnn, epochs: 20, batch_size: 128}
    seeds: [0, 1, 2]
    arms:
      - name: real                         # the baseline (first arm unless `baseline:` says)
      - name: class-weighted
        class_weighted_loss: true
      - name: gan-balance
        synthetic: [runs/synth-fer2013-cgan]
    out: runs/experiment-fer2013

Every run is ``out/<arm>/seed<k>/``. Relative paths are relative to the working folder, as
for ``feraug train``. ``data: procedural`` draws the built-in procedural faces instead of
reading a folder (nothing is written outside ``out``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from feraug.classifier.config import TrainConfig, build_train_config
from feraug.errors import ConfigError, validate_config
from feraug.experiment.config_files import read_experiment_yaml
from feraug.experiment.data import PROCEDURAL, DataSpec  # noqa: F401 (importable from here)
from feraug.experiment.stage_specs import (  # noqa: F401 (importable from here)
    REF_PREFIX,
    RESERVED,
    SAFE_NAME,
    ClassifierSpec,
    ExecutorSpec,
    GeneratorSpec,
    JudgeSpec,
    SyntheticSpec,
    data_shorthand,
    reject_reserved,
)


class ArmSpec(BaseModel):
    """One arm: a name, TrainConfig overrides and optional synthetic folders."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    synthetic: list[str] = Field(default_factory=list)
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig overrides")
    match_steps: str | None = Field(
        None, description="another arm whose optimiser steps this arm matches: its epochs "
        "are set from the two train-set sizes once the synthetic sets exist (the control "
        "for training length of an arm that adds faces)")

    @model_validator(mode="before")
    @classmethod
    def _collect_overrides(cls, value: Any) -> Any:
        """Accept overrides written flat (``class_weighted_loss: true``) beside ``name``."""
        if not isinstance(value, dict):
            return value
        own = {"name", "description", "synthetic", "train", "match_steps"}
        flat = {k: v for k, v in value.items() if k not in own}
        if not flat:
            return value
        train = dict(value.get("train") or {})
        train.update(flat)
        return {**{k: v for k, v in value.items() if k in own}, "train": train}

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not SAFE_NAME.match(v):
            raise ValueError(f"arm name {v!r} must be letters, digits, '.', '_', '+', '-' "
                             "(it becomes a folder name)")
        return v

    @field_validator("train")
    @classmethod
    def _no_reserved(cls, v: dict[str, Any]) -> dict[str, Any]:
        return reject_reserved(v, "per arm")


class ExperimentConfig(BaseModel):
    """A whole experiment: data, shared training settings, seeds, arms, output folder."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = None
    protocol: str | None = Field(None, description="what is compared and what was adapted "
                                 "from the published protocol (the report's first lines)")
    data: DataSpec
    base: dict[str, Any] = Field(default_factory=dict,
                                 description="TrainConfig fields shared by all arms")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    arms: list[ArmSpec] = Field(min_length=1)
    baseline: str | None = Field(None, description="arm the others are compared with "
                                                   "(default: the first)")
    out: str = "runs/experiment"
    tsne_points: int = Field(1500, ge=0, description="t-SNE sample size (0: no t-SNE)")
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    classifiers: list[ClassifierSpec] = Field(default_factory=list)
    generators: list[GeneratorSpec] = Field(default_factory=list)
    synthetic: list[SyntheticSpec] = Field(default_factory=list)
    judge: JudgeSpec | None = Field(None, description="score every generator stage with an "
                                    "independent classifier")

    @field_validator("data", mode="before")
    @classmethod
    def _data_shorthand(cls, v: Any) -> Any:
        return data_shorthand(v)

    @field_validator("base")
    @classmethod
    def _base_not_reserved(cls, v: dict[str, Any]) -> dict[str, Any]:
        return reject_reserved(v, "in `base`")

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or any(s < 0 for s in v):
            raise ValueError(f"seeds must be distinct non-negative integers, got {v}")
        return v

    @model_validator(mode="after")
    def _check_arms(self) -> ExperimentConfig:
        names = [a.name for a in self.arms]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"arm names must be unique (repeated: {', '.join(dup)})")
        for kind, items in (("generator", self.generators), ("synthetic set", self.synthetic),
                            ("classifier", self.classifiers)):
            stage_names = [x.name for x in items]
            if len(set(stage_names)) != len(stage_names):
                raise ValueError(f"{kind} names must be unique")
        self._check_references()
        self._check_matched_steps()
        gens = {g.name for g in self.generators}
        for syn in self.synthetic:
            if syn.generator not in gens:
                raise ValueError(f"synthetic set {syn.name!r}: no generator stage "
                                 f"{syn.generator!r} (generators: {', '.join(gens) or 'none'})")
        if self.baseline is None:
            self.baseline = names[0]
        elif self.baseline not in names:
            raise ValueError(f"baseline {self.baseline!r} is not an arm ({', '.join(names)})")
        return self

    def _check_matched_steps(self) -> None:
        """``match_steps`` names another arm that matches none itself, and its arm sets no
        ``epochs`` of its own (they are computed)."""
        arms = {a.name: a for a in self.arms}
        for a in self.arms:
            if a.match_steps is None:
                continue
            ref = arms.get(a.match_steps)
            if ref is None or ref is a or ref.match_steps is not None:
                raise ValueError(f"arm {a.name!r}: match_steps {a.match_steps!r} must name "
                                 "another arm that matches no arm itself")
            if "epochs" in a.train:
                raise ValueError(f"arm {a.name!r}: set either epochs or match_steps")
            own, other = {**self.base, **a.train}, {**self.base, **ref.train}
            if own.get("extra_train") or other.get("extra_train"):
                raise ValueError(f"arm {a.name!r}: match_steps cannot size extra_train "
                                 "folders; set its epochs by hand")
            if own.get("scheduler", TrainConfig.model_fields["scheduler"].default) == "plateau":
                raise ValueError(f"arm {a.name!r}: match_steps needs scheduler cosine or none "
                                 "(plateau counts its patience in epochs, so the matched "
                                 "arm's schedule would differ)")

    def arm(self, name: str) -> ArmSpec:
        """The arm called ``name``."""
        for a in self.arms:
            if a.name == name:
                return a
        raise ConfigError(f"no arm {name!r} (arms: {', '.join(a.name for a in self.arms)})")

    def runs(self) -> list[tuple[str, int]]:
        """Every (arm, seed) pair, arm-major in config order (how results are listed)."""
        return [(a.name, s) for a in self.arms for s in self.seeds]

    def schedule(self) -> list[tuple[str, int]]:
        """Every (arm, seed) pair in the order they are trained: seed-major, so that an
        experiment stopped part way has every arm at its first seeds (a comparison to read)
        rather than every seed of its first arms."""
        return [(a.name, s) for s in self.seeds for a in self.arms]

    def synthetic_dirs(self) -> list[str]:
        """Distinct synthetic folders used by any arm, in order of first use (a synthetic
        stage's name resolves to its folder under ``out``)."""
        return list(dict.fromkeys(self.synthetic_dir(d) for a in self.arms for d in a.synthetic))

    def synthetic_dir(self, name_or_path: str) -> str:
        """A synthetic stage's folder (``out/synthetic/<name>``), or the path as given."""
        if any(s.name == name_or_path for s in self.synthetic):
            return str(Path(self.out) / "synthetic" / name_or_path)
        return name_or_path

    def generator_dir(self, name: str) -> Path:
        """A generator stage's run folder (``out/generators/<name>``)."""
        return Path(self.out) / "generators" / name

    def train_config(self, arm: str, seed: int, out_dir: str | Path,
                     epochs: int | None = None) -> TrainConfig:
        """The TrainConfig of one run: model recipe <- ``base`` <- the arm's overrides, with
        the data options, seed, synthetic folders and output folder set by the experiment;
        ``epochs`` replaces the recipe's (a ``match_steps`` arm's, see
        :mod:`feraug.experiment.step_match`)."""
        spec = self.arm(arm)
        own = {} if epochs is None else {"epochs": epochs}
        return self._train_config({**self.base, **spec.train, **own}, seed,
                                  [self.synthetic_dir(d) for d in spec.synthetic], out_dir,
                                  f"arm {arm!r}")

    def _check_references(self) -> None:
        """Every ``classifier:<name>`` names a helper classifier; the judge is none of the
        classifiers that guide or filter; no helper or extra training set reads the
        experiment's own data under another split (its test faces would be training faces)."""
        known = {c.name for c in self.classifiers}
        guides = [(f"generator {g.name!r} guide", v) for g in self.generators
                  for value in nested_values(g.config, "guide")
                  for v in (value if isinstance(value, list) else [value])]
        filters = [(f"synthetic set {s.name!r} filter_model", s.plan.get("filter_model"))
                   for s in self.synthetic]
        judge_init = (self.judge.train.get("init", self.base.get("init"))
                      if self.judge is not None and self.judge.checkpoint is None else None)
        refs = [*guides, *filters, ("base init", self.base.get("init")),
                ("judge init", judge_init)]
        refs += [(f"arm {a.name!r} init", a.train.get("init")) for a in self.arms]
        refs += [(f"classifier {c.name!r} init", c.train.get("init")) for c in self.classifiers]
        for where, value in refs:
            if isinstance(value, str) and value.startswith(REF_PREFIX) and \
                    value.removeprefix(REF_PREFIX) not in known:
                raise ValueError(f"{where}: {value!r} names no classifier stage "
                                 f"(classifiers: {', '.join(sorted(known)) or 'none'})")
        steering = {v for _, v in guides + filters if isinstance(v, str)}
        if isinstance(judge_init, str) and judge_init in steering:
            raise ValueError(f"judge init: {judge_init!r} guides or filters a generator; the "
                             "judge must be independent of it")
        if self.judge is not None and self.judge.checkpoint is not None:
            judge_file = Path(self.judge.checkpoint).resolve()
            helpers = (Path(self.out) / "classifiers").resolve()
            if judge_file.is_relative_to(helpers) or self.judge.checkpoint in steering:
                raise ValueError(f"judge checkpoint {self.judge.checkpoint!r} is a helper "
                                 "classifier of this experiment; the judge must be independent")
        for c in self.classifiers:
            if c.data is not None and _same_faces(self.data, c.data):
                raise ValueError(f"classifier {c.name!r}: its data are the experiment's own; "
                                 "omit `data:` (another split of them would train on the "
                                 "experiment's test faces)")
        for where, extra in [("base", self.base.get("extra_train"))] + \
                [(f"arm {a.name!r}", a.train.get("extra_train")) for a in self.arms]:
            if any(self.data.same_data(p) for p in extra or []):
                raise ValueError(f"{where} extra_train: lists the experiment's own data")

    def classifier_dir(self, name: str) -> Path:
        """A helper classifier's run folder (``out/classifiers/<name>``)."""
        return Path(self.out) / "classifiers" / name

    def classifier_config(self, name: str) -> TrainConfig:
        """A helper classifier's TrainConfig: ``base`` <- its overrides, real faces only."""
        spec = next((c for c in self.classifiers if c.name == name), None)
        if spec is None:
            raise ConfigError(f"no classifier stage {name!r}")
        values = {k: v for k, v in {**self.base, **spec.train}.items() if k != "init"} \
            if spec.data is not None else {**self.base, **spec.train}
        return self._train_config(values, spec.seed, [], self.classifier_dir(name),
                                  f"classifier {name!r}", data=spec.data)

    def judge_dir(self) -> Path:
        """The judge's run folder (``out/judge``)."""
        return Path(self.out) / "judge"

    def judge_config(self) -> TrainConfig:
        """The judge's TrainConfig: ``base`` <- class-balanced sampling <- ``judge.train``,
        real faces only, its own seed."""
        judge = self.judge or JudgeSpec()
        values = {**self.base, "balanced_sampling": True, **judge.train}
        return self._train_config(values, judge.seed, [], self.judge_dir(), "judge")

    def _train_config(self, values: dict[str, Any], seed: int, synthetic: list[str],
                      out_dir: str | Path, source: str,
                      data: DataSpec | None = None) -> TrainConfig:
        data = data or self.data
        init = values.get("init")
        if isinstance(init, str) and init.startswith(REF_PREFIX):  # a classifier stage's model
            values = {**values, "init": str(self.classifier_dir(init.removeprefix(REF_PREFIX))
                                            / "best.pt")}
        fixed = {"data": data.path, "format": data.format, "image_size": data.size,
                 "class_map": data.class_map, "folds": data.folds, "fold": data.fold,
                 "seed": seed, "data_seed": data.seed, "synthetic": synthetic,
                 "out": str(out_dir)}
        return build_train_config({**values, **fixed}, None, source=source)


def _same_faces(a: DataSpec, b: DataSpec) -> bool:
    """Whether two specs read the same faces: the same folder, or procedural faces drawn
    with the same seed and counts (another seed draws other people)."""
    if a.is_procedural or b.is_procedural:
        return a.is_procedural and b.is_procedural and \
            (a.seed, a.n_per_class, a.n_identities) == (b.seed, b.n_per_class, b.n_identities)
    return a.same_data(b.path)


def nested_values(values: dict[str, Any], key: str) -> list[Any]:
    """Every value stored under ``key`` in ``values`` and the mappings nested in it (a
    two-stage generator keeps its translator's guide one level down)."""
    found = [values[key]] if key in values else []
    for v in values.values():
        if isinstance(v, dict):
            found += nested_values(v, key)
    return found


def run_dir(out: str | Path, arm: str, seed: int) -> Path:
    """Folder of one run: ``out/<arm>/seed<k>``."""
    return Path(out) / arm / f"seed{seed}"


def parse_experiment_config(values: dict, source: str = "config") -> ExperimentConfig:
    """Validate a mapping as an ExperimentConfig, every generator stage's config, every
    synthesis plan and every arm's TrainConfig; ConfigError naming ``source`` and the
    offending key on problems."""
    from feraug.gan import get_generator_class
    from feraug.gan.base import build_config
    from feraug.synth.plan import make_plan

    cfg = validate_config(ExperimentConfig, values, source)
    try:
        for g in cfg.generators:
            if g.model is not None:
                build_config(get_generator_class(g.model).config_class, g.config,
                             f"generator {g.name!r}")
        for syn in cfg.synthetic:
            make_plan(**syn.plan)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    try:
        if cfg.judge is not None and cfg.judge.checkpoint is None:
            cfg.judge_config()
        for c in cfg.classifiers:
            cfg.classifier_config(c.name)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    for arm in cfg.arms:  # build each arm once so a bad override is reported up front
        try:
            cfg.train_config(arm.name, cfg.seeds[0], run_dir(cfg.out, arm.name, cfg.seeds[0]))
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return cfg


def apply_overrides(values: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``values`` with each ``KEY=VALUE`` of ``overrides`` set: ``KEY`` is a dotted path
    through mappings (``data.fold``, ``base.epochs``), ``VALUE`` is read as YAML (``1``,
    ``0.25``, ``[0, 1]``, ``{flip: true}``). ConfigError (one line) for a malformed one."""
    import yaml

    values = copy.deepcopy(values)
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. data.fold=1")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML") from None
        node = values
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                where = ".".join(parts[: depth + 1])
                raise ConfigError(f"--set {item!r}: {where} is not a mapping")
        node[parts[-1]] = value
    return values


def load_experiment_config(path: str | Path, out: str | Path | None = None,
                           executor: str | None = None,
                           overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read an experiment YAML file (``yaml.safe_load``; ``extends:`` resolved, see
    :mod:`feraug.experiment.config_files`), optionally overriding ``out``, the executor's kind
    and any dotted key (:func:`apply_overrides`; ``out`` is applied last)."""
    values = apply_overrides(read_experiment_yaml(path), overrides)
    if out is not None:
        values["out"] = str(out)
    if executor is not None:
        spec = values.get("executor") if isinstance(values.get("executor"), dict) else {}
        values["executor"] = {**spec, "kind": executor}
    return parse_experiment_config(values, source=str(path))
