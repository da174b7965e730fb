"""The judging stage of an experiment: an independent classifier scores every generator.

The judge is trained on the experiment's real train split only (class-balanced, its own seed)
into ``out/judge/`` (a normal ``feraug train`` folder; finished when its test metrics exist),
or an existing checkpoint is used. It never guides a generator or filters a synthetic set:
the scorer refuses a judge whose file is a generator's guide or the quality filter of a
synthetic set made from that generator's faces. Each generator's score
(``feraug gan score``: agreement against the judge's own recall on real faces, KID/FID,
memorisation, diversity; with ``reverse_epochs`` the reverse test) goes to
``out/scores/<generator>/`` and is finished when its ``score.json`` exists; an interrupted
one is scored again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from feraug.data.dataset import FaceDataset
from feraug.experiment.classifiers import resolve_reference, train_real_classifier
from feraug.experiment.config import ExperimentConfig, JudgeSpec
from feraug.experiment.runs import run_status
from feraug.experiment.stages import discard_interrupted, generator_checkpoint, started_marker
from feraug.reporting.markdown import fmt

Log = Callable[[str], None]


def judge_checkpoint(cfg: ExperimentConfig) -> Path:
    """The judge's checkpoint: the configured one, or ``out/judge/best.pt``."""
    spec = cfg.judge or JudgeSpec()
    return Path(spec.checkpoint) if spec.checkpoint else cfg.judge_dir() / "best.pt"


def score_dir(cfg: ExperimentConfig, generator: str) -> Path:
    """Where a generator's score is written (``out/scores/<generator>``)."""
    return score_folder(cfg.out, generator)


def score_folder(out: str | Path, generator: str) -> Path:
    """A generator's score folder inside the experiment folder ``out``."""
    return Path(out) / "scores" / generator


def judge_status(cfg: ExperimentConfig) -> str:
    """``reused``, ``done``, ``partial`` (started) or ``todo``."""
    if cfg.judge is not None and cfg.judge.checkpoint:
        return "reused"
    return run_status(cfg.judge_dir())


def score_status(cfg: ExperimentConfig, generator: str) -> str:
    """``done`` (score.json written), ``partial`` (interrupted) or ``todo``."""
    folder = score_dir(cfg, generator)
    if (folder / "score.json").is_file():
        return "done"
    return "partial" if folder.exists() else "todo"


def train_judge(cfg: ExperimentConfig, real: FaceDataset, log: Log) -> None:
    """Train (or resume) the judge on the real train split; a given checkpoint is used as is."""
    if judge_status(cfg) == "reused":
        log("judge: given checkpoint")
        return
    train_real_classifier(cfg.judge_config(), real, "judge", log)


def score_generators(cfg: ExperimentConfig, real: FaceDataset, log: Log) -> None:
    """Score every generator stage with the judge (skipping finished scores)."""
    from feraug.scoring.inception import resolve_inception

    pending = [g.name for g in cfg.generators if score_status(cfg, g.name) != "done"]
    if len(pending) < len(cfg.generators):
        log(f"scores: {len(cfg.generators) - len(pending)} finished earlier")
    inception = resolve_inception((cfg.judge or JudgeSpec()).inception) if pending else None
    for name in pending:
        score_generator_stage(cfg, real, name, log, inception=inception)


def score_generator_stage(cfg: ExperimentConfig, real: FaceDataset, generator: str, log: Log,
                          inception: object = "resolve") -> None:
    """Score one generator stage with the judge into ``out/scores/<generator>`` (skipped
    when finished; an interrupted score is scored again). ``inception``: the Inception
    network already loaded (None: none), or ``"resolve"`` to load the configured one."""
    from feraug.scoring import score_generator
    from feraug.scoring.inception import resolve_inception

    if score_status(cfg, generator) == "done":
        log(f"score {generator}: finished earlier")
        return
    spec = cfg.judge or JudgeSpec()
    if inception == "resolve":
        inception = resolve_inception(spec.inception)
    reverse = {"model": spec.reverse_model, "epochs": spec.reverse_epochs} \
        if spec.reverse_epochs else None
    folder = score_dir(cfg, generator)
    marker = started_marker(cfg, "score", generator)
    if folder.exists():  # a score that stopped before its JSON
        discard_interrupted(folder, marker)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    filters = [resolve_reference(cfg, s.plan["filter_model"]) for s in cfg.synthetic
               if s.generator == generator and s.plan.get("filter_model")]
    result = score_generator(generator_checkpoint(cfg, generator), real, judge_checkpoint(cfg),
                             n=spec.n, seed=spec.seed, inception=inception, out=folder,
                             split=spec.split, data_spec=cfg.data.model_dump(),
                             reverse=reverse, filter_models=filters)
    marker.unlink(missing_ok=True)
    log(f"score {generator}: mean agreement ratio {fmt(result['mean_agreement_ratio'], 2)}"
        + ("" if reverse is None else ", mean reverse ratio "
           f"{fmt(result['reverse']['mean_ratio'], 2)}"))


def read_scores(cfg: ExperimentConfig) -> dict[str, dict]:
    """``{generator: score result}`` of every finished score."""
    return read_scores_in(cfg.out, [gen.name for gen in cfg.generators])


def read_scores_in(out: str | Path, generators: Iterable[str]) -> dict[str, dict]:
    """``{generator: score result}`` of the finished scores of ``generators`` in the
    experiment folder ``out`` (one fold's, when pooling)."""
    scores = {}
    for name in generators:
        path = score_folder(out, name) / "score.json"
        if path.is_file():
            try:
                scores[name] = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
    return scores
