"""bitsandbytes (imported by PEFT for every LoRA model) never reaches the Hugging Face hub for its CPU
kernel, and says nothing about it: its import runs offline (tuneforge/offline.py)."""

import ast
import os
import subprocess
import sys

import pytest

from tuneforge.cpuinfo import cpu_model_and_flags

SCRIPT = """
import huggingface_hub.constants as hub
import kernels
from tuneforge.quiet import quiet_libraries

quiet_libraries()  # what every entry point calls first
calls = []
real = kernels.get_kernel
kernels.get_kernel = lambda *a, **k: calls.append(hub.HF_HUB_OFFLINE) or real(*a, **k)
import bitsandbytes  # noqa: E402,F401
from peft import LoraConfig  # noqa: E402,F401
print(repr((calls, hub.HF_HUB_OFFLINE)))
"""


def test_bitsandbytes_asks_no_hub_for_a_kernel():
    pytest.importorskip("bitsandbytes")
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}  # as a user runs it: online
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    calls, offline_after = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
    fetches = [True] if "avx512_bf16" in cpu_model_and_flags()[1] else []  # it asks on these CPUs only
    assert calls == fetches and offline_after is False  # asked offline; the switch put back after
    assert "kernels-community" not in proc.stderr and "gemm_4bit_forward" not in proc.stderr
