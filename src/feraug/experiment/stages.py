"""The stages an experiment runs before its classifier arms: train (or reuse) each generator
once, then build each synthetic set from one of them. Every stage writes into the experiment
folder and is skipped when finished, resumed when started:

- ``out/generators/<name>/``: a normal ``feraug gan train`` run folder (finished when its
  checkpoint reached the configured steps; otherwise continued exactly);
- ``out/synthetic/<name>/``: a normal ``feraug synth`` folder (finished when its manifest
  exists; a folder without one is an interrupted build of this experiment and is rebuilt).

Generators train on the experiment's train split only, and synthetic sets are built from
that split, so validation and test faces never reach a generator or a synthetic set.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from feraug.data.dataset import FaceDataset
from feraug.errors import ConfigError
from feraug.experiment.classifiers import resolved_generator_config, resolved_plan
from feraug.experiment.config import ExperimentConfig, GeneratorSpec, SyntheticSpec

Log = Callable[[str], None]


def generator_checkpoint(cfg: ExperimentConfig, name: str) -> Path:
    """The checkpoint a generator stage provides (its own run's, or the reused one)."""
    spec = next(g for g in cfg.generators if g.name == name)
    return Path(spec.checkpoint) if spec.checkpoint else cfg.generator_dir(name) / \
        "checkpoint.pt"


def generator_status(cfg: ExperimentConfig, spec: GeneratorSpec) -> str:
    """``reused``, ``done``, ``partial`` (a checkpoint short of its steps, or a run folder
    without one yet) or ``todo``."""
    if spec.checkpoint:
        return "reused"
    folder = cfg.generator_dir(spec.name)
    ckpt = folder / "checkpoint.pt"
    if not ckpt.is_file():
        # stopped before its first checkpoint: the trainer's resume starts it again from step 0
        return "partial" if (folder / "manifest.json").is_file() else "todo"
    from feraug.gan import get_generator_class
    from feraug.gan.base import build_config, read_generator_checkpoint
    from feraug.gan.meta import GeneratorMeta
    from feraug.resume import GENERATOR_PATHS, paths_resolved, same_tails, with_current_defaults

    state = read_generator_checkpoint(ckpt)
    config_class = get_generator_class(spec.model or "").config_class
    wanted = build_config(config_class, resolved_generator_config(cfg, spec.config),
                          f"generator {spec.name!r}").model_dump(mode="json")
    # options added since the run was made count as their defaults (how it behaved)
    stored = paths_resolved(config_class.same_run_settings(
        with_current_defaults(state["config"], config_class)), GENERATOR_PATHS)
    wanted = paths_resolved(config_class.same_run_settings(wanted), GENERATOR_PATHS)
    # a moved experiment's guides are known by their place in it and by the hashes the run
    # recorded (checked below); a record without hashes, or another file, is not moved
    if GeneratorMeta.from_stored(state.get("meta") or {}).guide_hashes():
        stored = same_tails(stored, wanted, frozenset({"guide"}), Path(cfg.out))
    if state["name"] != spec.model or stored != wanted:
        changed = sorted(k for k in wanted.keys() | stored.keys()
                         if wanted.get(k) != stored.get(k))
        raise ConfigError(f"{ckpt}: this generator was trained as {state['name']} with a "
                          f"different configuration ({', '.join(changed) or 'model'}); "
                          "choose a new `out` or delete that folder")
    _check_same_guide(ckpt, state.get("meta") or {}, wanted)
    return "done" if int(state["model"]["step"]) >= int(state["config"]["steps"]) else "partial"


def _check_same_guide(ckpt: Path, meta: dict, config: dict) -> None:
    """A generator is reused only with the guide file it was trained with: a helper
    classifier retrained in place keeps its path, so the recorded hash is what tells."""
    from feraug.bundled import checkpoint_path
    from feraug.experiment.config import nested_values
    from feraug.gan.guide import guide_paths
    from feraug.gan.meta import GeneratorMeta
    from feraug.io import file_sha256

    stored = set(GeneratorMeta.from_stored(meta).guide_hashes())
    paths = [checkpoint_path(g) for value in nested_values(config, "guide")
             for g in guide_paths(value)]
    current = {file_sha256(p) for p in paths if p.is_file()}
    if stored and not current <= stored:  # a guide file that exists must be a recorded one
        raise ConfigError(f"{ckpt}: this generator was trained with another guide file than "
                          f"{', '.join(map(str, paths))} holds now (its hash differs); choose "
                          "a new `out` or delete that folder")


def started_marker(cfg: ExperimentConfig, kind: str, name: str) -> Path:
    """The file this experiment writes when it starts building a stage's folder and removes
    when the folder is complete: proof that an incomplete folder is its own to delete."""
    return Path(cfg.out) / ".started" / f"{kind}-{name}"


def discard_interrupted(folder: Path, marker: Path) -> None:
    """Delete an incomplete stage folder this experiment started (``marker`` exists); refuse
    one it did not (a folder copied in by hand is not ours to delete)."""
    if not marker.is_file():
        raise ConfigError(f"{folder}: exists without its manifest and was not started by this "
                          "experiment; move it away (or finish it) and rerun")
    shutil.rmtree(folder)


#: Plan options added after sets were built, with the value that describes how those sets
#: were made (before ``unique`` existed copies were kept; before ``min_change`` no edit was
#: too small; before ``tau_quantile`` every emotion had the one ``tau``; before ``sources`` a
#: translator took its own source emotion's faces).
PLAN_OPTIONS_BEFORE_THEY_EXISTED = {"unique": False, "min_change": 0.0, "tau_quantile": None,
                                    "sources": None}


def synthetic_status(cfg: ExperimentConfig, spec: SyntheticSpec) -> str:
    """``done`` (manifest written, and built with the plan the config gives), ``partial``
    (interrupted) or ``todo``."""
    folder = Path(cfg.synthetic_dir(spec.name))
    if (folder / "manifest.json").is_file():
        _check_same_plan(cfg, spec, folder)
        return "done"
    return "partial" if folder.exists() else "todo"


def _check_same_plan(cfg: ExperimentConfig, spec: SyntheticSpec, folder: Path) -> None:
    """A finished set is reused only when its manifest records the plan the config asks for
    now (its filter compared by file hash: a path can move, a retrained helper keeps its)."""
    import json

    from feraug.io import file_sha256
    from feraug.synth.plan import make_plan

    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{folder / 'manifest.json'}: unreadable ({exc}); move the folder "
                          "away to rebuild the set") from None
    wanted = make_plan(**resolved_plan(cfg, spec.plan)).model_dump(mode="json")
    stored = {**PLAN_OPTIONS_BEFORE_THEY_EXISTED, **manifest.get("plan", {})}
    changed = sorted(k for k in wanted if k != "filter_model" and stored.get(k) != wanted[k])
    filt = manifest.get("filter") or {}
    if (wanted["filter_model"] is None) != (not filt):
        changed.append("filter_model")
    elif wanted["filter_model"] is not None and Path(wanted["filter_model"]).is_file() \
            and file_sha256(wanted["filter_model"]) != filt.get("sha256"):
        changed.append("filter_model (another file)")
    if changed:
        raise ConfigError(f"{folder}: this synthetic set was built with another plan "
                          f"({', '.join(changed)}); move that folder away to rebuild it, or "
                          "restore the config")


def run_generator_stage(cfg: ExperimentConfig, spec: GeneratorSpec, real: FaceDataset,
                        log: Log) -> None:
    """Train one generator on ``real``'s train split (or resume it); reused ones are left."""
    status = generator_status(cfg, spec)
    if status in ("reused", "done"):
        log(f"generator {spec.name}: {'reused' if status == 'reused' else 'finished earlier'}")
        return
    from feraug.engine.generator_loop import train_generator
    from feraug.gan import build_generator

    folder = cfg.generator_dir(spec.name)
    model = build_generator(spec.model or "", resolved_generator_config(cfg, spec.config),
                            real.classes, real.size, source=f"generator {spec.name!r}")
    log(f"generator {spec.name}: {'resuming' if status == 'partial' else 'training'} "
        f"{spec.model} -> {folder}")
    from feraug.data.spec import DataSpec

    split = DataSpec(**{k: getattr(cfg.data, k) for k in DataSpec.model_fields})
    meta = {"data": cfg.data.path, "data_format": real.format,
            "data_fingerprint": real.fingerprint(), "data_spec": split.model_dump()}
    train_generator(model, real, folder, device=spec.device, resume=status == "partial",
                    meta=meta, progress=False, sample_every=max(model.config.steps // 4, 1),
                    checkpoint_every=max(model.config.steps // 10, 1))


def run_synthetic_stage(cfg: ExperimentConfig, spec: SyntheticSpec, real: FaceDataset,
                        log: Log) -> None:
    """Build one synthetic set from its generator (rebuilding an interrupted one)."""
    folder = Path(cfg.synthetic_dir(spec.name))
    status = synthetic_status(cfg, spec)
    if status == "done":
        log(f"synthetic set {spec.name}: finished earlier")
        return
    marker = started_marker(cfg, "synthetic", spec.name)
    if status == "partial":
        discard_interrupted(folder, marker)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    from feraug.gan import load_generator
    from feraug.synth.build import build_synthetic_set
    from feraug.synth.plan import make_plan

    ckpt = generator_checkpoint(cfg, spec.generator)
    device = next(g.device for g in cfg.generators if g.name == spec.generator)
    generator = load_generator(ckpt, device)
    manifest = build_synthetic_set(generator, real, make_plan(**resolved_plan(cfg, spec.plan)),
                                   folder,
                                   generator_checkpoint=ckpt, device=generator.device)
    marker.unlink(missing_ok=True)
    totals = manifest["totals"]
    short = (f" ({totals['shortfall']} short of the {totals['requested']} asked for; "
             f"{totals.get('dropped_duplicate', 0)} copies dropped)"
             if totals["shortfall"] else "")
    log(f"synthetic set {spec.name}: {totals['kept']} faces from generator {spec.generator}"
        f"{short} -> {folder}")
