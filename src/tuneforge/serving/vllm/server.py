"""A managed vLLM server: tuneforge starts `python -m vllm.entrypoints.openai.api_server` for one base
model (or one full fine-tune) on a free loopback port, waits for `/health`, restarts it when it dies and
stops it with the engine. Its output goes to `$TUNEFORGE_HOME/logs/vllm-<name>.log`.

The server only listens on loopback and demands a key that only this process knows, so a web page (DNS
rebinding) or another local user cannot use it around tuneforge's own checks."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tuneforge.lifetime import die_with_parent
from tuneforge.serving.params import ServingError
from tuneforge.settings import Settings

log = logging.getLogger("tuneforge.serving")

# vLLM's --max-lora-rank takes one of these (vllm/config/lora.py); a managed server rounds up to one.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
RESTART_PAUSE = 2.0  # seconds between a crash and the restart (a crash loop must not spin)
MAX_FAILED_STARTS = 3  # starts in a row that never became ready before the server is given up


def lora_rank_limit(rank: int) -> int:
    """The smallest rank vLLM accepts as --max-lora-rank that is at least `rank`."""
    for allowed in VLLM_LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise ServingError(f"A LoRA rank of {rank} is above vLLM's largest ({VLLM_LORA_RANKS[-1]}).", status=400,
                       param="model", code="unsupported_model")


def vllm_python(settings: Settings) -> str | None:
    """The Python that runs vLLM: the setting, the checkout's `.venv-vllm` (`make vllm`), or this one when
    vLLM is installed beside tuneforge (a CUDA setup)."""
    if settings.vllm_python:
        return settings.vllm_python
    checkout = Path(__file__).resolve().parents[4] / ".venv-vllm" / "bin" / "python"
    if checkout.is_file():
        return str(checkout)
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    return None


@dataclass
class ServerSpec:
    name: str  # the served model name (the base's catalog name, or the full fine-tune's key)
    folder: Path  # the Hugging Face folder vLLM loads
    max_model_len: int
    lora: bool = True
    max_lora_rank: int = 16
    max_loras: int = 8
    extra_args: list[str] = field(default_factory=list)

    def command(self, python: str, port: int) -> list[str]:
        cmd = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.folder),
               "--served-model-name", self.name, "--host", "127.0.0.1", "--port", str(port),
               "--max-model-len", str(self.max_model_len),
               "--disable-uvicorn-access-log"]
        if self.lora:
            cmd += ["--enable-lora", "--max-lora-rank", str(self.max_lora_rank),
                    "--max-loras", str(self.max_loras), "--max-cpu-loras", str(self.max_loras)]
        return cmd + self.extra_args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[-80:]


class ManagedServer:
    """One vLLM server process and the thread that keeps it running. `url` is None while it is not
    ready; `generation` counts its starts (adapters registered on an earlier one are gone)."""

    def __init__(self, spec: ServerSpec, python: str, settings: Settings):
        self.spec = spec
        self.python = python
        self.api_key = secrets.token_hex(24)  # in its environment (VLLM_API_KEY), which `ps` does not show
        self.log_path = settings.home / "logs" / f"vllm-{_log_name(spec.name)}.log"
        self.start_timeout = settings.vllm_start_timeout
        self.url: str | None = None
        self.generation = 0
        self.failure: str | None = None  # why it was given up
        self.pid: int | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._proc: subprocess.Popen | None = None
        # PR_SET_PDEATHSIG fires when the thread that started the child ends: this one lives as long as
        # the server should.
        self._thread = threading.Thread(target=self._run, name=f"vllm-{spec.name}"[:40], daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> str:
        """The server's URL once it answers, or a 503 (starting, restarting, or given up)."""
        if self._ready.wait(timeout) and self.url:
            return self.url
        if self.failure:
            raise ServingError(f"The vLLM server for `{self.spec.name}` could not start; the server log says "
                               "why.", status=503)
        raise ServingError(f"The vLLM server for `{self.spec.name}` is starting or restarting; retry "
                           "shortly.", status=503, retry_after=10)

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.url is not None

    def _run(self) -> None:
        failed = 0
        while not self._stop.is_set():
            started = self._start_once()
            if self._stop.is_set():
                break
            failed = 0 if started else failed + 1
            if failed >= MAX_FAILED_STARTS:
                self.failure = f"it exited {failed} times before it was ready (see {self.log_path})"
                log.error("vLLM server for %s given up: %s", self.spec.name, self.failure)
                self._ready.set()  # waiters get the failure now
                return
            log.warning("vLLM server for %s stopped; restarting (log: %s)", self.spec.name, self.log_path)
            self._stop.wait(RESTART_PAUSE)

    def _start_once(self) -> bool:
        """Run the server until it exits; True when it became ready first."""
        port = _free_port()
        env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True", "HF_HUB_OFFLINE": "1",
               "VLLM_API_KEY": self.api_key}
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")  # GiB on CPU; vLLM's default takes far more
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = self.spec.command(self.python, port)
        with open(self.log_path, "ab") as out:
            out.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {shlex.join(cmd)}\n".encode())
            out.flush()
            self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                          stdin=subprocess.DEVNULL, start_new_session=True,
                                          preexec_fn=die_with_parent)
        self.pid = self._proc.pid
        url = f"http://127.0.0.1:{port}"
        ready = self._await_health(url)
        if ready:
            self.url = url
            self.generation += 1
            self._ready.set()
            log.info("vLLM server for %s ready at %s (pid %d)", self.spec.name, url, self.pid)
        while self._proc.poll() is None and not self._stop.is_set():
            self._stop.wait(0.5)
        self._ready.clear()
        self.url = None
        self._kill()
        return ready

    def _await_health(self, url: str) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline and not self._stop.is_set():
            if self._proc.poll() is not None:
                return False
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            self._stop.wait(0.5)
        if not self._stop.is_set():
            log.error("vLLM server for %s not ready after %.0f s", self.spec.name, self.start_timeout)
        return False

    def _kill(self) -> None:
        """Stop the server's whole process group: vLLM's engine core is a child process, and it would
        outlive a crashed API server."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # what is left of the group
        except (ProcessLookupError, PermissionError):
            pass
        if proc.poll() is None:
            proc.wait(timeout=15)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._kill()


def extra_args(settings: Settings) -> list[str]:
    return shlex.split(settings.vllm_args)


__all__ = ["ManagedServer", "ServerSpec", "VLLM_LORA_RANKS", "extra_args", "lora_rank_limit", "vllm_python"]
