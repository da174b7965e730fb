"""Running an experiment's independent runs as jobs of an existing engine: submitit, on
this machine (its local executor) or on a SLURM cluster. Each job trains and tests one
arm x seed with :func:`feraug.experiment.runner.run_one` in a fresh process and writes the
same run folder a sequential run writes, so results, resume and the report do not depend on
where a run executed. Job logs go to ``<out>/jobs/``.

Each of an experiment's unfinished stages (a helper classifier, a generator, a synthetic set,
the judge, a generator's score) is a job too, submitted once the stages it needs have
finished (:mod:`feraug.experiment.stage_graph`): on a cluster they train on compute nodes,
not where the runner waits; independent generators train side by side; a run starts as soon
as the stages it needs have finished, and runs that need none (real-data arms) fill the
slots the stages leave. When several could start, the stages some run needs go first (they
hold up the most work), then the runs, then the stages no run needs (the judge, the scores).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from feraug.errors import ConfigError, FeraugError
from feraug.experiment.config import ExperimentConfig, parse_experiment_config
from feraug.experiment.job_progress import ProgressWatch
from feraug.experiment.stage_graph import (
    Run,
    Stage,
    label,
    needs,
    never_ready_problem,
    run_stage,
)
from feraug.progress import runs_left_text

POLL_SECONDS = 1.0


def failure_reason(text: str) -> str:
    """The line saying why a job failed, from the error submitit re-raises: its traceback's
    last exception line (``ConfigError: ...``, without the module), else its last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"[A-Za-z_][\w.]*(Error|Exception|Exit)\b",
                                                 line)]
    if not raised:
        return lines[-1] if lines else ""
    name, _, message = raised[-1].partition(":")
    return f"{name.rsplit('.', 1)[-1]}:{message}" if message else name.rsplit(".", 1)[-1]


def run_job(values: dict, arm: str, seed: int) -> dict:
    """One run inside a job: rebuild the config and data, train, test; the metrics record."""
    from feraug.experiment.data import load_real_data
    from feraug.experiment.runner import run_one

    cfg = parse_experiment_config(values, source="experiment job")
    _use_own_cpus(cfg)
    return run_one(cfg, arm, seed, load_real_data(cfg.data))


def run_stage_job(values: dict, kind: str, name: str) -> str:
    """One stage inside a job (skipped when done, resumed when started); its progress goes
    to the job's log."""
    from feraug.experiment.data import load_real_data

    cfg = parse_experiment_config(values, source="experiment job")
    _use_own_cpus(cfg)
    run_stage(cfg, Stage(kind, name), load_real_data(cfg.data),
              lambda line: print(line, flush=True))
    return f"{kind} {name} done"


def _use_own_cpus(cfg: ExperimentConfig) -> None:
    """Give PyTorch the job's ``cpus_per_task`` threads: submitit's local executor does not
    limit a job's CPUs, and jobs that each took every core would slow each other down."""
    import torch

    torch.set_num_threads(cfg.executor.cpus_per_task)


def _executor(cfg: ExperimentConfig, stages: bool = False):  # noqa: ANN202 (submitit: optional)
    try:
        import submitit
    except ImportError:
        raise ConfigError(f"executor {cfg.executor.kind!r} needs submitit: "
                          "pip install 'feraug[cluster]'") from None
    spec = cfg.executor
    cluster = "local" if spec.kind == "submitit-local" else "slurm"
    ex = submitit.AutoExecutor(folder=Path(cfg.out) / "jobs" / "%j", cluster=cluster)
    params = {"timeout_min": spec.stages_timeout_min if stages else spec.timeout_min,
              "cpus_per_task": spec.cpus_per_task,
              "gpus_per_node": spec.gpus_per_node, "name": "feraug"}
    if cluster == "slurm":
        params["slurm_array_parallelism"] = spec.max_parallel
        if spec.slurm_partition:
            params["slurm_partition"] = spec.slurm_partition
    ex.update_parameters(**params)
    return ex


@contextmanager
def _terminate_raises() -> Iterator[None]:
    """Turn SIGTERM (``kill``) into ``SystemExit`` while waiting on jobs, so that the jobs
    are cancelled as on Ctrl-C instead of training on unseen (signals: main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:  # None: a handler not set from Python; the default is the safe guess
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@contextmanager
def _cancellable_children() -> Iterator[None]:
    """Let the processes started inside receive SIGINT, even when this one ignores it.

    A runner started in the background by a script (``nohup feraug ... &``) begins with
    SIGINT ignored, and the processes it starts inherit that: submitit's local executor
    cancels a job with SIGINT, which the job's controller would then never see. A Python
    handler is reset to the default on exec, so the standard one is installed for the
    moment of the submission only; the runner itself keeps ignoring SIGINT."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) != signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _stderr_to(path: Path | None) -> Iterator[None]:
    """Give the processes started inside ``path`` as their standard error (None: this
    process's own).

    submitit's local executor starts one controller process per job, which shares the
    runner's standard error; cancelling a job (SIGINT) makes the controller print a
    KeyboardInterrupt traceback there, in the user's terminal, after the runner's own line
    saying the job was cancelled. The controller's words belong beside the job logs. The
    runner's descriptor 2 points at the file for the moment of the submission only."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as file:
        os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _cancel(running: list, log: Callable[[str], None]) -> None:
    """Cancel the jobs still running (the runner is stopping early): a job left running
    would go on training its run folder, and a rerun would meet it there."""
    for item, job in running:
        try:
            if job.done():  # finished while another job's failure was being handled
                continue
            job.cancel(check=False)
            log(f"cancelled {label(item)} (job {job.job_id}); a rerun resumes it")
        except Exception as exc:  # cancelling is best effort; say which job may be left
            log(f"could not cancel {label(item)} (job {job.job_id}): {exc}")


def run_as_jobs(cfg: ExperimentConfig, runs: list[Run], log: Callable[[str], None],
                expected: dict[Run, float | None] | None = None,
                stages: list[Stage] = ()) -> None:
    """Submit the unfinished ``stages`` and the ``runs`` as jobs, at most
    ``executor.max_parallel`` at a time, each once the stages it needs have finished, and
    wait for them all. After each run, how many runs are left and about how long they take
    (``expected`` seconds per run where known, else this call's pace).

    A failed job is one line naming it, why, and its log. With ``executor.keep_going`` (the
    default) the other jobs go on, what needs the failed one never starts, and one error at
    the end names every failure; without it the first failure stops the runner. When the
    runner stops early (that, Ctrl-C, ``kill``) it cancels the jobs still running."""
    values = cfg.model_dump(mode="json")
    values["out"] = str(Path(cfg.out).resolve())  # a job may start in another folder
    executors = (_executor(cfg), _executor(cfg, stages=True) if stages else None)
    to_do = set(stages)
    waits = {item: needs(cfg, item) & to_do for item in [*stages, *runs]}
    problem = never_ready_problem(waits)
    if problem:  # refused before anything starts, not hours later when all else is done
        raise ConfigError(problem)
    feeds = _needed_by(runs, waits)
    order = [s for s in stages if s in feeds] + list(runs) + \
        [s for s in stages if s not in feeds]
    queue = _JobQueue(executors, values, order, waits, cfg.executor.max_parallel, log,
                      expected or {}, keep_going=cfg.executor.keep_going, feeds=feeds,
                      watch=(ProgressWatch(cfg), cfg.executor.progress_every_min * 60))
    try:
        with _terminate_raises():
            queue.drive()
    except BaseException:
        _cancel(queue.running, log)
        raise
    queue.raise_failures()


def _needed_by(runs: list[Run], waits: dict) -> set[Stage]:
    """The stages the ``runs`` need, directly or through other stages."""
    found: set[Stage] = set()
    todo = [st for run in runs for st in waits[run]]
    while todo:
        stage = todo.pop()
        if stage not in found:
            found.add(stage)
            todo.extend(waits[stage])
    return found


class _JobQueue:
    """Jobs waiting, running and done: ``drive`` keeps up to ``max_parallel`` running; an
    item starts once the stages in ``waits[item]`` have finished, the first ready one in
    ``waiting`` order first. ``executors``: the runs' and the stages'. ``running`` holds
    ``(item, job)`` pairs, for the caller to cancel when it stops early."""

    def __init__(self, executors: tuple, values: dict, waiting: list,
                 waits: dict[Stage | Run, set[Stage]], max_parallel: int,
                 log: Callable[[str], None], expected: dict[Run, float | None],
                 keep_going: bool, feeds: set[Stage],
                 watch: tuple[ProgressWatch | None, float] = (None, 0.0)) -> None:
        self.executors, self.values, self.waiting, self.waits = executors, values, waiting, \
            waits
        self.max_parallel, self.log, self.expected = max_parallel, log, expected
        self.keep_going, self.feeds = keep_going, feeds  # feeds: the stages runs need
        self.running: list = []
        self.finished: set[Stage] = set()
        self.failed: list[str] = []  # one "what: why; its log" text per failed job
        self.runs_done = 0
        self.never_started = 0  # jobs that needed a failed stage
        self.submitted: dict[str, float] = {}
        self.durations: list[float] = []
        self.total = sum(not isinstance(w, Stage) for w in waiting)  # runs, not stages
        self.watch = watch  # how far running jobs have come, and how often (seconds) to say it
        self.said_at = time.monotonic()

    def drive(self) -> None:
        """Submit and wait until nothing is waiting or running, or nothing left can start
        (it waits for a stage that failed)."""
        while self.waiting or self.running:
            self._start_ready()
            if not self.running:
                self._stop_blocked()
                return
            time.sleep(POLL_SECONDS)
            for entry in [r for r in self.running if r[1].done()]:
                self.running.remove(entry)
                self._collect(*entry)
            self._say_progress()

    def _say_progress(self) -> None:
        """Every ``watch`` seconds, one line on how far the running jobs have come (a
        generator's training can take hours with nothing else to say)."""
        watch, every = self.watch
        if watch is None or every <= 0 or not self.running or \
                time.monotonic() - self.said_at < every:
            return
        self.said_at = time.monotonic()
        self.log(watch.line([item for item, _ in self.running]))

    def _start_ready(self) -> None:
        while len(self.running) < self.max_parallel:
            ready = next((w for w in self.waiting if self.waits[w] <= self.finished), None)
            if ready is None:
                return
            self.waiting.remove(ready)
            job = _submit(self.executors, self.values, ready)
            self.submitted[str(job.job_id)] = time.monotonic()
            self.running.append((ready, job))
            self.log(f"submitted {label(ready)} (job {job.job_id}" + (
                f"; its progress: {job.paths.stdout})" if isinstance(ready, Stage) else ")"))

    def _stop_blocked(self) -> None:
        """Nothing runs and nothing waiting can start: it waits for failed stages (said
        once at the end; without failures :func:`never_ready` has refused it before)."""
        if not self.failed:
            raise FeraugError("nothing can start: " + ", ".join(
                f"{label(w)} waits for {', '.join(map(str, self.waits[w] - self.finished))}"
                for w in self.waiting))

    def _collect(self, item: Stage | Run, job: object) -> None:
        started = self.submitted.pop(str(job.job_id))
        try:
            metrics = job.result()
        except Exception as exc:  # submitit re-raises the job's error with its traceback
            text = f"{label(item)}: job {job.job_id} failed ({failure_reason(str(exc))}); " \
                f"its log: {job.paths.stderr}"
            if not self.keep_going:
                raise FeraugError(text) from None
            self.failed.append(text)
            self.log(f"FAILED {text}; the other jobs go on" + (
                "; what needs it will not start" if isinstance(item, Stage) else ""))
            if isinstance(item, Stage):
                self._drop_what_needs(item)
            return
        if isinstance(item, Stage):
            self.finished.add(item)
            left = [w for w in self.waiting + [r[0] for r in self.running]
                    if isinstance(w, Stage)]
            self.log(f"{item} done (job {job.job_id}); "
                     + (f"{len(left)} stage(s) left" if left else "every stage is done"))
            return
        self.runs_done += 1
        self.log(f"[{self.runs_done}/{self.total}] {label(item)}: test accuracy "
                 f"{metrics['accuracy']:.4f} (job {job.job_id})")
        self.durations.append(time.monotonic() - started)
        self._log_runs_left()

    def _drop_what_needs(self, failed: Stage) -> None:
        """Take out of ``waiting`` everything that needs the failed stage, directly or
        through another stage, so that it is neither counted as left nor waited for."""
        lost = {failed}
        while True:
            blocked = [w for w in self.waiting if self.waits[w] & lost]
            if not blocked:
                return
            for w in blocked:
                self.waiting.remove(w)
                self.never_started += 1
                if isinstance(w, Stage):
                    lost.add(w)

    def _log_runs_left(self) -> None:
        """How many runs are left and about how long they take; runs still waiting for
        stages are counted, their stages' time is not."""
        runs_waiting = [w for w in self.waiting if not isinstance(w, Stage)]
        runs_running = [(r, j) for r, j in self.running if not isinstance(r, Stage)]
        if not runs_waiting and not runs_running:
            return
        now, expected = time.monotonic(), self.expected
        left = [expected.get(r) for r in runs_waiting] + [
            None if expected.get(r) is None else
            max(0.0, expected[r] - (now - self.submitted[str(j.job_id)]))
            for r, j in runs_running]  # a running job has part of its time behind it
        # stage jobs hold slots the runs cannot use while they train; the stages no run
        # needs start only when no run can
        stages_on = sum(isinstance(r, Stage) for r, _ in self.running) + \
            any(w in self.feeds for w in self.waiting)
        blocked = sum(not self.waits[r] <= self.finished for r in runs_waiting)
        self.log(runs_left_text(left, self.durations, max(1, self.max_parallel - stages_on))
                 + (f"; {blocked} of them wait for stages, whose time is not counted"
                    if blocked else ""))

    def raise_failures(self) -> None:
        """One error naming every failed job and how much never started because of them."""
        if not self.failed:
            return
        never = self.never_started + len(self.waiting)
        raise FeraugError(f"{len(self.failed)} job(s) failed: " + "; ".join(self.failed) + (
            f"; {never} that need(s) them did not start" if never else "")
            + "; finished work is kept: rerun the experiment to retry (`feraug experiment "
            "report OUT` reports the finished runs)")


def _submit(executors: tuple, values: dict, item: Stage | Run):  # noqa: ANN202 (a job)
    local = values["executor"]["kind"] == "submitit-local"
    controllers_log = Path(values["out"]) / "jobs" / "controllers.log" if local else None
    with _cancellable_children(), _stderr_to(controllers_log):
        if isinstance(item, Stage):
            return executors[1].submit(run_stage_job, values, item.kind, item.name)
        return executors[0].submit(run_job, values, *item)
