"""The judge: an independent classifier whose prior-free decisions and penultimate features
score a generator.

Prior-free means a rare emotion can be recognised at all: a judge trained with class-balanced
sampling, class weights or logit-adjusted loss is used as it is; any other judge gets post-hoc
logit adjustment with tau 1 (Menon et al. 2021: subtract the log class prior of the train
split), so its decisions are those of a balanced classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from feraug.bundled import checkpoint_path
from feraug.classifier.infer import embed_images, predict_logits
from feraug.classifier.logit_adjust import log_prior
from feraug.data.dataset import FaceDataset
from feraug.errors import ConfigError
from feraug.io import file_sha256
from feraug.models.checkpoint import LoadedClassifier, load_classifier

if TYPE_CHECKING:
    from feraug.gan.meta import GeneratorMeta


def balance_note(loaded: LoadedClassifier) -> str | None:
    """Why ``loaded`` is already prior-free, or None when it is not."""
    cfg = loaded.meta.get("config") or {}
    if cfg.get("balanced_sampling"):
        return "trained with class-balanced sampling"
    if cfg.get("class_weighted_loss"):
        return "trained with class-weighted loss"
    if float(cfg.get("logit_adjust_tau") or 0) >= 1:
        return "trained with logit-adjusted loss"
    if float((loaded.meta.get("logit_adjustment") or {}).get("tau") or 0) >= 1:
        return "post-hoc logit-adjusted (tau >= 1)"
    return None


@dataclass
class Judge:
    """A loaded judge with its decision shift and identity."""

    loaded: LoadedClassifier
    path: Path
    sha256: str
    shift: torch.Tensor | None
    balance: str

    @property
    def classes(self) -> tuple[str, ...]:
        return self.loaded.classes

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Prior-free class probabilities ``[N, K]`` for uint8 faces (the judge's own TTA)."""
        logp = predict_logits(self.loaded.model, images, self.loaded.crop_size, self.loaded.tta)
        if self.shift is not None:
            logp = logp - self.shift
        return torch.softmax(logp, dim=1)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``[N, D]`` (float64)."""
        return torch.from_numpy(embed_images(self.loaded, images)).double()


def load_judge(path: str | Path, dataset: FaceDataset, device: str = "cpu") -> Judge:
    """Load ``path`` as a judge for ``dataset`` (its classes must cover the data's)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: judge checkpoint not found")
    loaded = load_classifier(path, device)
    missing = [c for c in dataset.classes if c not in loaded.classes]
    if missing:
        raise ConfigError(f"{path}: the judge lacks classes {missing} of {dataset.root}")
    if loaded.image_size != dataset.size:
        raise ConfigError(f"{path}: the judge expects {loaded.image_size} px faces, the data "
                          f"are {dataset.size} px")
    note = balance_note(loaded)
    shift = None
    if note is None:
        shift = log_prior(dataset, loaded.classes)
        note = "logit-adjusted here with tau 1 (train-split prior)"
    return Judge(loaded, path, file_sha256(path), shift, note)


def check_independent(judge: Judge, generator_meta: GeneratorMeta,
                      generator_path: str | Path,
                      filter_models: Sequence[str | Path] = ()) -> None:
    """Refuse a judge that guided the generator (the guide's file hash is in its meta) or
    filtered its faces: ``filter_models`` are the synth quality filters known to have been
    used on them (``"bundled"`` names the packaged model). A filter is chosen after training,
    so it is not in the generator's meta: the experiment runner passes its plans' filters,
    and on the command line ``--filter-model`` declares them."""
    if judge.sha256 in generator_meta.guide_hashes():
        raise ConfigError(f"{judge.path}: this classifier is a guide of {generator_path}; a "
                          "judge must never have trained, guided or filtered the generator it "
                          "scores (train another classifier as judge)")
    for model in filter_models:
        path = checkpoint_path(model)
        if not path.is_file():  # a mistyped filter must not switch the check off
            raise ConfigError(f"{model}: no such filter model file")
        if file_sha256(path) == judge.sha256:
            raise ConfigError(f"{judge.path}: this classifier is the quality filter {model} of "
                              f"{generator_path}'s faces; a judge must never have trained, "
                              "guided or filtered the generator it scores (train another "
                              "classifier as judge)")
