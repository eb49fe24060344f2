"""How the engine turns a model id into weights: through the one registry (`models/registry.py`).

The engine takes a list of resolvers (callables `(model_id, project) -> ModelTarget | None`), tried in
order. The default chain is the registry alone: the caller's fine-tuned models, then the base-model
names. A path or a hub id in a request resolves to nothing; `static_resolver` serves fixed folders for
tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tuneforge.models.registry import ModelTarget, resolve_model, target_from_folder
from tuneforge.settings import Settings

__all__ = ["ModelTarget", "Resolver", "default_resolvers", "static_resolver"]

Resolver = Callable[[str, str], "ModelTarget | None"]


def static_resolver(mapping: dict[str, str | Path]) -> Resolver:
    """Serve fixed folders under fixed ids (tests, benchmarks)."""

    def resolve(model_id: str, _project: str) -> ModelTarget | None:
        folder = mapping.get(model_id)
        return target_from_folder(model_id, Path(folder)) if folder else None

    return resolve


def default_resolvers(settings: Settings, db=None) -> list[Resolver]:
    def resolve(model_id: str, project: str) -> ModelTarget | None:
        return resolve_model(model_id, project, settings, db)

    return [resolve]
