"""Load a base model and its tokenizer by name, provisioning it first if needed."""

from __future__ import annotations

import sys
from pathlib import Path

from tuneforge.models.catalog import resolve_base
from tuneforge.models.provision import provision
from tuneforge.settings import Settings, get_settings


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def base_model_folder(name: str, settings: Settings | None = None, progress=_stderr) -> Path:
    """The verified on-disk folder of base model `name` (an alias, built-in, registered name or path)."""
    settings = settings or get_settings()
    return provision(resolve_base(name, settings), settings, progress=progress)


def load_tokenizer(name: str, settings: Settings | None = None):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_model_folder(name, settings))


def load_base_model(name: str, settings: Settings | None = None, dtype=None, device: str | None = None):
    """The base model as a transformers causal LM, in eval mode, on `device` (default: cuda if present)."""
    import torch
    from transformers import AutoModelForCausalLM

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    model = AutoModelForCausalLM.from_pretrained(base_model_folder(name, settings), dtype=dtype)
    return model.to(device).eval()
