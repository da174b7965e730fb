"""How far the running jobs of an experiment have come, read from the files their runs write,
for the runner's periodic ``running: ...`` line and ``--dry-run``: a generator's step (its
``log.jsonl``) out of its configured steps, a classifier's epoch (its ``metrics.jsonl``) out
of its epochs, with the time left at the pace seen since the runner first looked (else, for a
generator, at the pace its log last recorded). A job whose run has written nothing
yet, and the short stages (synthetic sets, scores), are named without a count.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import NamedTuple

from feraug.experiment.config import ExperimentConfig, run_dir
from feraug.experiment.stage_graph import Run, Stage, label
from feraug.progress import duration_text

#: How much of the end of a log is read for its last line.
TAIL_BYTES = 8192


def last_json_line(path: Path) -> dict | None:
    """The last complete JSON line of a JSON-lines file (read from its end), or None."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            lines = f.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line still being written, or cut by the seek
        if isinstance(record, dict):
            return record
    return None


def _configured(folder: Path, key: str) -> int | None:
    try:
        value = json.loads((folder / "manifest.json").read_text()).get("config", {}).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def counted(cfg: ExperimentConfig, item: Stage | Run) -> Count | None:
    """How far a job's run has come (``Count("step", 1750, 2000, 310.0)``), or None when it
    has no count (a short stage, nothing written yet, or files it cannot read)."""
    try:
        return _counted(cfg, item)
    except Exception:  # a progress line is a courtesy: it must never stop the runner
        return None


def _counted(cfg: ExperimentConfig, item: Stage | Run) -> Count | None:
    if isinstance(item, Stage) and item.kind == "generator":
        folder, log, unit, key = cfg.generator_dir(item.name), "log.jsonl", "step", "steps"
    elif isinstance(item, Stage) and item.kind in ("classifier", "judge"):
        folder = cfg.classifier_dir(item.name) if item.kind == "classifier" else cfg.judge_dir()
        log, unit, key = "metrics.jsonl", "epoch", "epochs"
    elif isinstance(item, Stage):
        return None
    else:
        folder, log, unit, key = run_dir(cfg.out, *item), "metrics.jsonl", "epoch", "epochs"
    last, total = last_json_line(folder / log), _configured(folder, key)
    if last is None or total is None or not isinstance(last.get(unit), int):
        return None
    pace = last.get("seconds_per_step")  # a generator's log says it (classifiers' do not)
    left = (total - last[unit]) * pace if isinstance(pace, (int, float)) else None
    return Count(unit, last[unit], total, left)


class Count(NamedTuple):
    """How far a run has come: ``done`` of ``total`` ``unit`` (``step``, ``epoch``), and the
    seconds left at the pace its own log last recorded (None where it records none)."""

    unit: str
    done: int
    total: int
    seconds_left: float | None = None

    def __str__(self) -> str:
        text = f"{self.unit} {self.done}/{self.total}"
        if self.seconds_left is not None and self.done < self.total:
            text += f", about {duration_text(self.seconds_left)} left"
        return text


class ProgressWatch:
    """Remembers when it first saw each job at which count, to say the time left at the pace
    since then (a job's earlier life may have been spent beside other jobs, or before a
    restart)."""

    def __init__(self, cfg: ExperimentConfig) -> None:
        self.cfg = cfg
        self.first: dict[Stage | Run, tuple[float, int]] = {}

    def line(self, items: list[Stage | Run]) -> str:
        """``running: generator g step 1750/2000 (about 8 min left), real seed 2, ...``."""
        now = time.monotonic()
        parts = []
        for item in items:
            name = label(item)
            count = counted(self.cfg, item)
            if count is None:
                parts.append(name)
                continue
            unit, done, total, left = count
            if done < self.first.get(item, (now, done))[1]:  # restarted: its pace anew
                del self.first[item]
            seen_at, seen_done = self.first.setdefault(item, (now, done))
            if done > seen_done and now > seen_at:  # the pace seen here, with the jobs now
                left = (total - done) * (now - seen_at) / (done - seen_done)
            text = f"{name} {unit} {done}/{total}"
            if left is not None and done < total:
                text += f" (about {duration_text(left)} left)"
            parts.append(text)
        return "running: " + ", ".join(parts)
