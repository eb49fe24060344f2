"""Local model loading for the in-process evaluator: the models/ loader (registry resolution, adapters
applied). Kept as one import point until `tuneforge eval` scores over HTTP (issue 14)."""

from __future__ import annotations

from tuneforge.models.loading import load_local_model, resolve_local

__all__ = ["load_model", "resolve_local"]


def load_model(model_id: str, settings=None, device: str | None = None):
    """(model, tokenizer, ModelTarget) with any LoRA adapter applied, in eval mode."""
    return load_local_model(model_id, settings, device=device)
