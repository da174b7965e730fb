"""An experiment's jobs: each stage and run starts once the stages it needs have finished (in
a useful order); a failed job stops what needs it (or everything, without ``keep_going``); the
runner cancels its jobs when it stops early; what can never start is refused up front."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from feraug.errors import FeraugError


class _Job:
    def __init__(self, job_id: str, outcome: object) -> None:
        self.job_id, self.outcome, self.cancelled = job_id, outcome, False
        self.paths = type("Paths", (), {"stderr": Path(f"jobs/{job_id}.err"),
                                        "stdout": Path(f"jobs/{job_id}.out")})()

    def done(self) -> bool:
        if isinstance(self.outcome, BaseException) and not isinstance(self.outcome, Exception):
            interrupt, self.outcome = self.outcome, None
            raise interrupt  # Ctrl-C arrives (once) while the runner polls
        return self.outcome is not None

    def result(self) -> dict:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    def cancel(self, check: bool = True) -> None:
        self.cancelled = True


class _Executor:
    def __init__(self, outcomes: list[object]) -> None:
        self.jobs = [_Job(str(i), o) for i, o in enumerate(outcomes)]
        self.submitted = 0

    def submit(self, fn, *args) -> _Job:  # noqa: ANN001
        job = self.jobs[self.submitted]
        self.submitted += 1
        return job


#: An experiment with stages: a guide, a guided and an unguided generator, a set from each,
#: a judge scoring both, and arms on real faces, on each set, and matched to one in steps.
STAGED = {
    "classifiers": [{"name": "guide"}],
    "generators": [{"name": "g1", "model": "stargan", "config": {"guide": "classifier:guide"}},
                   {"name": "g2", "model": "stargan"}],
    "synthetic": [{"name": "s1", "generator": "g1"},
                  {"name": "s2", "generator": "g2",
                   "plan": {"filter_model": "classifier:guide"}}],
    "judge": {},
    "arms": [{"name": "real"}, {"name": "gan1", "synthetic": ["s1"]},
             {"name": "gan2", "synthetic": ["s2"]}, {"name": "long", "match_steps": "gan1"}],
    "base": {"scheduler": "cosine"}, "seeds": [0]}


def _fake_jobs(monkeypatch: pytest.MonkeyPatch, fake: object, max_parallel: int,  # noqa: ANN202
               values: dict | None = None, keep_going: bool = True):
    """The executors module submitting to ``fake``, polling without pause, and a job
    config with ``max_parallel`` (and ``values``, else one arm and three seeds)."""
    from feraug.experiment import executors
    from feraug.experiment.config import parse_experiment_config

    cfg = parse_experiment_config({"data": {"path": "unused"}, "out": "runs/x",
                                   **(values or {"arms": [{"name": "real"}],
                                                 "seeds": [0, 1, 2]}),
                                   "executor": {"kind": "submitit-local",
                                                "max_parallel": max_parallel,
                                                "keep_going": keep_going}},
                                  source="test")
    monkeypatch.setattr(executors, "_executor", lambda cfg, stages=False: fake)
    monkeypatch.setattr(executors, "POLL_SECONDS", 0.0)
    return executors, cfg


@pytest.mark.parametrize("stop", [RuntimeError("CUDA out of memory"), KeyboardInterrupt()],
                         ids=["a-job-fails", "ctrl-c"])
def test_the_runner_cancels_its_jobs_when_it_stops_early(monkeypatch: pytest.MonkeyPatch,
                                                         stop: BaseException) -> None:
    fake = _Executor([None, stop, None])  # jobs 0 and 2 still train when job 1 stops things
    executors, cfg = _fake_jobs(monkeypatch, fake, max_parallel=3, keep_going=False)
    lines: list[str] = []
    expected = FeraugError if isinstance(stop, Exception) else KeyboardInterrupt
    with pytest.raises(expected):
        executors.run_as_jobs(cfg, [("real", 0), ("real", 1), ("real", 2)], lines.append)
    # a failed job has ended; a job interrupted while being polled may still run
    still_running = [True, isinstance(stop, KeyboardInterrupt), True]
    assert [job.cancelled for job in fake.jobs] == still_running
    assert sum("cancelled real seed" in line for line in lines) == sum(still_running)


def test_finished_jobs_report_what_is_left_and_about_how_long(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Executor([{"accuracy": 0.5}] * 3)
    executors, cfg = _fake_jobs(monkeypatch, fake, max_parallel=2)
    lines: list[str] = []
    executors.run_as_jobs(cfg, [("real", 0), ("real", 1), ("real", 2)], lines.append)
    finished = [line for line in lines if line.startswith("[")]
    left = [line.split(" run(s) left")[0] for line in lines if "run(s) left, about" in line]
    assert [line.split("]")[0] for line in finished] == ["[1/3", "[2/3", "[3/3"]
    assert left == ["2", "1"]  # none after the last job


class _SlowJob(_Job):
    """A job that finishes after ``polls`` calls of done()."""

    def __init__(self, job_id: str, outcome: object, polls: int) -> None:
        super().__init__(job_id, outcome)
        self.polls = polls

    def done(self) -> bool:
        self.polls -= 1
        return self.polls < 0


class _Recorder:
    """An executor handing out slow jobs and noting what each ran."""

    def __init__(self, polls: dict[str, int]) -> None:
        self.polls, self.jobs = polls, []

    def submit(self, fn, *args) -> _SlowJob:  # noqa: ANN001
        stage = fn.__name__ == "run_stage_job"
        name = f"{args[1]} {args[2]}" if stage else f"{args[1]}{args[2]}"
        outcome = f"{name} done" if stage else {"accuracy": 0.5}
        job = _SlowJob(str(len(self.jobs)), outcome, self.polls.get(name, 0))
        self.jobs.append(name)
        return job


def test_each_stage_and_run_starts_once_the_stages_it_needs_are_done(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from feraug.experiment.stage_graph import stages

    fake = _Recorder({"classifier guide": 2, "generator g1": 8, "generator g2": 1})
    executors, cfg = _fake_jobs(monkeypatch, fake, max_parallel=2, values=STAGED)
    lines: list[str] = []
    executors.run_as_jobs(cfg, cfg.schedule(), lines.append, stages=stages(cfg))
    # g2 needs nothing, so it trains beside the guide; real faces fill the slot g1 leaves;
    # the judge and the scores, which no run needs, take the slots no run can use
    assert fake.jobs == ["classifier guide", "generator g2", "real0", "generator g1",
                         "synthetic s2", "gan20", "judge judge", "score g2", "synthetic s1",
                         "score g1", "gan10", "long0"]
    submitted = [line for line in lines if line.startswith("submitted")]
    assert "submitted generator g1 (job 3; its progress: jobs/3.out)" in submitted
    done = [line.split(" (job")[0] for line in lines if " done (job" in line]
    assert done[0] == "generator g2 done" and done[-1] == "score g1 done"
    assert any(line.startswith("score g1 done") and "every stage is done" in line
               for line in lines)
    finished = [line.split("]")[0] for line in lines if line.startswith("[")]
    assert finished == ["[1/4", "[2/4", "[3/4", "[4/4"]  # stages are not runs
    assert any("2 of them wait for stages" in line for line in lines)


def test_a_failed_stage_job_stops_what_waits_for_it_and_the_rest_goes_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from feraug.experiment.stage_graph import stages

    fake = _Recorder({"generator g1": 2})
    failing = fake.submit

    def submit(fn, *args):  # noqa: ANN001, ANN202
        job = failing(fn, *args)
        if fake.jobs[-1] in ("generator g1", "real0"):
            job.outcome = RuntimeError(f"{fake.jobs[-1]} diverged")
        return job

    fake.submit = submit
    executors, cfg = _fake_jobs(monkeypatch, fake, max_parallel=2, values=STAGED)
    lines: list[str] = []
    with pytest.raises(FeraugError) as err:
        executors.run_as_jobs(cfg, cfg.schedule(), lines.append, stages=stages(cfg))
    # g1's set, score and the arms needing that set never start; g2's work all finishes
    assert set(fake.jobs) == {"classifier guide", "generator g1", "generator g2",
                              "synthetic s2", "judge judge", "score g2", "real0", "gan20"}
    message = str(err.value)
    assert message.startswith("2 job(s) failed: ")
    assert "generator g1: job 2 failed (generator g1 diverged); its log: jobs/2.err" in message
    assert "real seed 0: job 4 failed (real0 diverged)" in message
    assert "; 4 that need(s) them did not start; finished work is kept" in message
    assert "\n" not in message
    assert sum(line.startswith("FAILED ") for line in lines) == 2
    after = lines[next(i for i, x in enumerate(lines) if x.startswith("FAILED generator")):]
    assert not any("wait for stages" in line for line in after)  # nor counted as left
    assert any(line.startswith("[1/4] gan2 seed 0") for line in lines)


def test_without_keep_going_the_first_failure_stops_everything(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from feraug.experiment.stage_graph import Stage

    fake = _Executor([RuntimeError("generator diverged")])
    executors, cfg = _fake_jobs(monkeypatch, fake, max_parallel=2, keep_going=False, values={
        **STAGED, "classifiers": [], "judge": None,
        "generators": [{"name": "g1", "model": "stargan"}],
        "synthetic": [{"name": "s1", "generator": "g1"}],
        "arms": [{"name": "gan1", "synthetic": ["s1"]}]})
    with pytest.raises(FeraugError, match=r"^generator g1: job 0 failed \(generator diverged\)"):
        executors.run_as_jobs(cfg, [("gan1", 0)], print,
                              stages=[Stage("generator", "g1"), Stage("synthetic", "s1")])
    assert fake.submitted == 1  # neither the set nor the run that need it started


def test_a_failed_job_is_named_by_its_exception_line() -> None:
    from feraug.experiment.executors import failure_reason

    submitit_text = """Job (task=0) failed during processing with trace:
----------------------
Traceback (most recent call last):
  File "stages.py", line 59, in generator_status
feraug.errors.ConfigError: runs/x/checkpoint.pt: trained with a different configuration (guide)

----------------------
You can check full logs with 'job.stderr(0)' and 'job.stdout(0)'or at paths:
  - /runs/x/jobs/1/1_0_log.err
  - /runs/x/jobs/1/1_0_log.out"""
    assert failure_reason(submitit_text) == \
        "ConfigError: runs/x/checkpoint.pt: trained with a different configuration (guide)"
    assert failure_reason("CUDA out of memory") == "CUDA out of memory"


def test_what_each_stage_and_run_needs(tmp_path: Path) -> None:
    from feraug.experiment.config import parse_experiment_config
    from feraug.experiment.stage_graph import Stage, run_needs, stage_needs, stages

    out = tmp_path / "x"
    cfg = parse_experiment_config({
        **STAGED, "data": {"path": "procedural"}, "out": str(out),
        "generators": [*STAGED["generators"],
                       {"name": "two", "model": "twostage", "config": {
                           "translator_from": str(out / "generators/g2/checkpoint.pt")}},
                       {"name": "old", "checkpoint": "elsewhere/checkpoint.pt"},
                       {"name": "again", "checkpoint": str(out / "generators/g1/checkpoint.pt")}],
        "synthetic": [*STAGED["synthetic"], {"name": "s3", "generator": "old"},
                      {"name": "s4", "generator": "again", "plan": {
                          "filter_model": str(out / "classifiers/guide/best.pt")}}],
        "arms": [*STAGED["arms"], {"name": "warm", "init": "classifier:guide"},
                 {"name": "reused", "synthetic": ["s3"]},
                 {"name": "by-path", "synthetic": [str(out / "synthetic/s2")]}]},
        source="test")
    guide, g1, g2 = Stage("classifier", "guide"), Stage("generator", "g1"), \
        Stage("generator", "g2")
    needs = {str(st): stage_needs(cfg, st) for st in stages(cfg)}
    assert needs["classifier guide"] == set() and needs["judge"] == set()
    assert needs["generator g1"] == {guide} and needs["generator g2"] == set()
    assert needs["generator two"] == {g2}  # its translator is g2's checkpoint
    assert needs["synthetic s1"] == {g1}
    assert needs["synthetic s2"] == {g2, guide}  # filtered by the guide
    assert needs["synthetic s3"] == set()  # a reused generator is no stage's work...
    assert needs["synthetic s4"] == {g1, guide}  # ...unless it is one's, named by path
    assert needs["score g2"] == {Stage("judge", "judge"), g2, guide}
    assert [run_needs(cfg, a.name) for a in cfg.arms] == [
        set(), {Stage("synthetic", "s1")}, {Stage("synthetic", "s2")},
        {Stage("synthetic", "s1")}, {guide}, {Stage("synthetic", "s3")},
        {Stage("synthetic", "s2")}]


def test_a_transfer_source_needs_nothing_and_a_cycle_is_refused_before_any_job(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from feraug.experiment.config import parse_experiment_config
    from feraug.experiment.stage_graph import Stage, order_problems, stage_needs, stages

    # a classifier on other data drops `init` (it is the source `base.init` names)
    cfg = parse_experiment_config({
        "data": {"path": "procedural"}, "out": str(tmp_path / "x"),
        "base": {"init": "classifier:source"},
        "classifiers": [{"name": "source", "data": {"path": "procedural", "seed": 5}}],
        "arms": [{"name": "real"}]}, source="test")
    assert stage_needs(cfg, Stage("classifier", "source")) == set()
    assert order_problems(cfg) == []
    looped = {"data": {"path": "unused"}, "out": str(tmp_path / "y"),
              "classifiers": [{"name": "a", "train": {"init": "classifier:b"}},
                              {"name": "b", "train": {"init": "classifier:a"}}],
              "arms": [{"name": "real"}, {"name": "warm", "init": "classifier:a"}],
              "seeds": [0]}
    fake = _Executor([])
    executors, cfg = _fake_jobs(monkeypatch, fake, max_parallel=2, values=looped)
    assert order_problems(cfg) == ["these could never start (they wait for themselves): "
                                   "classifier a, classifier b, warm seed 0"]
    with pytest.raises(FeraugError, match="could never start.*classifier a, classifier b, "
                                          "warm seed 0$"):
        executors.run_as_jobs(cfg, cfg.schedule(), print, stages=stages(cfg))
    assert fake.submitted == 0  # refused before the real arm or anything else started


def test_sigterm_while_waiting_becomes_a_clean_stop() -> None:
    from feraug.experiment.executors import _terminate_raises

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit), _terminate_raises():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises long before this ends
    assert signal.getsignal(signal.SIGTERM) == before


CANCEL_FROM_BACKGROUND = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for `nohup feraug experiment run ... &`
import submitit
from pathlib import Path
from feraug.experiment.executors import _cancellable_children, _stderr_to
ex = submitit.AutoExecutor(folder=sys.argv[1], cluster="local")
ex.update_parameters(timeout_min=5)
with _cancellable_children(), _stderr_to(Path(sys.argv[2])):
    job = ex.submit(time.sleep, 300)
assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # the runner still ignores it
time.sleep(3)
assert not job.done(), job.stderr()
job.cancel(check=False)
deadline = time.time() + 30
while not job.done() and time.time() < deadline:
    time.sleep(0.2)
print("stopped" if job.done() else "still running", flush=True)
if not job.done():  # the controller and its task, so that nothing outlives the test
    subprocess = __import__("subprocess")
    subprocess.run(["pkill", "-9", "-P", str(job._process.pid)], check=False)
    job._process.kill()
"""


def test_jobs_of_a_runner_started_in_the_background_can_be_cancelled(tmp_path: Path) -> None:
    """A runner that starts with SIGINT ignored still cancels its local jobs (submitit
    cancels with SIGINT, and an ignored signal is inherited by the processes it starts), and
    the traceback its controller prints on cancellation goes to the controllers' log, not to
    the runner's terminal."""
    pytest.importorskip("submitit")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    controllers = tmp_path / "controllers.log"
    out = subprocess.run([sys.executable, "-c", CANCEL_FROM_BACKGROUND, str(tmp_path / "%j"),
                          str(controllers)], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "stopped", out.stderr[-2000:]
    time.sleep(1)  # the controller may still be writing as it exits
    assert "KeyboardInterrupt" in controllers.read_text()
    assert "Traceback" not in out.stderr, out.stderr[-2000:]


def test_the_running_line_says_how_far_each_job_has_come(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import json

    from feraug.experiment import job_progress
    from feraug.experiment.config import parse_experiment_config
    from feraug.experiment.stage_graph import Stage

    cfg = parse_experiment_config({**STAGED, "data": {"path": "unused"},
                                   "out": str(tmp_path / "x")}, source="test")
    gen, run = cfg.generator_dir("g1"), tmp_path / "x" / "real" / "seed0"
    for folder, config in [(gen, {"steps": 100}), (run, {"epochs": 8})]:
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({"config": config}))
    (gen / "log.jsonl").write_text('{"step": 10, "d_adv": 1.9}\n')
    (run / "metrics.jsonl").write_text('{"epoch": 2, "val_accuracy": 0.4}\n{"epoch": 3, "va')
    clock = iter([1000.0, 1060.0])
    monkeypatch.setattr(job_progress.time, "monotonic", lambda: next(clock))
    watch = job_progress.ProgressWatch(cfg)
    items = [Stage("generator", "g1"), ("real", 0), Stage("synthetic", "s1"), ("gan1", 0)]
    # a line still being written is not read; a job with nothing written yet has no count
    assert watch.line(items) == \
        "running: generator g1 step 10/100, real seed 0 epoch 2/8, synthetic s1, gan1 seed 0"
    with open(gen / "log.jsonl", "a") as f:
        f.write('{"step": 20, "d_adv": 1.8}\n')
    assert watch.line(items[:1]) == "running: generator g1 step 20/100 (about 8 min left)"
    clock = iter([1100.0, 1200.0])  # restarted from an earlier checkpoint: its pace is seen anew
    (gen / "log.jsonl").write_text('{"step": 5}\n')
    assert watch.line(items[:1]) == "running: generator g1 step 5/100"
    # a generator's log records its pace: the time left is known at first sight
    (gen / "log.jsonl").write_text('{"step": 20, "seconds_per_step": 3.0}\n')
    assert job_progress.ProgressWatch(cfg).line(items[:1]) == \
        "running: generator g1 step 20/100 (about 4 min left)"
    from feraug.experiment.runner import plan  # --dry-run says it too

    progress = {r.get("name", r.get("arm")): r.get("progress") for r in plan(cfg)
                if r["status"] == "partial"}
    assert progress == {"g1": "step 20/100, about 4 min left", "real": "epoch 2/8"}


def test_the_runner_says_how_far_its_jobs_have_come_every_so_often(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _Recorder({"real0": 3})
    executors, cfg = _fake_jobs(monkeypatch, fake, max_parallel=1)
    quiet = [line for line in _run_and_log(executors, cfg) if line.startswith("running:")]
    assert quiet == []  # every 10 min by default: not within this run
    cfg.executor.progress_every_min = 1e-9
    lines = _run_and_log(executors, cfg)
    assert "running: real seed 0" in lines and "running: real seed 1" not in lines


def _run_and_log(executors, cfg) -> list[str]:  # noqa: ANN001
    lines: list[str] = []
    executors.run_as_jobs(cfg, [("real", 0), ("real", 1)], lines.append)
    return lines
