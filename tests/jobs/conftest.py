"""Jobs test fixtures: real `tuneforge serve` / `tuneforge worker` processes on throwaway homes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from jobkit import InProcess, Proc, _env
from pg import database_url, postgres_url  # noqa: F401  (fixtures)
from testkit import free_port


@pytest.fixture
def job_home(tmp_path, settings, tiny_model) -> Path:
    """A fresh TUNEFORGE_HOME that knows the tiny test model (its base registry is copied over)."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(settings.registry_path, home / "bases.json")
    return home


@pytest.fixture
def spawn() -> Iterator[Callable[..., Proc]]:
    """Start `tuneforge serve` or `tuneforge worker` as a real process; all are killed at teardown."""
    started: list[Proc] = []

    def start(kind: str, home: Path, *, db_url: str | None = None, extra: tuple[str, ...] = ()) -> Proc:
        log = home / f"{kind}-{len(started)}.log"
        cmd = [sys.executable, "-m", "tuneforge.cli.main", kind, *extra]
        port = None
        if kind == "serve":
            port = free_port()
            cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                cmd, env=_env(home, db_url), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )
        handle = Proc(proc=proc, log=log)
        started.append(handle)
        if port is not None:
            handle.url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(handle.url + "/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tuneforge serve did not start:\n{handle.output()}")
                time.sleep(0.2)
        return handle

    yield start
    for handle in started:
        if handle.proc.poll() is None:
            os.killpg(handle.proc.pid, signal.SIGTERM)
            try:
                handle.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(handle.proc.pid, signal.SIGKILL)
                handle.proc.wait(10)


@pytest.fixture
def job_settings(settings, job_home):
    import dataclasses

    return dataclasses.replace(settings, home=job_home, database_url=f"sqlite:///{job_home / 'tuneforge.db'}")


@pytest.fixture
def inproc(job_settings) -> Iterator[InProcess]:
    from fastapi.testclient import TestClient
    from openai import OpenAI

    from tuneforge.api.app import create_app
    from tuneforge.jobs.worker import Worker

    app = create_app(job_settings, start_worker=False)
    with TestClient(app, base_url="http://127.0.0.1") as http:  # loopback: an open server
        client = OpenAI(base_url="http://127.0.0.1/v1", api_key="test", http_client=http, max_retries=0)
        yield InProcess(app=app, client=client, http=http, worker=Worker(app.state.db, job_settings))
