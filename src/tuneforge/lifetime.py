"""Child processes that must not outlive the process that started them (trainers, torchrun ranks,
managed vLLM servers): the kernel kills them when their parent goes (Linux's PR_SET_PDEATHSIG).

The signal fires when the *thread* that started the child ends, so start such children from a thread
that lives as long as they should."""

from __future__ import annotations

import ctypes
import signal
import sys

try:
    _libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
except OSError:  # pragma: no cover
    _libc = None

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Call in the child (e.g. as Popen's preexec_fn, between fork and exec): keep it tiny."""
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


__all__ = ["die_with_parent"]
