"""`/v1/models`: base models, their aliases and the project's fine-tuned models; delete fine-tuned ones.

A project's model aliases (a migrated model's source id, `tuneforge migrate`) are listed with the model
they answer for as `parent`; `PUT /v1/models/{alias}` (tuneforge's extension) makes one, DELETE removes it.

Model ids contain `:` (`ft:base:org:sfx:id`) and sometimes `/` (hub ids), sent raw or as `%2F`
depending on the SDK version, hence the `{model:path}` routes (Starlette decodes `%2F` before matching).
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from tuneforge.api.deps import current_project, get_db, get_settings_dep
from tuneforge.api.errors import APIError, model_not_found
from tuneforge.api.schemas.common import error_responses
from tuneforge.api.schemas.models import AliasCreate, AliasObject, ModelDeleted, ModelList, ModelObject
from tuneforge.models import registry
from tuneforge.models.catalog import BaseModelSpec, all_bases
from tuneforge.settings import Settings
from tuneforge.store.db import Database

router = APIRouter(tags=["models"], responses=error_responses(401))
log = logging.getLogger("tuneforge.api")
OWNER = "tuneforge"


def _created(spec: BaseModelSpec) -> int:
    """When the base arrived here: its source's mtime where it is a local file or folder."""
    try:
        return int(Path(spec.source).stat().st_mtime)
    except (OSError, ValueError):
        return 0


def _base_objects(settings: Settings) -> dict[str, dict]:
    bases = all_bases(settings)
    out = {name: {"id": name, "object": "model", "created": _created(spec), "owned_by": OWNER, "root": name,
                  "parent": None} for name, spec in sorted(bases.items())}
    for alias, target in sorted(settings.aliases.items()):
        if alias not in out:
            created = out[target]["created"] if target in out else 0
            out[alias] = {"id": alias, "object": "model", "created": created, "owned_by": OWNER,
                          "root": target, "parent": target}
    return out


def _ft_object(info: registry.FineTunedModelInfo) -> dict:
    return {"id": info.id, "object": "model", "created": info.created, "owned_by": info.owned_by,
            "root": info.base_model, "parent": info.base_model}


def _alias_object(alias_id: str, info: registry.FineTunedModelInfo) -> dict:
    """An alias as a Model: its own id, built on the fine-tuned model it answers for."""
    return {"id": alias_id, "object": "model", "created": info.created, "owned_by": info.owned_by,
            "root": info.base_model, "parent": info.id}


@router.get("/models", response_model=ModelList, summary="List models: bases, aliases and fine-tuned models")
def list_models(project: str = Depends(current_project), db: Database = Depends(get_db),
                settings: Settings = Depends(get_settings_dep)) -> dict:
    tuned = [_ft_object(m) for m in registry.list_models(db, project)]
    aliases = [_alias_object(a.id, a.model) for a in registry.list_aliases(db, project)
               if a.model is not None]  # a pending alias answers nothing yet
    return {"object": "list", "data": [*tuned, *aliases, *_base_objects(settings).values()]}


@router.get("/models/{model:path}", response_model=ModelObject, responses=error_responses(404),
            summary="Retrieve a model")
def retrieve_model(model: str, project: str = Depends(current_project), db: Database = Depends(get_db),
                   settings: Settings = Depends(get_settings_dep)) -> dict:
    info = registry.lookup_model(db, model, project)
    if info is not None:
        return _ft_object(info) if info.id == model else _alias_object(model, info)
    bases = _base_objects(settings)
    if model in bases:
        return bases[model]
    raise model_not_found(model)


@router.delete("/models/{model:path}", response_model=ModelDeleted, responses=error_responses(400, 404),
               summary="Delete a fine-tuned model")
async def delete_model(model: str, request: Request, project: str = Depends(current_project),
                       db: Database = Depends(get_db),
                       settings: Settings = Depends(get_settings_dep)) -> dict:
    if model in _base_objects(settings):
        raise APIError(400, f"`{model}` is a base model or alias; only fine-tuned models (ft:...) can be "
                            f"deleted. Remove a registered base with `tuneforge models remove {model}`.",
                       param="model", code="model_not_deletable")
    # A model's weights leave memory under every name; deleting only an alias keeps them in use.
    is_alias = await run_in_threadpool(registry.lookup_alias, db, model, project) is not None
    names = [] if is_alias else [model, *await run_in_threadpool(registry.aliases_of, db, model, project)]
    info = await run_in_threadpool(registry.delete_model, db, model, project)
    if info is None:
        raise model_not_found(model)
    engine = getattr(request.app.state, "engine", None)
    for name in names if engine is not None else ():
        try:
            engine.unload(name)  # stop serving the deleted weights under any of their names
        except Exception:  # the model is deleted either way; the engine logs its own trouble
            log.exception("engine could not unload %s", name)
    return {"id": model, "object": "model", "deleted": True}


@router.put("/models/{model:path}", response_model=AliasObject, responses=error_responses(400, 404),
            summary="Make a model alias (tuneforge): the name answers for a job's fine-tuned model")
def put_alias(model: str, body: AliasCreate, project: str = Depends(current_project),
              db: Database = Depends(get_db), settings: Settings = Depends(get_settings_dep)) -> dict:
    alias = registry.set_alias(db, settings, model, project, body.job)
    return {"id": alias.id, "object": "model.alias", "job": alias.job_id,
            "model": alias.model.id if alias.model else None, "created": alias.created}
