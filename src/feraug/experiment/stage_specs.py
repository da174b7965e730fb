"""The parts of an experiment config besides its arms: the stages that run before the arms
(helper classifiers, generators, synthetic sets, the judge) and where runs execute. Shared
name and key rules live here too; :mod:`feraug.experiment.config` assembles them."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from feraug.experiment.data import DataSpec
from feraug.models import known_classifier

#: TrainConfig fields the experiment sets itself (data options come from ``data``).
RESERVED = ("data", "format", "image_size", "class_map", "folds", "fold", "seed", "out",
            "synthetic")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
#: How a generator's ``guide`` or a plan's ``filter_model`` names a helper classifier.
REF_PREFIX = "classifier:"


def data_shorthand(value: Any) -> Any:
    """``data: PATH`` written as a string means ``{path: PATH}``."""
    return {"path": value} if isinstance(value, str) else value


def reject_reserved(values: dict[str, Any], where: str) -> dict[str, Any]:
    """``values`` unchanged, or ValueError naming the TrainConfig fields the experiment owns."""
    bad = sorted(set(values) & set(RESERVED))
    if bad:
        raise ValueError(f"{', '.join(bad)} cannot be set {where} (use `data:`, `seeds:`, "
                         "`out:` or an arm's `synthetic:`)")
    return values


class GeneratorSpec(BaseModel):
    """A generator stage: trained once on the experiment's train split (resumably) into
    ``out/generators/<name>``, or an existing ``checkpoint`` reused as it is."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str
    model: str | None = Field(None, description="registered generator (cyclegan, fastgan, "
                              "...); not with `checkpoint`")
    config: dict[str, Any] = Field(default_factory=dict, description="its config values")
    checkpoint: str | None = Field(None, description="reuse this trained generator")
    device: str = "auto"

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        return safe_stage_name(v)

    @model_validator(mode="after")
    def _model_or_checkpoint(self) -> GeneratorSpec:
        if (self.model is None) == (self.checkpoint is None):
            raise ValueError(f"generator {self.name!r}: give either `model` (to train) or "
                             "`checkpoint` (to reuse)")
        if self.checkpoint is not None and self.config:
            raise ValueError(f"generator {self.name!r}: `config` is for training; a reused "
                             "checkpoint keeps its own")
        return self


class SyntheticSpec(BaseModel):
    """A synthetic-set stage: ``feraug synth`` with a generator stage and a plan, written to
    ``out/synthetic/<name>``; arms name it in their ``synthetic:`` list."""

    model_config = ConfigDict(extra="forbid")

    name: str
    generator: str = Field(description="name of a generator stage")
    plan: dict[str, Any] = Field(default_factory=dict, description="synthesis plan "
                                 "(mode, k, emotions, filter_model, tau, delta, seed)")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        return safe_stage_name(v)


def safe_stage_name(v: str) -> str:
    if not SAFE_NAME.match(v):
        raise ValueError(f"name {v!r} must be letters, digits, '.', '_', '+', '-' (it becomes "
                         "a folder name)")
    return v


class ClassifierSpec(BaseModel):
    """A helper classifier trained on real faces only (``out/classifiers/<name>``), named as
    ``classifier:<name>`` by a generator's ``guide``, a plan's ``filter_model`` or an arm's
    ``init``. It trains on the experiment's train split, or, with its own ``data``, on another
    data set's: a transfer source (e.g. FER2013 for an SFEW or JAFFE experiment), which never
    sees the experiment's own faces."""

    model_config = ConfigDict(extra="forbid")

    name: str
    data: DataSpec | None = Field(None, description="another data set to train on (default: "
                                  "the experiment's)")
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig overrides "
                                  "on top of `base`")
    seed: int = Field(100, ge=0, description="its training seed")

    @field_validator("data", mode="before")
    @classmethod
    def _data_shorthand(cls, v: Any) -> Any:
        return data_shorthand(v)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        return safe_stage_name(v)

    @field_validator("train")
    @classmethod
    def _no_reserved(cls, v: dict[str, Any]) -> dict[str, Any]:
        return reject_reserved(v, "in a classifier's `train`")


class JudgeSpec(BaseModel):
    """The independent judge that scores every generator stage (``feraug gan score``): a
    classifier trained on the experiment's real train split only (into ``out/judge``, with
    the shared settings, class-balanced sampling and its own seed), or an existing
    ``checkpoint``. It never guides a generator or filters a synthetic set."""

    model_config = ConfigDict(extra="forbid")

    checkpoint: str | None = Field(None, description="use this classifier instead of training")
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig overrides "
                                  "on top of `base` (default adds balanced_sampling: true)")
    seed: int = Field(1000, ge=0, description="its training seed, apart from the arms' seeds")
    n: int = Field(200, ge=8, description="generated faces scored per emotion")
    split: Literal["val", "test"] = Field("test", description="real reference faces")
    inception: Literal["auto", "off"] = Field("auto", description="Inception FID/KID when the "
                                              "packaged network is installed")
    reverse_epochs: int = Field(0, ge=0, description="also run the reverse test (a classifier "
                                "trained on the generated faces, tested on real ones; "
                                "`feraug gan score --reverse-epochs`): its epochs, 0 = off")
    reverse_model: str = Field("zhu-cnn", description="classifier of the reverse test")

    @field_validator("train")
    @classmethod
    def _no_reserved(cls, v: dict[str, Any]) -> dict[str, Any]:
        return reject_reserved(v, "in `judge.train`")

    @field_validator("reverse_model")
    @classmethod
    def _known_classifier(cls, v: str) -> str:
        return known_classifier(v)

    @field_validator("inception", mode="before")
    @classmethod
    def _yaml_booleans(cls, v: Any) -> Any:
        """YAML reads an unquoted ``off``/``on`` as a boolean."""
        return {False: "off", True: "auto"}.get(v, v) if isinstance(v, bool) else v

    @model_validator(mode="after")
    def _train_or_checkpoint(self) -> JudgeSpec:
        if self.checkpoint is not None and self.train:
            raise ValueError("judge: `train` is for training one; a `checkpoint` is used as is")
        return self


class ExecutorSpec(BaseModel):
    """Where the runs of an experiment execute. ``sequential`` (default): one after another
    in this process. ``submitit-local``: as submitit jobs on this machine (separate processes,
    ``max_parallel`` at a time). ``slurm``: as SLURM jobs through submitit (the cluster's
    partition, GPUs and CPUs below). Each run is an independent job, and so is each stage
    (started once the stages it needs are done; runs wait only for theirs); finished runs are
    skipped and started ones resumed, whichever executor ran them."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["sequential", "submitit-local", "slurm"] = "sequential"
    max_parallel: int = Field(2, ge=1, description="jobs running at the same time")
    progress_every_min: float = Field(10.0, ge=0, description="how often the runner says "
                                      "how far its running jobs have come (a generator's "
                                      "step, a classifier's epoch, the time left); 0: never")
    keep_going: bool = Field(True, description="a failed job stops only what needs it (the "
                             "other jobs go on; the runner ends with an error naming every "
                             "failure); false: the first failure stops the runner and "
                             "cancels the jobs still running")
    timeout_min: int = Field(240, ge=1, description="wall-clock limit of one run's job")
    stages_timeout_min: int = Field(1440, ge=1, description="wall-clock limit of a stage's "
                                    "job (a generator's training, a helper classifier, a "
                                    "synthetic set, the judge, a score; a job stopped by it "
                                    "resumes when the experiment is run again); on SLURM "
                                    "it must fit the partition's time limit, or the job "
                                    "never starts")
    cpus_per_task: int = Field(2, ge=1)
    gpus_per_node: int = Field(0, ge=0)
    slurm_partition: str | None = None
