"""Which precision trains fastest here: bf16 autocast or fp32, chosen per machine by measurement.

`precision: auto` (the default; the server's `TUNEFORGE_TRAIN_PRECISION` may set it) means: bf16 on a GPU
that supports it; on a CPU, whatever this CPU runs faster for a LoRA step, measured once and cached with
the CPU's identity (model name, its bf16/AVX-512 flags, torch version, threads) in
`$TUNEFORGE_CACHE/train-precision.json`.
A CPU without AVX-512 bf16 or AMX instructions is not measured: its bf16 matmuls run on a slow path
(about 1 GFLOP/s against 121 in fp32 on a 2-core AVX2 EPYC), so fp32 it is.

The probe is the shape of a LoRA step on a small model: a frozen weight (stored in bf16 under bf16, as
the trainer stores frozen LoRA bases, training/model.py) times ~128 tokens, forward and backward.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

FAST_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# bf16 must win clearly: it also costs casts elsewhere in the step that the probe does not see.
BF16_MARGIN = 0.8
CACHE_FILE = "train-precision.json"


def cpu_identity() -> dict:
    """What decides the answer: the CPU model, its relevant flags, torch's version and thread count."""
    import torch

    model, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    relevant = sorted(f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma"))
    return {"cpu": model, "flags": relevant, "torch": torch.__version__, "threads": torch.get_num_threads()}


def _probe_seconds(bf16: bool, tokens: int = 128, width: int = 576, out: int = 1536, reps: int = 20) -> float:
    import torch

    weight = torch.randn(out, width) / width**0.5
    if bf16:
        weight = weight.to(torch.bfloat16)
    x = torch.randn(tokens, width, requires_grad=True)
    best = float("inf")
    for i in range(reps + 3):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = torch.nn.functional.linear(x, weight)
        y.float().square().mean().backward()
        x.grad = None
        if i >= 3:  # the first calls pick kernels
            best = min(best, time.perf_counter() - start)
    return best


def measure_cpu() -> dict:
    """{"bf16": bool, "fp32_ms", "bf16_ms"} for this CPU (no measurement without fast bf16 flags)."""
    identity = cpu_identity()
    if not any(f in identity["flags"] for f in FAST_BF16_FLAGS):
        return {"bf16": False, "reason": "no AVX-512 bf16 or AMX instructions"}
    fp32, bf16 = _probe_seconds(False), _probe_seconds(True)
    return {"bf16": bf16 < BF16_MARGIN * fp32, "fp32_ms": round(fp32 * 1e3, 3),
            "bf16_ms": round(bf16 * 1e3, 3)}


def cpu_prefers_bf16(cache_dir: Path | None) -> bool:
    """The cached answer for this CPU, measured the first time it is asked."""
    identity = cpu_identity()
    key = json.dumps(identity, sort_keys=True)
    path = Path(cache_dir) / CACHE_FILE if cache_dir else None
    known: dict = {}
    if path and path.is_file():
        try:
            known = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            known = {}  # a damaged cache is measured again
    if isinstance(known.get(key), dict) and isinstance(known[key].get("bf16"), bool):
        return known[key]["bf16"]
    result = measure_cpu()
    if path:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp-{os.getpid()}")
            tmp.write_text(json.dumps({**known, key: result}, indent=1), "utf-8")
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache only costs measuring again next time
    return result["bf16"]


def use_bf16(precision: str, device: str, server_choice: str = "auto", cache_dir: Path | None = None) -> bool:
    """bf16 autocast for this run? `precision`: the run's "auto" | "bf16" | "fp32"; `server_choice` (the
    `train_precision` setting, TUNEFORGE_TRAIN_PRECISION) decides what "auto" means."""
    if precision == "auto":
        precision = server_choice
    if precision in ("fp32", "bf16"):
        return precision == "bf16"
    if device.startswith("cuda"):
        import torch

        return torch.cuda.is_bf16_supported()
    return cpu_prefers_bf16(cache_dir)
