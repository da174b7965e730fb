"""Running an experiment's independent runs as jobs of an existing engine: submitit, on
this machine (its local executor) or on a SLURM cluster. Each job trains and tests one
arm x seed with :func:`feraug.experiment.runner.run_one` in a fresh process and writes the
same run folder a sequential run writes, so results, resume and the report do not depend on
where a run executed. Job logs go to ``<out>/jobs/``.

An experiment's stages (helper classifiers, generators, synthetic sets, the judge) run as one
job too, submitted first: on a cluster they train on a compute node, not where the runner
waits, and the runs that need none of their outputs (real-data arms) train beside them.
The runs that do (synthetic sets, a step count matched to such an arm, a helper classifier as
``init``) are submitted once that job has finished.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from feraug.errors import ConfigError, FeraugError
from feraug.experiment.config import ExperimentConfig, parse_experiment_config
from feraug.progress import runs_left_text

POLL_SECONDS = 1.0
#: The waiting-list item of the job that makes the experiment's stages.
STAGES = ("(stages)", -1)


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


def _label(arm: str, seed: int) -> str:
    return "the stages" if (arm, seed) == STAGES else f"{arm} seed {seed}"


def run_job(values: dict, arm: str, seed: int) -> dict:
    """One run inside a job: rebuild the config and data, train, test; the metrics record."""
    from feraug.experiment.data import load_real_data
    from feraug.experiment.runner import run_one

    cfg = parse_experiment_config(values, source="experiment job")
    _use_own_cpus(cfg)
    return run_one(cfg, arm, seed, load_real_data(cfg.data))


def run_stages_job(values: dict) -> str:
    """The experiment's stages inside a job (each skipped when done); their progress goes
    to the job's log."""
    from feraug.experiment.data import load_real_data
    from feraug.experiment.runner import run_all_stages

    cfg = parse_experiment_config(values, source="experiment job")
    _use_own_cpus(cfg)
    run_all_stages(cfg, load_real_data(cfg.data), lambda line: print(line, flush=True))
    return "stages done"


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


def _cancel(running: list, log: Callable[[str], None]) -> None:
    """Cancel the jobs still running (the runner is stopping early): a job left running
    would go on training its run folder, and a rerun would meet it there."""
    for arm, seed, job in running:
        try:
            if job.done():  # finished while another job's failure was being handled
                continue
            job.cancel(check=False)
            log(f"cancelled {_label(arm, seed)} (job {job.job_id}); a rerun resumes it")
        except Exception as exc:  # cancelling is best effort; say which job may be left
            log(f"could not cancel {_label(arm, seed)} (job {job.job_id}): {exc}")


def run_as_jobs(cfg: ExperimentConfig, runs: list[tuple[str, int]],
                log: Callable[[str], None],
                expected: dict[tuple[str, int], float | None] | None = None,
                after_stages: frozenset[tuple[str, int]] | None = None) -> None:
    """Submit ``runs`` as jobs, at most ``executor.max_parallel`` at a time, and wait for
    them all; a failed job is one error line naming the run and its log folder. After each
    job, how many runs are left and about how long they take (``expected`` seconds per run
    where known, else this call's pace). When the runner stops early (a failed job, Ctrl-C,
    ``kill``) it cancels the jobs still running.

    With ``after_stages`` (None: the stages are done), a job that makes the experiment's
    stages goes first, and the runs named there wait until it has finished."""
    values = cfg.model_dump(mode="json")
    values["out"] = str(Path(cfg.out).resolve())  # a job may start in another folder
    ex = _executor(cfg)
    stages_ex = _executor(cfg, stages=True) if after_stages is not None else None
    waiting = ([STAGES] if after_stages is not None else []) + list(runs)
    running: list = []
    try:
        with _terminate_raises():
            _drive((ex, stages_ex), values, waiting, running, len(runs),
                   cfg.executor.max_parallel, log, expected or {}, set(after_stages or ()))
    except BaseException:
        _cancel(running, log)
        raise


def _drive(executors: tuple, values: dict, waiting: list, running: list, total: int,
           max_parallel: int, log: Callable[[str], None],
           expected: dict[tuple[str, int], float | None],
           blocked: set[tuple[str, int]]) -> None:
    """Keep up to ``max_parallel`` jobs running until ``waiting`` and ``running`` are empty
    (both lists are changed in place, so that a caller can cancel what is left); the runs in
    ``blocked`` wait for the stages job. ``executors``: the runs' and the stages job's.
    After each finished run, how many are left and about how long they will take at this
    pace."""
    submitted: dict[str, float] = {}
    durations: list[float] = []
    while waiting or running:
        while len(running) < max_parallel:
            ready = next((w for w in waiting if w not in blocked), None)
            if ready is None:
                break
            waiting.remove(ready)
            with _cancellable_children():
                job = executors[1].submit(run_stages_job, values) if ready == STAGES \
                    else executors[0].submit(run_job, values, *ready)
            submitted[str(job.job_id)] = time.monotonic()
            running.append((*ready, job))
            log(f"submitted {_label(*ready)} (job {job.job_id}" + (
                f"; its progress: {job.paths.stdout})" if ready == STAGES else ")"))
        time.sleep(POLL_SECONDS)
        for item in [r for r in running if r[2].done()]:
            arm, seed, job = item
            running.remove(item)
            try:
                metrics = job.result()
            except Exception as exc:  # submitit re-raises the job's error with its traceback
                reason = failure_reason(str(exc))
                raise FeraugError(f"{_label(arm, seed)}: job {job.job_id} failed ({reason}); "
                                  f"its log: {job.paths.stderr}") from None
            started = submitted.pop(str(job.job_id))
            if (arm, seed) == STAGES:
                blocked.clear()
                log(f"stages done (job {job.job_id}); the runs that need them can start")
                continue
            runs_waiting = [w for w in waiting if w != STAGES]
            runs_running = [r for r in running if r[:2] != STAGES]
            log(f"[{total - len(runs_waiting) - len(runs_running)}/{total}] {arm} seed "
                f"{seed}: test accuracy {metrics['accuracy']:.4f} (job {job.job_id})")
            durations.append(time.monotonic() - started)
            if runs_waiting or runs_running:
                now = time.monotonic()
                left = [expected.get((a, s)) for a, s in runs_waiting] + [
                    None if expected.get((a, s)) is None else
                    max(0.0, expected[(a, s)] - (now - submitted[str(j.job_id)]))
                    for a, s, j in runs_running]  # a running job has part of its time behind it
                # while the stages job holds a slot, the runs have one fewer; the runs it
                # holds back cannot start before it ends, whose time is not known
                stages_on = STAGES in waiting or any(r[:2] == STAGES for r in running)
                slots = max(1, max_parallel - stages_on)
                log(runs_left_text(left, durations, slots) + (
                    f"; {len(blocked)} of them wait for the stages job, whose time is not "
                    "counted" if blocked else ""))
