"""A tiny randomly initialised Llama with the real SmolLM2 tokenizer, for fast tests.

Same tokenizer, chat template and special tokens as the built-in base, so everything that depends on
tokenization behaves as in production; only the network is small (2 layers, hidden 64), so training and
generation take milliseconds. Built once and cached under the model cache, keyed by TINY_VERSION.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

TINY_NAME = "tiny-llama"
TINY_VERSION = 1


# vLLM's CPU attention takes head sizes of 32 and up: this variant has heads of 64 (hidden 128, 2 heads).
TINY_VLLM_NAME = "tiny-llama-h64"


def build_tiny_model(cache_dir: Path, base_folder: Path, name: str = TINY_NAME, hidden: int = 64,
                     heads: int = 4, kv_heads: int = 2) -> Path:
    target = cache_dir / "test-models" / f"{name}-v{TINY_VERSION}"
    if (target / "model.safetensors").is_file():
        return target
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(base_folder)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=2048,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig.from_pretrained(base_folder)
    tokenizer.model_max_length = 2048
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target
