"""Which precision trains fastest here: bf16 autocast or fp32, chosen per machine by measurement.

`precision: auto` (the default; the server's `TUNEFORGE_TRAIN_PRECISION` may set it) means: bf16 on a GPU
that supports it; on a CPU, whatever this CPU runs faster for a LoRA step, measured once and cached with
the CPU's identity (model name, its bf16/AVX-512 flags, torch version, threads) in
`$TUNEFORGE_CACHE/train-precision.json`.
A CPU without AVX-512 bf16 or AMX instructions is not measured: its bf16 matmuls run on a slow path
(about 1 GFLOP/s against 121 in fp32 on a 2-core AVX2 EPYC), so fp32 it is.

The probe is the trainer's own step (training/step.py) on two layers of the model being trained, built as
the trainer builds it (LoRA with frozen weights stored in bf16 under bf16, or full), on a ~128-token row:
on a 2-core Zen 4 with AVX-512 bf16, bf16 took 2.5x fp32's time per real step (casts and small-matrix bf16
kernels outweigh the faster matmul), which a lone big matmul would not show.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tuneforge.cpuinfo import cpu_model_and_flags

FAST_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# bf16 must win clearly: it also costs casts elsewhere in the step that the probe does not see.
BF16_MARGIN = 0.8
CACHE_FILE = "train-precision.json"


def cpu_identity() -> dict:
    """The CPU model, its relevant flags, torch's version and thread count."""
    import torch

    model, flags = cpu_model_and_flags()
    relevant = sorted(f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma"))
    return {"cpu": model, "flags": relevant, "torch": torch.__version__, "threads": torch.get_num_threads()}


def _probe_model(model_config, method: str, bf16: bool):
    """Two layers of the model being trained (its own architecture and widths, a small vocabulary), as the
    trainer builds it: LoRA on every projection with frozen weights stored in bf16 under bf16, or all
    weights trainable."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tuneforge.training.config import DEFAULT_TARGETS
    from tuneforge.training.model import freeze_linears_to_bf16

    small = copy.deepcopy(model_config)
    small.num_hidden_layers = min(2, getattr(small, "num_hidden_layers", 2))
    small.vocab_size = min(getattr(small, "vocab_size", 4096), 4096)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(small, dtype=torch.float32)
    if method in ("lora", "qlora"):  # QLoRA's probe: its LoRA part (the 4-bit kernels are not probed)
        present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM",
                                                 target_modules=[t for t in DEFAULT_TARGETS if t in present]))
        if bf16:
            freeze_linears_to_bf16(model)
    return model


def _probe_seconds(model_config, method: str, bf16: bool, tokens: int = 128, reps: int = 6) -> float:
    """Best time of the trainer's own forward and backward (training/step.py) on a ~128-token packed row,
    the size of a support-chat example."""
    import torch

    from tuneforge.training.dataset import PackedRow
    from tuneforge.training.step import train_batch

    model = _probe_model(model_config, method, bf16)
    ids = torch.randint(0, model.config.vocab_size, (1, tokens + 1))
    row = PackedRow(input_ids=ids[:, :-1], position_ids=torch.arange(tokens)[None], targets=ids[0, 1:],
                    weights=None, n_examples=1, seq_correct=[torch.arange(tokens)])
    best = float("inf")
    for i in range(reps + 2):
        start = time.perf_counter()
        train_batch(model, [row], "cpu", bf16)
        model.zero_grad(set_to_none=True)
        if i >= 2:  # the first calls pick kernels
            best = min(best, time.perf_counter() - start)
    return best


def measure_cpu(model_config, method: str) -> dict:
    """{"bf16": bool, "fp32_ms", "bf16_ms"} for this CPU and model shape (no measurement without fast
    bf16 instructions)."""
    identity = cpu_identity()
    if not any(f in identity["flags"] for f in FAST_BF16_FLAGS):
        return {"bf16": False, "reason": "no AVX-512 bf16 or AMX instructions"}
    import torch

    state = torch.get_rng_state()  # the probe must not change the run's random stream
    try:
        fp32, bf16 = _probe_seconds(model_config, method, False), _probe_seconds(model_config, method, True)
    finally:
        torch.set_rng_state(state)
    return {"bf16": bf16 < BF16_MARGIN * fp32, "fp32_ms": round(fp32 * 1e3, 3),
            "bf16_ms": round(bf16 * 1e3, 3)}


def cache_key(model_config, method: str) -> str:
    """What decides the answer: the CPU (cpu_identity) and the shape of the model trained."""
    keys = ("model_type", "hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads")
    shape = {"method": method, **{k: getattr(model_config, k, None) for k in keys}}
    return json.dumps({**cpu_identity(), **shape}, sort_keys=True)


def cpu_prefers_bf16(cache_dir: Path | None, model_config, method: str) -> bool:
    """The cached answer for this CPU and model shape, measured the first time it is asked."""
    key = cache_key(model_config, method)
    path = Path(cache_dir) / CACHE_FILE if cache_dir else None
    known: dict = {}
    if path and path.is_file():
        try:
            known = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            known = {}  # a damaged cache is measured again
    if isinstance(known.get(key), dict) and isinstance(known[key].get("bf16"), bool):
        return known[key]["bf16"]
    result = measure_cpu(model_config, method)
    if path:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp-{os.getpid()}")
            tmp.write_text(json.dumps({**known, key: result}, indent=1), "utf-8")
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache only costs measuring again next time
    return result["bf16"]


def use_bf16(precision: str, device: str, server_choice: str = "auto", cache_dir: Path | None = None,
             model_config=None, method: str = "lora") -> bool:
    """bf16 autocast for this run? `precision`: the run's "auto" | "bf16" | "fp32"; `server_choice` (the
    `train_precision` setting, TUNEFORGE_TRAIN_PRECISION) decides what "auto" means; `model_config` (the
    Hugging Face config of the model trained) and `method` shape the CPU probe."""
    if precision == "auto":
        precision = server_choice
    if precision in ("fp32", "bf16"):
        return precision == "bf16"
    if device.startswith("cuda"):
        import torch

        return torch.cuda.is_bf16_supported()
    if model_config is None:  # nothing to measure with: fp32 is never the slow choice by much
        return False
    return cpu_prefers_bf16(cache_dir, model_config, method)
