"""What this machine's CPU is: its model name and feature flags, read from /proc/cpuinfo (Linux)."""

from __future__ import annotations

import functools
from pathlib import Path


@functools.cache
def cpu_model_and_flags() -> tuple[str, frozenset[str]]:
    """("Intel(R) Xeon(R) ...", {"avx2", "amx_bf16", ...}); ("unknown", {}) where it cannot be read."""
    model, flags = "unknown", frozenset()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = frozenset(value.split())
    except OSError:
        pass
    return model, flags
