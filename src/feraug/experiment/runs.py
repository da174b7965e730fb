"""One classifier run inside an experiment folder, the single way an experiment trains a
classifier (an arm's seed, a helper classifier, the judge): its status, the check that a
started or finished folder holds this very run, and fit -> score the best checkpoint on the
test split -> write the test record last (which marks the run finished).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from feraug.classifier.config import TrainConfig
from feraug.classifier.evaluate import PREDICTIONS, evaluate_classifier
from feraug.classifier.trainer import FitResult, fit
from feraug.data.dataset import FaceDataset
from feraug.devices import choose_device
from feraug.engine.run_folder import JsonLines
from feraug.errors import CheckpointError, ConfigError, FeraugError
from feraug.io import write_json
from feraug.models.checkpoint import LoadedClassifier, load_classifier
from feraug.resume import (
    CLASSIFIER_PATHS,
    moved_roots,
    paths_resolved,
    rebased,
    with_current_defaults,
)

Log = Callable[[str], None]
#: The test record, written last: a folder holding it is a finished run.
RECORD = Path("test") / "metrics.json"
#: TrainConfig keys that may differ between a stored run and this config (labels only).
_IGNORED_KEYS = ("out", "data")
#: ``annotate(metrics, fit result, training seconds, loaded best checkpoint)`` -> the record.
Annotate = Callable[[dict, FitResult, float, LoadedClassifier], dict]


def run_status(folder: Path) -> str:
    """``done`` (test record written), ``partial`` (started: has a manifest) or ``todo``."""
    if (folder / RECORD).is_file():
        return "done"
    return "partial" if (folder / "manifest.json").is_file() else "todo"


def _comparable(config: dict) -> dict:
    """``config`` without its label keys, its paths resolved (:data:`CLASSIFIER_PATHS`)."""
    values = {k: v for k, v in json.loads(json.dumps(config)).items() if k not in _IGNORED_KEYS}
    return paths_resolved(values, CLASSIFIER_PATHS)


def experiment_root(folder: Path) -> Path | None:
    """The experiment folder a run folder lies in (the nearest of its parents, up to three
    levels, whose manifest says ``experiment``), or None."""
    for parent in list(Path(folder).absolute().parents)[:3]:
        try:
            kind = json.loads((parent / "manifest.json").read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            continue
        if kind == "experiment":
            return parent
    return None


def check_run_config(folder: Path, expected: dict) -> None:
    """Refuse to reuse a run folder whose stored TrainConfig differs from ``expected``. In a
    moved or copied experiment folder, the recorded paths inside it count as moved with it."""
    try:
        stored = json.loads((folder / "manifest.json").read_text()).get("config", {})
    except (OSError, json.JSONDecodeError):
        raise FeraugError(f"{folder}: run folder has no readable manifest.json") from None
    old = _comparable(with_current_defaults(stored, TrainConfig))
    root = experiment_root(folder)
    roots = moved_roots(stored["out"], folder, root) \
        if root is not None and isinstance(stored.get("out"), str) else None
    if roots is not None:
        old = rebased(old, CLASSIFIER_PATHS, *roots)
    new = _comparable(expected)
    # Keys missing from the stored config are options added by a later feraug (e.g.
    # data_seed, which experiments always took from data.seed): not a difference.
    diff = sorted(k for k in set(old) | set(new) if k in old and old.get(k) != new.get(k))
    if diff:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:4])
        raise ConfigError(f"{folder}: this run was made with a different configuration "
                          f"({shown}); choose a new --out or delete that run folder")


def read_record(folder: Path) -> dict:
    """A finished run's test record; FeraugError naming the file if it is damaged. A record
    written before records kept ``best_val_macro_f1`` gets it from the run's log (the
    validation row of its chosen checkpoint's step), so old runs take part in choosing the
    best arm on validation macro-F1."""
    path = folder / RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FeraugError(f"{path}: unreadable run record ({type(exc).__name__})") from None
    if "best_val_macro_f1" not in record and record.get("best_step") is not None:
        record["best_val_macro_f1"] = _logged_val_macro_f1(folder, record["best_step"])
    return record


def data_names_subjects(out: Path) -> bool | None:
    """Whether the data of the experiment folder ``out`` name subjects, from its manifest's
    data summary (None when the manifest does not say)."""
    try:
        summary = json.loads((Path(out) / "manifest.json").read_text()).get("data_summary")
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or "subjects" not in summary:
        return None
    return bool(summary["subjects"])


def _logged_val_macro_f1(folder: Path, step: int) -> float | None:
    """Validation macro-F1 logged at ``step`` in ``folder/metrics.jsonl`` (None if absent)."""
    try:
        rows = JsonLines(folder / "metrics.jsonl").rows()
    except (OSError, CheckpointError):
        return None
    for row in rows:
        if isinstance(row, dict) and row.get("step") == step:
            value = row.get("val_macro_f1")
            return float(value) if isinstance(value, (int, float)) else None
    return None


def _check_same_real_data(folder: Path, real: FaceDataset) -> None:
    recorded = json.loads((folder / "manifest.json").read_text()).get("data_fingerprint")
    if recorded not in (None, real.fingerprint()):
        raise ConfigError(f"{folder}: this classifier was trained on other data (fingerprint "
                          f"{recorded}, now {real.fingerprint()}); choose a new `out` or "
                          "delete that folder")


def fit_and_test(tc: TrainConfig, real: FaceDataset, label: str, log: Log,
                 annotate: Annotate | None = None, check_data: bool = False) -> dict:
    """Train (or resume, or skip when finished) ``tc`` into ``tc.out``, score its best
    checkpoint on ``real``'s test split and write the record last; returns the record.

    ``check_data``: a started or finished folder must also have been trained on exactly
    ``real`` (its manifest's fingerprint). Helper classifiers need it: one with its own
    ``data:`` is not covered by the experiment folder's own data check."""
    folder = Path(tc.out)
    status = run_status(folder)
    if status != "todo":
        check_run_config(folder, tc.model_dump())
        if check_data:
            _check_same_real_data(folder, real)
    if status == "done":
        log(f"{label}: finished earlier")
        return read_record(folder)
    log(f"{label}: {'resuming' if status == 'partial' else 'training'} {tc.model} -> {folder}")
    t0 = time.perf_counter()
    result = fit(tc, dataset=real, resume=status == "partial")
    # over every call that trained this run, so a run resumed near its end does not make
    # its arm look fast in time estimates
    seconds = result.train_seconds or time.perf_counter() - t0
    loaded = load_classifier(result.best_checkpoint, choose_device(tc.device))
    metrics = evaluate_classifier(loaded, real, split="test",
                                  predictions=(folder / RECORD).parent / PREDICTIONS)
    if annotate is not None:
        metrics = annotate(metrics, result, seconds, loaded)
    write_json(metrics, folder / RECORD)  # written last: marks the run finished
    log(f"{label}: test accuracy {metrics['accuracy']:.4f}, macro-F1 "
        f"{metrics['macro_f1']:.4f} ({seconds:.1f} s)")
    return metrics
