"""Typed training configuration: defaults <- model recipe <- YAML file <- command-line flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from feraug.data.spec import DataSpec
from feraug.errors import ConfigError, validate_config
from feraug.models import CLASSIFIERS, known_classifier, recipe


class AugmentConfig(BaseModel):
    """Batched, on-device training augmentation (see :mod:`feraug.classifier.augment`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    flip: bool = True
    rotation: float = Field(10.0, ge=0, le=45, description="max rotation, degrees")
    translate: float = Field(0.1, ge=0, le=0.5, description="max shift, fraction of side")
    scale: float = Field(0.1, ge=0, le=0.5, description="max relative zoom")
    erasing: float = Field(0.0, ge=0, le=1, description="probability of random erasing")
    brightness: float = Field(0.0, ge=0, le=1, description="max brightness/contrast jitter")
    gamma: float = Field(0.0, ge=0, le=1, description="max |log gamma| of a per-face gamma "
                         "curve (exposure of real photos)")
    blur: float = Field(0.0, ge=0, le=1, description="probability of a Gaussian blur with "
                        "sigma 0.3-1.5 px (focus, motion)")
    noise: float = Field(0.0, ge=0, le=0.5, description="max standard deviation of Gaussian "
                         "sensor noise (inputs span [-1, 1])")
    lowres: float = Field(0.0, ge=0, le=1, description="probability of losing resolution "
                          "(down to 40-80% and back: small or compressed faces)")


class TrainConfig(BaseModel):
    """Everything that defines a classifier training run."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)

    data: str
    format: str | None = None
    image_size: int = Field(48, ge=16, le=256)
    class_map: dict[str, str] | None = None
    folds: int = Field(5, ge=2)
    fold: int = Field(0, ge=0)
    synthetic: list[str] = Field(default_factory=list,
                                 description="folders written by `feraug synth`, train only")
    synthetic_only: bool = Field(False, description="train on the synthetic faces alone (the "
                                 "real training faces are dropped; validation and test stay "
                                 "real): how much a generator's faces teach on their own")
    extra_train: list[str] = Field(default_factory=list, description="other data sets whose "
                                   "train split joins training (e.g. SFEW's Train beside "
                                   "FER2013); their validation and test faces are never used")

    model: str = "zhu-cnn"
    crop_size: int | None = None
    pretrained_weights: str | None = None
    init: str | None = Field(None, description="feraug checkpoint to fine-tune from")
    freeze_backbone: bool = False

    epochs: int = Field(30, ge=1)
    max_steps: int | None = Field(None, ge=1, description="stop after this many steps")
    batch_size: int = Field(128, ge=1)
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0)
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0)
    scheduler: Literal["none", "plateau", "cosine"] = "plateau"
    plateau_factor: float = Field(0.5, gt=0, lt=1)
    plateau_patience: int = 3
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    tta: Literal["none", "flip", "tencrop"] = "flip"

    class_weighted_loss: bool = False
    balanced_sampling: bool = False
    logit_adjust_tau: float = Field(0.0, ge=0, le=4, description="train with logit-adjusted "
                                    "cross-entropy (Menon et al. 2021); 0 = plain, 1 = paper")
    teacher: str | None = Field(None, description="classifier checkpoint (e.g. a `feraug "
                                "ensemble` of seeds) to distil from: its softened predictions "
                                "join the loss (same classes, image and crop size)")
    distill_weight: float = Field(0.5, gt=0, le=1, description="share of the teacher's soft "
                                  "loss in the training loss (with a teacher)")
    distill_temperature: float = Field(2.0, gt=0, description="softmax temperature of "
                                       "distillation")
    select_metric: Literal["accuracy", "macro_f1"] = Field(
        "accuracy", description="validation metric that picks the best epoch (macro_f1 "
                                "weighs rare classes equally)")

    seed: int = 0
    data_seed: int | None = Field(None, ge=0, description="seed of carved-out validation and "
                                  "folds (data sets without their own splits); None = seed")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True
    cpu_bf16: bool = Field(False, description="bf16 autocast when training on the CPU (about "
                           "2x faster with AVX512-BF16, see docs/results.md; CPUs without it "
                           "emulate bf16)")
    channels_last: bool = Field(True, description="channels-last memory format (about 1.6x "
                                "faster training on CPU, see docs/results.md)")
    compile: bool = False
    checkpoint_every: int = Field(0, ge=0, description="also checkpoint every N steps (0: epochs)")
    tensorboard: bool = Field(False, description="also write TensorBoard events to "
                              "OUT/tensorboard (needs the tensorboard extra)")
    out: str = "runs/train"

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        return known_classifier(v)

    @model_validator(mode="after")
    def _fold_in_range(self) -> TrainConfig:
        if self.fold >= self.folds:
            raise ValueError(f"fold {self.fold} is out of range for {self.folds} folds")
        return self

    def data_spec(self) -> DataSpec:
        """The real data set and its split as one :class:`DataSpec` (the split seed is
        ``data_seed``, or ``seed`` when that is unset). The flat fields stay so existing
        config files and checkpoints keep reading."""
        return DataSpec.from_train_config(self.model_dump(), source="config")


def _deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for k, v in override.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else v
    return out


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (line and column, 1-based)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem is None:
        return " ".join(str(exc).split())
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def read_yaml(path: str | Path) -> dict:
    """Load a YAML mapping with ``yaml.safe_load``; ConfigError naming the file on problems."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text (save the config as UTF-8)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({yaml_problem(exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: config must be a mapping of keys to values")
    return data


def build_train_config(file_values: dict | None = None, overrides: dict | None = None,
                       source: str = "config") -> TrainConfig:
    """Merge the model's recipe, a config mapping and explicit overrides into a TrainConfig.

    ``None`` values in ``overrides`` mean "not given" and are ignored.
    """
    file_values = dict(file_values or {})
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    model = overrides.get("model") or file_values.get("model") or "zhu-cnn"
    if model not in CLASSIFIERS:
        raise ConfigError(f"{source}: unknown model {model!r} (known: {', '.join(CLASSIFIERS)})")
    merged = _deep_merge(_deep_merge(recipe(model), file_values), overrides)
    merged["model"] = model
    return validate_config(TrainConfig, merged, source)
