"""An experiment's output folder: its manifest, what a new one may already hold, and the
check that refuses started work made with another configuration than the config asks for."""

from __future__ import annotations

import json
from pathlib import Path

from feraug.data.dataset import FaceDataset
from feraug.engine.run_lock import LOCK_FILES
from feraug.errors import ConfigError, FeraugError
from feraug.experiment.config import ExperimentConfig, run_dir
from feraug.experiment.judging import judge_status
from feraug.experiment.runs import check_run_config, run_status
from feraug.experiment.stages import generator_status
from feraug.experiment.step_match import arm_train_config
from feraug.io import prepare_output_dir

KIND = "experiment"
#: What a new experiment folder may already hold: stage run folders put there beforehand.
SEEDABLE = frozenset({"classifiers", "generators", "synthetic", "judge", "scores"})


def read_experiment_manifest(out: Path) -> dict:
    """``out/manifest.json`` of an experiment folder; FeraugError when it is not one."""
    path = Path(out) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        raise FeraugError(f"{out}: not a feraug experiment folder (no readable "
                          "manifest.json)") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        kind = manifest.get("kind") if isinstance(manifest, dict) else None
        raise FeraugError(f"{out}: holds a feraug {kind!r} run, not an experiment folder")
    return manifest


def prepare_experiment_dir(out: Path, data_fingerprint: str) -> bool:
    """Create ``out`` or accept it when it is an experiment on the same data, or a new folder
    holding only stage folders (``generators/``, ``synthetic/``) put there beforehand;
    returns whether an experiment existed. Any other non-empty folder is refused."""
    out = Path(out)
    names = {p.name for p in out.iterdir()} - LOCK_FILES if out.is_dir() else set()
    existed = bool(names)
    seeded = existed and "manifest.json" not in names and names <= SEEDABLE
    if seeded:  # stage folders copied in by the user (e.g. generators trained earlier)
        return False
    prepare_output_dir(out, allow_existing_run=True, ignore=LOCK_FILES)
    if existed:
        old = read_experiment_manifest(out).get("data_fingerprint")
        if old != data_fingerprint:
            raise ConfigError(f"{out}: holds an experiment on different data (fingerprint "
                              f"{old}, now {data_fingerprint}); choose a new --out")
    return existed


def real_train_images(real: FaceDataset) -> int:
    """The real faces in the train split (after ``data.train_fraction``)."""
    return len(real.indices("train"))


def refuse_changed_work(cfg: ExperimentConfig, n_real: int) -> None:
    """ConfigError (one line) when a started or finished stage or run of ``cfg.out`` was made
    with another configuration than ``cfg`` asks for: helper classifiers, generators (their
    config and guide file), the judge, every arm x seed. Checked before anything is written,
    so a refused rerun leaves the folder and its manifest as they were."""
    started = [(cfg.classifier_dir(c.name), cfg.classifier_config(c.name))
               for c in cfg.classifiers]
    if cfg.judge is not None and cfg.generators and judge_status(cfg) != "reused":
        started.append((cfg.judge_dir(), cfg.judge_config()))
    for folder, tc in started:
        if run_status(folder) != "todo":
            check_run_config(folder, tc.model_dump())
    for arm, seed in cfg.runs():
        folder = run_dir(cfg.out, arm, seed)
        if run_status(folder) != "todo":
            try:
                tc = arm_train_config(cfg, arm, seed, folder, n_real)
            except ConfigError:  # its sets are being rebuilt: run_one checks it once they are
                continue
            check_run_config(folder, tc.model_dump())
    for generator in cfg.generators:
        generator_status(cfg, generator)  # raises on a changed config or guide file


def validation_faces(manifest: dict) -> int | None:
    """The validation faces of an experiment (its manifest's data summary), or None."""
    total = (((manifest.get("data_summary") or {}).get("splits") or {}).get("val") or {})
    return total.get("total")
