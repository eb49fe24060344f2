"""Which weights a model id names: a base model, a LoRA adapter on a base, or a full fine-tune.

The engine takes a list of resolvers (callables `(model_id, project) -> ModelTarget | None`), tried in
order. The default chain asks the fine-tuned model registry (`tuneforge.jobs.registry`, when present),
then accepts a local fine-tuned model folder, then the base-model catalog.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tuneforge.models.catalog import UnknownModelError, resolve_base
from tuneforge.settings import Settings

Kind = Literal["base", "lora", "full"]


@dataclass(frozen=True)
class ModelTarget:
    id: str  # the id the caller used (echoed in responses)
    kind: Kind
    base: str  # base model name for "base"/"lora"; for "full" the base it was trained from
    path: Path | None = None  # adapter folder ("lora") or model folder ("full")

    @property
    def weights_key(self) -> str:
        """Requests with the same key share one copy of the weights in memory."""
        return f"full:{self.path}" if self.kind == "full" else f"base:{self.base}"


Resolver = Callable[[str, str], "ModelTarget | None"]


def target_from_folder(model_id: str, folder: Path, base: str | None = None,
                       method: str | None = None) -> ModelTarget:
    """A fine-tuned model folder: `tuneforge_model.json` (ours) or a plain PEFT/HF folder."""
    meta: dict = {}
    meta_file = folder / "tuneforge_model.json"
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text("utf-8"))
    is_adapter = (folder / "adapter_config.json").is_file()
    method = method or meta.get("method") or ("lora" if is_adapter else "full")
    base = base or meta.get("base_model")
    if not base and is_adapter:
        base = json.loads((folder / "adapter_config.json").read_text("utf-8")).get("base_model_name_or_path")
    return ModelTarget(model_id, "lora" if method == "lora" else "full", base or "", folder)


def static_resolver(mapping: dict[str, str | Path]) -> Resolver:
    """Serve fixed folders under fixed ids (tests, `tuneforge chat -m ft:...=FOLDER`)."""

    def resolve(model_id: str, _project: str) -> ModelTarget | None:
        folder = mapping.get(model_id)
        return target_from_folder(model_id, Path(folder)) if folder else None

    return resolve


def registry_resolver(db) -> Resolver:
    def resolve(model_id: str, project: str) -> ModelTarget | None:
        try:
            from tuneforge.jobs.registry import lookup_model
        except ImportError:  # the jobs subsystem is optional for serving
            return None
        info = lookup_model(db, model_id, project)
        if info is None:
            return None
        return target_from_folder(model_id, Path(info.path), base=info.base_model, method=info.method)

    return resolve


def folder_resolver(model_id: str, _project: str) -> ModelTarget | None:
    folder = Path(model_id).expanduser()
    if folder.is_dir() and ((folder / "tuneforge_model.json").is_file()
                            or (folder / "adapter_config.json").is_file()):
        return target_from_folder(model_id, folder.resolve())
    return None


def base_resolver(settings: Settings) -> Resolver:
    def resolve(model_id: str, _project: str) -> ModelTarget | None:
        try:
            spec = resolve_base(model_id, settings)
        except UnknownModelError:
            return None
        if spec.kind == "hub" and not spec.builtin and model_id == spec.source:
            return None  # an unregistered "org/name" is not served: nothing downloads from a hub
        return ModelTarget(model_id, "base", model_id)  # the engine canonicalises aliases

    return resolve


def default_resolvers(settings: Settings, db=None) -> list[Resolver]:
    chain: list[Resolver] = []
    if db is not None:
        chain.append(registry_resolver(db))
    return [*chain, folder_resolver, base_resolver(settings)]
