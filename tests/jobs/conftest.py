"""Jobs test fixtures: real `tuneforge serve` / `tuneforge worker` processes on throwaway homes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pg import database_url, postgres_url  # noqa: F401  (fixtures)

QUESTIONS = [
    "How do I reset my password?",
    "Where is my order?",
    "Can I change my shipping address?",
    "How do I cancel my subscription?",
    "Do you ship abroad?",
    "How long does a refund take?",
    "Which payment methods do you take?",
    "How do I contact support?",
    "Is there a mobile app?",
    "Can I get an invoice?",
    "How do I delete my account?",
    "Do you offer gift cards?",
]


def chat_rows(n: int = 12) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "system", "content": "You are Acme's support assistant."},
                {"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]},
                {"role": "assistant", "content": f"Answer {i}: open Settings, then Help."},
            ]
        }
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    proc: subprocess.Popen
    log: Path
    url: str = ""

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
def job_home(tmp_path, settings, tiny_model) -> Path:
    """A fresh TUNEFORGE_HOME that knows the tiny test model (its base registry is copied over)."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(settings.registry_path, home / "bases.json")
    return home


def _env(home: Path, db_url: str | None) -> dict[str, str]:
    env = {**os.environ, "TUNEFORGE_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("TUNEFORGE_DATABASE_URL", None)
    if db_url:
        env["TUNEFORGE_DATABASE_URL"] = db_url
    return env


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


def wait_for(predicate: Callable[[], object], timeout: float = 180, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class InProcess:
    """An app (no background worker) behind the real ASGI stack, an SDK client on it, and a worker the
    test drives step by step with `work()`."""

    app: object
    client: object  # openai.OpenAI
    http: object  # starlette TestClient (an httpx.Client)
    worker: object  # tuneforge.jobs.worker.Worker

    def work(self) -> int:
        """Do every piece of work waiting in the queue (validation, training); how many were done."""
        done = 0
        while self.worker.run_once():
            done += 1
        return done


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
    with TestClient(app, base_url="http://testserver") as http:
        client = OpenAI(base_url="http://testserver/v1", api_key="test", http_client=http, max_retries=0)
        yield InProcess(app=app, client=client, http=http, worker=Worker(app.state.db, job_settings))


def upload(client, rows: list[dict], tmp_path: Path, name: str = "train.jsonl") -> str:
    path = write_jsonl(tmp_path / name, rows)
    with open(path, "rb") as fh:
        return client.files.create(file=fh, purpose="fine-tune").id
