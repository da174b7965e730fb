"""One trainer per run folder: a second process training into a folder that another process
trains into gets one error line; a holder that dies, however it dies, frees the folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from feraug.engine.run_lock import LOCK_NAME, OWNER_NAME, RunInUseError, run_lock

HOLD = """
import sys, time
from feraug.engine.run_lock import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(folder: Path) -> subprocess.Popen:
    """A separate process holding ``folder``'s lock until it is killed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_is_refused_and_a_killed_holder_frees_the_folder(
        tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = _holder(run)
    try:
        with pytest.raises(RunInUseError) as err, run_lock(run):
            pass
        message = str(err.value)
        assert str(run) in message and f"process {proc.pid} on " in message
        assert "\n" not in message
    finally:
        proc.send_signal(signal.SIGKILL)  # no clean-up code runs: the OS drops the lock
        proc.wait()
    with run_lock(run):  # taken at once: no stale lock
        assert (run / OWNER_NAME).read_text().startswith(f"{os.getpid()} on ")
    with run_lock(run):  # released on leaving the block, in this process too
        pass


def test_a_user_folder_gets_no_lock_file(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with run_lock(mine):
        pass
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_training_into_a_folder_in_use_is_one_error_line(fer_slice: Path, run_cli,
                                                         tmp_path: Path, one_thread) -> None:
    run = tmp_path / "run"
    args = ("train", "--data", fer_slice, "--model", "zhu-cnn", "--max-steps", "1",
            "--batch-size", "8", "--out", run)
    proc = _holder(run)
    try:
        res = run_cli(*args)
        assert res.code == 2
        assert "is training this run now" in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
        assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME, OWNER_NAME]
        gan = run_cli("gan", "train", "-m", "fastgan", "-d", fer_slice, "--steps", "1",
                      "-o", run)
        assert gan.code == 2 and "is training this run now" in gan.stderr
    finally:
        proc.kill()
        proc.wait()
    # the lock files alone do not make the folder someone else's: a new run starts there
    assert run_cli(*args).code == 0
    assert (run / "manifest.json").is_file() and (run / "best.pt").is_file()


def test_a_second_experiment_runner_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    """Two runners on one experiment folder would each take the other's unfinished stages for
    interrupted ones and delete them: the second is refused; the lock files alone do not make
    the folder someone else's."""
    from experiment_helpers import tiny_config

    from feraug.experiment.config import parse_experiment_config
    from feraug.experiment.runner import run_experiment

    out = tmp_path / "exp"
    cfg = parse_experiment_config({**tiny_config(out), "seeds": [0]})
    proc = _holder(out)
    try:
        with pytest.raises(RunInUseError):
            run_experiment(cfg)
    finally:
        proc.kill()
        proc.wait()
    assert run_experiment(cfg)["runs_done"] == 2
