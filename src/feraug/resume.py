"""The one rule for continuing a run in its folder, shared by classifier and generator
training: the folder must hold a feraug run of the same kind (its ``manifest.json``), and
only settings that say how long, where and how often it runs may differ from those it
started with. Anything else would continue a different experiment under the old record.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

from feraug.errors import CheckpointError, ConfigError


def read_run_manifest(out: Path, kind: str, what: str) -> dict:
    """``out/manifest.json`` of a run of ``kind``; CheckpointError (one line) when the
    folder holds no feraug run or another kind of run. ``what`` names the kind for people."""
    path = Path(out) / "manifest.json"
    if not path.is_file():
        raise CheckpointError(f"{out}: nothing to resume (no feraug run here); drop --resume "
                              "to start a new run in an empty folder")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise CheckpointError(f"{path}: unreadable; not a feraug {what} run") from None
    found = manifest.get("kind") if isinstance(manifest, dict) else None
    if found != kind:
        raise CheckpointError(f"{out}: holds a {found or 'non-feraug'} run, not a {what} run; "
                              "refusing to resume into it")
    return manifest


def with_current_defaults(stored: dict, model_class: type | None) -> dict:
    """``stored`` (a config a run recorded) read by today's ``model_class`` (a pydantic
    model): options added since the run was made get their defaults, which is how that run
    behaved. A record today's class cannot read is returned unchanged."""
    if model_class is None:
        return stored
    from pydantic import ValidationError

    try:
        return model_class.model_validate(stored).model_dump(mode="json")
    except ValidationError:
        return stored


#: Classifier settings that name files or folders.
CLASSIFIER_PATHS = frozenset({"data", "synthetic", "extra_train", "pretrained_weights", "init",
                              "teacher"})
#: Generator settings that name files (nested ones too: a two-stage's translator).
GENERATOR_PATHS = frozenset({"guide", "translator_from"})


def paths_resolved(values: dict, keys: frozenset[str]) -> dict:
    """``values`` with the paths under ``keys`` (at any depth) made absolute, so that a setting
    written relative (a runner's config) and absolute (an experiment job's, whose ``out`` is
    absolute) compare equal; names such as ``bundled`` or ``procedural`` (no separator, not
    a ``.pt`` file, nothing of that name here) stay as they are."""
    def resolved(value: object) -> object:
        if isinstance(value, list):
            return [resolved(v) for v in value]
        if isinstance(value, str) and ("/" in value or value.endswith(".pt")
                                       or Path(value).exists()):
            return str(Path(value).resolve())
        return value

    return {k: resolved(v) if k in keys else
            paths_resolved(v, keys) if isinstance(v, dict) else v for k, v in values.items()}


def _map_paths(values: dict, keys: frozenset[str], change: object) -> dict:
    """``values`` with ``change(path)`` applied to each string under ``keys`` (at any depth;
    list items too)."""
    def mapped(value: object) -> object:
        if isinstance(value, list):
            return [mapped(v) for v in value]
        return change(value) if isinstance(value, str) else value

    return {k: mapped(v) if k in keys else
            _map_paths(v, keys, change) if isinstance(v, dict) else v for k, v in values.items()}


def moved_roots(recorded: str | Path, folder: str | Path,
                root: str | Path) -> tuple[Path, Path] | None:
    """Where the tree ``root`` was and is now, from one run ``folder`` inside it whose run
    recorded its own path as ``recorded``: when ``recorded`` ends as ``folder`` does below
    ``root``, the part before was the tree's old root. Returns (old root, ``root``), both
    resolved, or None when the tree has not moved (or the record does not fit)."""
    below = Path(folder).absolute().relative_to(Path(root).absolute()).parts
    was = Path(recorded).absolute().parts
    if not below or was[-len(below):] != below:
        return None
    old, new = Path(*was[:-len(below)]).resolve(), Path(root).resolve()
    return None if old == new else (old, new)


def rebased(values: dict, keys: frozenset[str], old_root: Path, new_root: Path) -> dict:
    """``values`` (paths under ``keys`` already resolved) with each path inside
    ``old_root`` moved to the same place under ``new_root``: a run folder copied or moved
    with the experiment around it still names the files beside it that it was made with."""
    def change(path: str) -> str:
        p = Path(path)
        return str(new_root / p.relative_to(old_root)) if p.is_relative_to(old_root) else path

    return _map_paths(values, keys, change)


def same_tails(stored: dict, wanted: dict, keys: frozenset[str], root: Path) -> dict:
    """``stored`` (paths under ``keys`` resolved) with each path that ends as a wanted path
    inside ``root`` ends (its part below ``root``) replaced by that wanted path: for records
    that do not say where their own folder was, a moved experiment's files are known by their
    place in it. Use where the file's content is checked too (a generator's guide hashes)."""
    root = Path(root).resolve()
    inside: list[Path] = []
    _map_paths(wanted, keys, lambda v: inside.append(Path(v)) if Path(v).is_relative_to(root)
               else None)
    tails = {p.relative_to(root).parts: str(p) for p in inside}

    def change(path: str) -> str:
        parts = Path(path).parts
        return next((full for tail, full in tails.items()
                     if tail and parts[-len(tail):] == tail), path)

    return _map_paths(stored, keys, change)


def check_same_settings(out: Path, stored: dict, current: dict,
                        may_change: frozenset[str], model_class: type | None = None,
                        paths: frozenset[str] = frozenset()) -> None:
    """ConfigError naming the settings that differ from the run's manifest, apart from
    ``may_change``. With ``model_class``, options the run predates count as their defaults;
    the settings in ``paths`` are compared as resolved paths (:func:`paths_resolved`)."""
    stored = paths_resolved(with_current_defaults(stored, model_class), paths)
    current = paths_resolved(current, paths)
    changed = sorted(k for k in stored.keys() | current.keys()
                     if k not in may_change and stored.get(k) != current.get(k))
    if changed:
        allowed = ", ".join(sorted(may_change - {"out"})) or "nothing"
        raise ConfigError(f"{out}: --resume must continue the same run, but "
                          f"{', '.join(changed)} differ from its manifest (only {allowed} "
                          "may change)")


def start_again(out: Path, partial: Iterable[str]) -> None:
    """A run stopped before or during its first checkpoint has nothing to continue from: drop
    the files it wrote after its manifest (``partial``, names inside ``out``) and say that it
    starts again from step 0 in the same folder."""
    for name in partial:
        path = Path(out) / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    print(f"{out}: no checkpoint yet; starting this run again from step 0", file=sys.stderr)
