"""Load any model id the platform knows (a base, an alias, a fine-tuned `ft:...` id or a model folder)
locally with transformers + peft, for evaluation and export."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tuneforge.evaluation.errors import ModelLookupError
from tuneforge.settings import Settings, get_settings

MODEL_META = "tuneforge_model.json"


@dataclass
class LocalModel:
    id: str
    base_model: str
    path: Path | None  # the fine-tuned folder (adapter or full model); None for a base model
    method: str  # "base", "lora" or "full"


def _from_folder(model_id: str, folder: Path) -> LocalModel:
    meta = json.loads((folder / MODEL_META).read_text())
    return LocalModel(model_id, meta["base_model"], folder, meta.get("method", "lora"))


def _from_registry(model_id: str, settings: Settings) -> LocalModel | None:
    try:
        from tuneforge.api.auth import DEFAULT_PROJECT
        from tuneforge.models.registry import lookup_model
        from tuneforge.store.db import Database
        from tuneforge.store.keys import local_caller_project
    except ImportError:  # the jobs subsystem is not installed: only bases and folders resolve
        return None
    db = Database.from_settings(settings)
    try:
        db.init_schema()
        project = local_caller_project(db, os.environ.get("OPENAI_API_KEY"), DEFAULT_PROJECT)
        info = lookup_model(db, model_id, project)
    finally:
        db.dispose()
    if info is None:
        return None
    return LocalModel(info.id, info.base_model, Path(info.path), info.method)


def resolve_local(model_id: str, settings: Settings | None = None) -> LocalModel:
    """What `model_id` is on this machine: a fine-tuned model from the local store, a model folder with
    `tuneforge_model.json`, or a base model. Raises ModelLookupError with what to do."""
    from tuneforge.models.catalog import UnknownModelError, resolve_base

    settings = settings or get_settings()
    folder = Path(model_id).expanduser()
    if (folder / MODEL_META).is_file():
        return _from_folder(model_id, folder)
    found = _from_registry(model_id, settings)
    if found is not None:
        return found
    if model_id.startswith("ft:") or ":ft-" in model_id:
        raise ModelLookupError(
            f"fine-tuned model {model_id!r} is not in this machine's store ({settings.home}); "
            "see `tuneforge models list`, or set TUNEFORGE_HOME to the server's home")
    try:
        spec = resolve_base(model_id, settings)
    except UnknownModelError as exc:
        raise ModelLookupError(str(exc)) from exc
    return LocalModel(model_id, spec.name, None, "base")


def load_model(model_id: str, settings: Settings | None = None, device: str | None = None):
    """(model, tokenizer, LocalModel) with any LoRA adapter applied, in eval mode."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuneforge.models.loading import load_base_model, load_tokenizer

    settings = settings or get_settings()
    local = resolve_local(model_id, settings)
    if local.method == "full" and local.path is not None:
        model = AutoModelForCausalLM.from_pretrained(local.path).eval()
        tok_dir = local.path if (local.path / "tokenizer_config.json").is_file() else None
        tokenizer = AutoTokenizer.from_pretrained(tok_dir) if tok_dir else load_tokenizer(local.base_model,
                                                                                           settings)
        return model.to(device or model.device), tokenizer, local
    model = load_base_model(local.base_model, settings, device=device)
    if local.path is not None:
        model = PeftModel.from_pretrained(model, local.path).eval()
    return model, load_tokenizer(local.base_model, settings), local
