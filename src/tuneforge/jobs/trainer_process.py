"""Start a job's trainer process: forked from the warm trainer (`tuneforge.training.zygote`, shared by every
worker in this process) when it is up, else `python -m tuneforge.training` as a fresh subprocess.

Either way the caller gets a Popen-like handle (pid, stdout, poll, wait, send_signal, kill) on a process
in its own session, whose stdout is the event protocol, whose stderr is the job's log, which holds the
job's lock descriptor and dies with the worker. The warm trainer is started on the first job (its
imports then overlap nothing) and reused for every later one; a job whose environment differs from the
warm trainer's in a variable read at import time (threads, devices, allocator) gets a fresh subprocess,
as does every job when the `warm_trainer` setting is off (`TUNEFORGE_WARM_TRAINER=0`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import IO

from tuneforge.lifetime import die_with_parent
from tuneforge.training.launch import trainer_command, trainer_env

log = logging.getLogger("tuneforge.jobs")
# Variables that libraries read when they are imported: a warm process imported them already.
IMPORT_TIME = ("OMP_", "MKL_", "KMP_", "GOMP_", "TORCH", "PYTORCH", "CUDA", "HIP_", "ROCM", "NCCL",
               "LD_", "PYTHON", "HF_", "TRANSFORMERS", "TOKENIZERS")
# Defaults a library writes into this process's environment on first use (torch's inductor does, while
# serving): a forked trainer works out the same value, so they never call for a fresh process.
SET_BY_LIBRARIES = ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")
START_TIMEOUT = 180.0

def _import_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME) and k not in SET_BY_LIBRARIES}


class ForkedTrainer:
    """A trainer forked by the warm trainer: the Popen calls the runner uses."""

    def __init__(self, zygote: WarmTrainer, pid: int, stdout: IO[bytes]):
        self.zygote, self.pid, self.stdout = zygote, pid, stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self.returncode = self.zygote.wait_exit(self.pid, timeout)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:  # never signal a pid that may have been reused
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class WarmTrainer:
    """The zygote process and the socket to it. Started by its own thread, which lives as long as this
    process, because PR_SET_PDEATHSIG fires when the *thread* that started a child ends."""

    def __init__(self):
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._exits: dict[int, int] = {}
        self._pids: list[int] = []
        self._sock: socket.socket | None = None
        self._env: dict[str, str] = {}
        self._dead = False

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        started: dict = {}

        def keeper() -> None:  # holds the zygote's life: it ends only with this process
            try:
                started["proc"] = subprocess.Popen(
                    [sys.executable, "-m", "tuneforge.training.zygote", "--socket", str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, start_new_session=True,
                    preexec_fn=die_with_parent)
            finally:
                theirs.close()
                with self._changed:
                    self._changed.notify_all()
            threading.Event().wait()

        threading.Thread(target=keeper, name="tuneforge-warm-trainer", daemon=True).start()
        ours.settimeout(START_TIMEOUT)
        ready = json.loads(ours.recv(4096) or b"{}")  # the zygote says so once its imports are done
        if not ready.get("ready"):
            raise OSError("the warm trainer exited while importing")
        ours.settimeout(None)
        self._sock, self._env, self._dead = ours, _import_env(dict(os.environ)), False
        threading.Thread(target=self._read, args=(ours,), name="tuneforge-warm-trainer-reader",
                         daemon=True).start()

    def _read(self, sock: socket.socket) -> None:
        """Dispatch the zygote's messages; on its death every trainer it forked is dead too."""
        while True:
            try:
                message = sock.recv(4096)
            except OSError:
                message = b""
            with self._changed:
                if not message:
                    self._dead = True
                    for pid in self._pids:
                        self._exits.setdefault(pid, -signal.SIGKILL)
                    self._changed.notify_all()
                    return
                event = json.loads(message)
                if "exit" in event:
                    self._exits[event["exit"]] = event["code"]
                else:
                    self._pids.append(event["pid"])
                self._changed.notify_all()

    def spawn(self, config: str, log_fd: int, lock_fd: int) -> ForkedTrainer | None:
        """A trainer for `config`, or None when the warm trainer cannot serve this job."""
        with self._lock:
            if self._sock is None or self._dead:
                self._start()
            if _import_env(dict(os.environ)) != self._env:
                return None
            read_end, write_end = os.pipe()
            try:
                with self._changed:
                    known = len(self._pids)
                request = json.dumps({"config": config, "env": dict(os.environ)}).encode()
                assert self._sock is not None
                socket.send_fds(self._sock, [request], [write_end, log_fd, lock_fd])
            finally:
                os.close(write_end)
            with self._changed:
                self._changed.wait_for(lambda: len(self._pids) > known or self._dead, START_TIMEOUT)
                if len(self._pids) <= known:
                    os.close(read_end)
                    raise OSError("the warm trainer did not fork a trainer")
                pid = self._pids[known]
        return ForkedTrainer(self, pid, os.fdopen(read_end, "rb"))

    def exit_code(self, pid: int) -> int | None:
        with self._changed:
            return self._exits.get(pid)

    def wait_exit(self, pid: int, timeout: float | None) -> int:
        with self._changed:
            if not self._changed.wait_for(lambda: pid in self._exits, timeout):
                raise subprocess.TimeoutExpired(f"trainer {pid}", timeout or 0)
            return self._exits[pid]


_WARM = WarmTrainer()


def start_trainer(config_path: str, log_file: IO[bytes], lock_fd: int, *, warm: bool, processes: int = 1):
    """The job's trainer process, warm when possible and `warm` (see the module docstring); with several
    `processes`, torchrun and its ranks (training/distributed.py), always fresh."""
    if warm and processes == 1 and sys.platform.startswith("linux"):
        try:
            forked = _WARM.spawn(config_path, log_file.fileno(), lock_fd)
            if forked is not None:
                return forked
        except (OSError, ValueError) as exc:  # never a reason to fail a job: start it the slow way
            log.warning("warm trainer unavailable (%s); starting the trainer as a new process", exc)
    return subprocess.Popen(
        trainer_command(config_path, processes), env=trainer_env(processes),
        stdout=subprocess.PIPE, stderr=log_file, stdin=subprocess.DEVNULL,
        pass_fds=(lock_fd,), start_new_session=True, preexec_fn=die_with_parent)
