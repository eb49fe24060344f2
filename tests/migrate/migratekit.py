"""Helpers for the migration tests: a live tuneforge server with its own home and worker, the real
`tuneforge migrate` command as a subprocess, and polling with deadlines."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from testkit import UvicornThread, wait_for

CLI = Path(sys.executable).parent / "tuneforge"
SOURCE_KEY = "sk-source-anything"


class Server:
    """The real API app and its job worker under uvicorn in a thread, on a fresh home and database."""

    def __init__(self, settings, home: Path, *, worker: bool = True):
        from tuneforge.api.app import create_app

        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(settings.registry_path, home / "bases.json")  # knows the tiny test model
        self.settings = dataclasses.replace(settings, home=home,
                                            database_url=f"sqlite:///{home / 'tuneforge.db'}")
        self.app = create_app(self.settings, start_worker=worker)
        self.uvicorn = UvicornThread(self.app)
        self.base_url = self.uvicorn.url + "/v1"

    def client(self):
        from openai import OpenAI

        return OpenAI(base_url=self.base_url, api_key="sk-anything", max_retries=0, timeout=120)

    def stop(self) -> None:
        self.uvicorn.stop()


def finished(client, job_id: str, timeout: float = 120) -> dict:
    def done():
        job = client.fine_tuning.jobs.retrieve(job_id)
        return job if job.status in ("succeeded", "failed", "cancelled") else None

    job = wait_for(done, timeout, f"job {job_id} to finish")
    assert job.status == "succeeded", job.error
    return job.model_dump()


def _env() -> dict[str, str]:
    """The user's environment without an OPENAI_* setting that would point a command elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return {**env, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}


def migrate(source_url: str, target_url: str, *args: str,
            timeout: float = 240) -> subprocess.CompletedProcess:
    """`tuneforge migrate` as a user runs it, with stdin not a terminal (so it asks nothing)."""
    env = _env()
    return subprocess.run([str(CLI), "migrate", "--from", source_url, "--from-key", SOURCE_KEY,
                           "--to", target_url, *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=env, timeout=timeout)


def eval_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """`tuneforge eval` as a user runs it."""
    env = _env()
    return subprocess.run([str(CLI), "eval", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=env, timeout=timeout)


def interrupted(source_url: str, target_url: str, started: Callable[[], object],
                timeout: float = 120) -> subprocess.CompletedProcess:
    """`tuneforge migrate` stopped with Ctrl-C (SIGINT) as soon as `started()` says it is under way."""
    env = _env()
    proc = subprocess.Popen([str(CLI), "migrate", "--from", source_url, "--from-key", SOURCE_KEY,
                             "--to", target_url], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal
    wait_for(lambda: started() or proc.poll() is not None, timeout, "the migration to start")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def contents(client) -> dict[str, bytes]:
    """Every file on a server: id -> bytes."""
    return {f.id: client.files.content(f.id).read() for f in client.files.list()}
