"""Export a fine-tuned model out of tuneforge: a merged Hugging Face folder, the LoRA adapter, or GGUF.

`merged` is a plain transformers folder (the adapter folded into the base weights with peft's
`merge_and_unload`), so anything that loads Hugging Face models loads it; `gguf` converts that folder to
one file llama.cpp loads (see export_gguf.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tuneforge.settings import Settings, get_settings

FORMATS = ("merged", "adapter", "gguf")


class ExportError(ValueError):
    """An export that cannot be done as asked; the message says why and what to do instead."""


def check_target(path: Path, overwrite: bool) -> None:
    """Refuse to write over something that exists (an empty folder is fine) unless asked to."""
    occupied = path.is_file() or (path.is_dir() and any(path.iterdir()))
    if occupied and not overwrite:
        raise ExportError(f"{path} already exists; pick another --output or pass --force")


def _fresh_dir(path: Path, overwrite: bool) -> Path:
    check_target(path, overwrite)
    if path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def export_adapter(model_id: str, output: Path, settings: Settings | None = None,
                   overwrite: bool = False) -> Path:
    from tuneforge.models.loading import resolve_local

    local = resolve_local(model_id, settings or get_settings())
    if local.path is None or local.kind != "lora":
        raise ExportError(f"{model_id} has no LoRA adapter ({local.kind} model); export it with "
                          "--format merged instead")
    out = _fresh_dir(output, overwrite)
    shutil.copytree(local.path, out, dirs_exist_ok=True)
    return out


def export_merged(model_id: str, output: Path, settings: Settings | None = None, overwrite: bool = False,
                  dtype: str = "float32") -> Path:
    """A standalone transformers folder: weights with the adapter merged in, the tokenizer and config."""
    import torch

    from tuneforge.models.loading import load_local_model

    settings = settings or get_settings()
    check_target(output, overwrite)
    model, tokenizer, local = load_local_model(model_id, settings, device="cpu")
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model = model.to(getattr(torch, dtype))
    out = _fresh_dir(output, overwrite)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    meta = {"source_model": model_id, "base_model": local.base, "method": local.kind,
            "format": "merged"}
    (out / "tuneforge_export.json").write_text(json.dumps(meta, indent=2))
    return out


def export_model(model_id: str, fmt: str, output: Path, settings: Settings | None = None,
                 overwrite: bool = False) -> Path:
    """Dispatch on `fmt` (merged | adapter | gguf); returns the folder or file written."""
    if fmt == "adapter":
        return export_adapter(model_id, output, settings, overwrite)
    if fmt == "merged":
        return export_merged(model_id, output, settings, overwrite)
    if fmt == "gguf":
        from tuneforge.models.export_gguf import export_gguf

        return export_gguf(model_id, output, settings, overwrite)
    raise ExportError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
