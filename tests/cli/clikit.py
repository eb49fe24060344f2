"""Helpers for the tests in this folder (the fixtures that use them are in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from testkit import free_port

TUNEFORGE = str(Path(sys.executable).with_name("tuneforge"))


SYSTEM = "You are the support assistant of Harbor Bikes."


def support_rows(n: int = 10) -> list[dict]:
    return [{"messages": [{"role": "system", "content": SYSTEM},
                          {"role": "user", "content": f"Question {i}: when are you open?"},
                          {"role": "assistant", "content": f"Answer {i}: Mon-Fri 9:00-18:00."}]}
            for i in range(n)]


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(*args: str, env: dict | None = None, timeout: float = 600, cwd: Path | None = None) -> Result:
    """Run the installed `tuneforge` command as a user would (a subprocess; no shared state)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    proc = subprocess.run([TUNEFORGE, *args], capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=cwd)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Server:
    base_url: str
    proc: subprocess.Popen
    log: Path

    def env(self) -> dict[str, str]:
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": "sk-test"}


def start_server(home: Path, log: Path) -> Server:
    port = free_port()
    env = {**os.environ, "TUNEFORGE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    with log.open("w") as fh:
        proc = subprocess.Popen([TUNEFORGE, "serve", "--port", str(port)], stdout=fh,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tuneforge serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return Server(url + "/v1", proc, log)
        except httpx.TransportError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"tuneforge serve did not start: {log.read_text()[-2000:]}")


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
