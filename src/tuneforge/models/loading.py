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


class ModelLookupError(ValueError):
    """A model id that does not resolve on this machine; the message says what to do."""


def resolve_local(model_id: str, settings: Settings | None = None):
    """What `model_id` is on this machine, for operator commands (export): a model folder with
    `tuneforge_model.json`, a fine-tuned id in the local store (of OPENAI_API_KEY's project when keys
    exist), or a base model name. Returns a registry `ModelTarget`; raises ModelLookupError."""
    import os

    from tuneforge.models.registry import MODEL_META, resolve_model, target_from_folder
    from tuneforge.store.db import Database
    from tuneforge.store.keys import local_caller_project

    settings = settings or get_settings()
    folder = Path(model_id).expanduser()
    if (folder / MODEL_META).is_file():
        return target_from_folder(model_id, folder)
    db = Database.from_settings(settings)
    try:
        db.init_schema()
        project = local_caller_project(db, os.environ.get("OPENAI_API_KEY"), "default")
        target = resolve_model(model_id, project, settings, db)
    finally:
        db.dispose()
    if target is not None:
        return target
    if model_id.startswith("ft:") or ":ft-" in model_id:
        raise ModelLookupError(f"fine-tuned model {model_id!r} is not in this machine's store; see "
                               "`tuneforge models list`, or set TUNEFORGE_HOME to the server's home")
    raise ModelLookupError(f"unknown model {model_id!r}; see `tuneforge models list` for the names")


def load_local_model(model_id: str, settings: Settings | None = None, device: str | None = None):
    """(model, tokenizer, ModelTarget) with any LoRA adapter applied, in eval mode."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = settings or get_settings()
    target = resolve_local(model_id, settings)
    if target.kind == "full" and target.path is not None:
        model = AutoModelForCausalLM.from_pretrained(target.path).eval()
        if (target.path / "tokenizer_config.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(target.path)
        else:
            tokenizer = load_tokenizer(target.base, settings)
        return model.to(device or model.device), tokenizer, target
    model = load_base_model(target.base, settings, device=device)
    if target.path is not None:
        model = PeftModel.from_pretrained(model, target.path).eval()
    return model, load_tokenizer(target.base, settings), target
