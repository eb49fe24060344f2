"""A warm trainer: `python -m tuneforge.training.zygote --socket FD` imports torch, transformers and peft
once, then forks one trainer per job, so a job no longer waits ~5 s (more on a busy CPU) for imports.

The worker sends one request per job over a SOCK_SEQPACKET socket: JSON `{"config", "env"}` with three
descriptors (the trainer's stdout pipe, its log, the job's run lock). The child becomes exactly what
`python -m tuneforge.training --config ...` would be: its own session, those descriptors as stdout and
stderr, the lock inherited (held as long as it lives), the worker's environment of the moment, and
death with its parent. The zygote answers `{"pid"}`, later `{"exit", "code"}` (Popen's returncode
convention: negative for a signal). It exits when the worker closes the socket, and dies with the
worker (the worker starts it with PR_SET_PDEATHSIG, and each trainer dies with the zygote).

Nothing here touches a thread pool before forking: torch's OpenMP threads start at the first parallel
operation, which only a child ever runs.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import sys
import traceback

from tuneforge.lifetime import die_with_parent

MAX_REQUEST = 1 << 20  # a request is a config path and an environment
N_FDS = 3


def _preload() -> None:
    import peft  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    # transformers imports lazily: without these a forked trainer still spent ~4 s importing the auto
    # classes and the Llama code (SmolLM2's, the default base's architecture) before its first step.
    from peft import LoraConfig, PeftModel, get_peft_model  # noqa: F401
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer  # noqa: F401
    from transformers.models.llama import modeling_llama  # noqa: F401

    import tuneforge.training.__main__  # noqa: F401
    import tuneforge.training.run  # noqa: F401


def _child(request: dict, fds: list[int], sock: socket.socket) -> None:
    """Runs in the fork: become the job's trainer, then exit with its code (never returns)."""
    code = 1
    try:
        sock.close()
        os.setsid()
        die_with_parent()  # with the zygote (and so with the worker)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        out, err, _lock = fds  # the lock stays open: it is held exactly as long as this process lives
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        os.environ.clear()
        os.environ.update(request["env"])
        from tuneforge.training.__main__ import main

        code = main(["--config", request["config"]])
    except BaseException:  # noqa: BLE001  (anything, even SystemExit, must end in os._exit)
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)


def _reap(sock: socket.socket, children: set[int]) -> None:
    for pid in list(children):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            children.discard(pid)
            sock.send(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}).encode())


def serve(sock: socket.socket) -> None:
    children: set[int] = set()
    while True:
        ready, _, _ = select.select([sock], [], [], 0.2)
        _reap(sock, children)
        if not ready:
            continue
        message, fds, _flags, _addr = socket.recv_fds(sock, MAX_REQUEST, N_FDS)
        if not message:
            return  # the worker closed its end
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(json.loads(message), fds, sock)
        for fd in fds:
            os.close(fd)
        children.add(pid)
        sock.send(json.dumps({"pid": pid}).encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuneforge.training.zygote")
    parser.add_argument("--socket", type=int, required=True, help="descriptor of the worker's socket")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the worker's to handle
    sock = socket.socket(fileno=args.socket)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tuneforge.quiet import quiet_libraries

    quiet_libraries()  # the zygote's imports must not put warnings in the server's log
    _preload()
    sock.send(b'{"ready": true}')
    try:
        serve(sock)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
