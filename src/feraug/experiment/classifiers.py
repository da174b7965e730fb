"""Helper classifiers of an experiment, and the one way it trains a real-only classifier.

A helper classifier (``classifiers:`` in the config) is trained on real faces only (the
experiment's train split, or another data set's with its own ``data:``), into
``out/classifiers/<name>/`` (a normal ``feraug train`` folder, finished when
its test metrics exist), before any generator. A generator's ``guide`` or a synthesis plan's
``filter_model`` names it as ``classifier:<name>``; that is how a protocol guides or filters
with a model of its own data (a low-data protocol must not guide with a model trained on the
faces it leaves out, and procedural faces need a guide of their own). The judge
(:mod:`feraug.experiment.judging`) is trained the same way but can never be referenced.
"""

from __future__ import annotations

from typing import Any

from feraug.classifier.config import TrainConfig
from feraug.data.dataset import FaceDataset
from feraug.experiment.config import REF_PREFIX, ExperimentConfig
from feraug.experiment.runs import Log, fit_and_test
from feraug.experiment.stage_specs import ClassifierSpec


def train_real_classifier(tc: TrainConfig, real: FaceDataset, label: str, log: Log) -> dict:
    """Train (or resume) ``tc`` on ``real`` without synthetic faces, score its best
    checkpoint on the test split and write those metrics last (marking it finished); a
    finished one is left alone. Returns its test metrics."""
    return fit_and_test(tc, real, label, log, check_data=True)


def resolve_reference(cfg: ExperimentConfig, value: Any) -> Any:
    """``classifier:<name>`` -> that helper classifier's ``best.pt``; anything else as is."""
    if isinstance(value, str) and value.startswith(REF_PREFIX):
        return str(cfg.classifier_dir(value.removeprefix(REF_PREFIX)) / "best.pt")
    return value


def resolved_generator_config(cfg: ExperimentConfig, config: dict[str, Any]) -> dict[str, Any]:
    """A generator stage's config with its ``guide`` references (nested ones included: a
    two-stage generator's translator) resolved to files."""
    return {k: ([resolve_reference(cfg, g) for g in v] if isinstance(v, list) else
                resolve_reference(cfg, v)) if k == "guide" else
            resolved_generator_config(cfg, v) if isinstance(v, dict) else v
            for k, v in config.items()}


def resolved_plan(cfg: ExperimentConfig, plan: dict[str, Any]) -> dict[str, Any]:
    """A synthesis plan with its ``filter_model`` reference resolved to a file."""
    return {k: resolve_reference(cfg, v) if k == "filter_model" else v for k, v in plan.items()}


def run_classifier_stage(cfg: ExperimentConfig, spec: ClassifierSpec, real: FaceDataset,
                         log: Log) -> None:
    """Train one helper classifier (left alone when finished); one with its own ``data``
    trains on that data set, loaded here."""
    from feraug.experiment.data import load_real_data

    faces = real if spec.data is None else load_real_data(spec.data)
    train_real_classifier(cfg.classifier_config(spec.name), faces, f"classifier {spec.name}",
                          log)
