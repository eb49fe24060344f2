"""Training-time estimates from a throughput measured on this machine, not a guess.

The constant below was measured once with the training engine on the built-in base (LoRA defaults) on the
reference machine (2 cores, AMD Zen 4, CPU only), with:

    HF_HUB_OFFLINE=1 .venv/bin/python -m tuneforge.training.measure examples/support_train.jsonl

Other bases are scaled by parameter count (compute per token is about proportional to it). Re-run the
command on your machine and set TUNEFORGE_TRAIN_TOKENS_PER_SECOND to the printed 2-thread rate (or
measure a real job on an idle machine: its step events report tokens_per_second) to calibrate.
"""

from __future__ import annotations

import functools
import math

from tuneforge.settings import Settings, get_settings

REFERENCE_MODEL = "smollm2-135m-instruct"
REFERENCE_PARAMS = 134_515_008
# Training tokens (prompt + answer, forward + backward + optimizer step) per second on 2 cores: the measured
# single-thread rate times TWO_THREAD_SPEEDUP. Measured with the command above on 2026-11-21 (engine
# defaults: LoRA r=16 on all projections, fp32 on CPU): 71 and 69 tokens per CPU second in two runs of
# 8 steps (608 and 672 tokens). CPU time, not wall time, because the machine was shared at the time.
TWO_THREAD_SPEEDUP = 1.7  # torch intra-op scaling from 1 to 2 threads for these small matmuls (assumed)
REFERENCE_TOKENS_PER_SECOND = 70.0 * TWO_THREAD_SPEEDUP
# Fixed cost of a job: start the subprocess, load tokenizer and model (15.5 s measured), save the adapter.
STARTUP_SECONDS = 15.0


@functools.lru_cache(maxsize=8)
def _model_params(base_model: str | None) -> int:
    """Parameter count of a base, read from its safetensors headers; the reference's if unknown."""
    if not base_model:
        return REFERENCE_PARAMS
    try:
        from safetensors import safe_open

        from tuneforge.models import base_model_folder

        settings = get_settings()
        if settings.resolve_alias(base_model) == REFERENCE_MODEL:
            return REFERENCE_PARAMS
        total = 0
        for file in base_model_folder(base_model, settings, progress=lambda _m: None).glob("*.safetensors"):
            with safe_open(str(file), framework="pt") as fh:
                for key in fh.keys():
                    total += math.prod(fh.get_slice(key).get_shape())
        return total or REFERENCE_PARAMS
    except Exception:  # an unknown base only makes the estimate less precise
        return REFERENCE_PARAMS


def tokens_per_second(base_model: str | None = None, settings: Settings | None = None) -> float:
    """TUNEFORGE_TRAIN_TOKENS_PER_SECOND when set, else the reference rate scaled by model size.
    Callers without settings of their own (data statistics) get the process-wide ones."""
    override = (settings if settings is not None else get_settings()).train_tokens_per_second
    if override:
        return override
    return REFERENCE_TOKENS_PER_SECOND * REFERENCE_PARAMS / _model_params(base_model)


def estimate_seconds(total_tokens: int, base_model: str | None = None,
                     settings: Settings | None = None) -> int:
    """Wall-clock seconds to train `total_tokens` (all epochs) on this machine's CPU."""
    return int(round(STARTUP_SECONDS + total_tokens / tokens_per_second(base_model, settings)))


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
