"""The warm trainer: a job's trainer is forked from a process that imported torch once, and is the same
process a fresh `python -m tuneforge.training` would be (its events on stdout, its log, the job's lock
held while it lives, its exit code); a job whose import-time environment differs gets a fresh one."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess

from tuneforge.jobs.trainer_process import ForkedTrainer, start_trainer


def _start(tmp_path, config: str, warm: bool = True):
    lock = os.open(tmp_path / "run.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    with open(tmp_path / "train.log", "ab") as log:
        proc = start_trainer(config, log, lock, warm=warm)
    os.close(lock)  # the trainer holds the lock now, as the runner's copy is gone
    return proc


def _locked(path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def test_a_forked_trainer_speaks_the_protocol_and_holds_the_lock(tmp_path):
    config = tmp_path / "train_config.json"
    config.write_text("{not json", "utf-8")
    for _ in range(2):  # the second one comes from the same warm process
        proc = _start(tmp_path, str(config))
        assert isinstance(proc, ForkedTrainer)
        line = json.loads(proc.stdout.readline())
        assert line["type"] == "failed" and line["code"] == "invalid_config", line
        assert proc.wait(timeout=60) == 1 and proc.poll() == 1
        proc.stdout.close()
        assert not _locked(tmp_path / "run.lock")  # let go with the trainer's exit


def test_a_default_written_by_torch_while_serving_keeps_the_warm_trainer(tmp_path, monkeypatch):
    # torch's inductor writes TORCHINDUCTOR_CACHE_DIR into the server's environment on first use: every
    # job after the first chat request used to start cold because of it.
    config = tmp_path / "train_config.json"
    config.write_text("{not json", "utf-8")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    proc = _start(tmp_path, str(config))
    assert isinstance(proc, ForkedTrainer)
    assert json.loads(proc.stdout.readline())["code"] == "invalid_config"
    assert proc.wait(timeout=60) == 1
    proc.stdout.close()


def test_a_killed_trainer_reports_the_signal_like_popen(tmp_path):
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)  # reading it blocks: a trainer that waits until it is killed
    proc = _start(tmp_path, str(fifo))
    assert isinstance(proc, ForkedTrainer) and proc.poll() is None
    assert _locked(tmp_path / "run.lock")
    proc.kill()
    assert proc.wait(timeout=60) == -9
    proc.stdout.close()


def test_an_import_time_variable_of_its_own_gets_a_fresh_process(tmp_path, monkeypatch):
    config = tmp_path / "train_config.json"
    config.write_text("{}", "utf-8")
    monkeypatch.setenv("OMP_NUM_THREADS", "1" if os.environ.get("OMP_NUM_THREADS") != "1" else "2")
    proc = _start(tmp_path, str(config))
    assert isinstance(proc, subprocess.Popen)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1 and json.loads(out)["type"] == "failed"
