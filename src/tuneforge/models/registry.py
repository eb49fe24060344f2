"""The one model registry: a name in, a `ModelTarget` out.

Every command and endpoint resolves a model id here: a fine-tuned or checkpoint id of the caller's
project (the `fine_tuned_models` table), or a base model of the catalog (a built-in, an alias or a base
registered with `tuneforge models add`). Paths and hub ids are not names: only `tuneforge models add`
(an operator action) turns them into one.

An alias (`model_aliases`: a migrated model's source id, e.g. `ft:gpt-4o-mini-2024-07-18:acme:x:AbC123`)
names a job of the project and answers, once that job's final model exists, wherever the model does.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from sqlalchemy import select

from tuneforge.errors import UserError
from tuneforge.models import permissions
from tuneforge.models.catalog import base_by_name
from tuneforge.models.methods import ADAPTER_METHODS
from tuneforge.settings import Settings
from tuneforge.store.db import Database
from tuneforge.store.tables_aliases import ModelAlias
from tuneforge.store.tables_jobs import Checkpoint, FineTunedModel, Job

Kind = Literal["base", "lora", "full"]
MODEL_META = "tuneforge_model.json"


@dataclass(frozen=True)
class FineTunedModelInfo:
    id: str
    base_model: str
    path: Path  # the model folder: a PEFT adapter, or a full HF model
    method: str  # lora | full
    created: int
    job_id: str
    owned_by: str = "personal"
    kind: str = "final"  # final | checkpoint
    step: int | None = None


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


def target_from_folder(model_id: str, folder: Path, base: str | None = None,
                       method: str | None = None) -> ModelTarget:
    """A fine-tuned model folder: `tuneforge_model.json` (ours) or a plain PEFT/HF folder."""
    meta: dict = {}
    meta_file = folder / MODEL_META
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text("utf-8"))
    is_adapter = (folder / "adapter_config.json").is_file()
    method = method or meta.get("method") or ("lora" if is_adapter else "full")
    base = base or meta.get("base_model")
    if not base and is_adapter:
        base = json.loads((folder / "adapter_config.json").read_text("utf-8")).get("base_model_name_or_path")
    return ModelTarget(model_id, "lora" if method in ADAPTER_METHODS else "full", base or "", folder)


def _info(row: FineTunedModel) -> FineTunedModelInfo:
    return FineTunedModelInfo(id=row.id, base_model=row.base_model, path=Path(row.path), method=row.method,
                              created=row.created, job_id=row.job_id, owned_by=row.owned_by, kind=row.kind,
                              step=row.step)


def _final_model_of(session, job_id: str, project: str) -> FineTunedModel | None:
    stmt = select(FineTunedModel).where(FineTunedModel.job_id == job_id, FineTunedModel.project == project,
                                        FineTunedModel.kind == "final")
    return session.scalars(stmt).first()


def lookup_model(db: Database, model_id: str, project: str) -> FineTunedModelInfo | None:
    """A fine-tuned or checkpoint model of `project` (by its id or an alias of it: the info is the
    model's own, so `info.id != model_id` for an alias), or None. Another project's model is None too,
    unless its owner shared that checkpoint with `project` (models/permissions.py)."""
    with db.session() as session:
        row = session.get(FineTunedModel, model_id)
        if row is not None:
            mine = row.project == project or permissions.is_shared_with(session, model_id, project)
            return _info(row) if mine else None
        alias = session.get(ModelAlias, (project, model_id))
        row = _final_model_of(session, alias.job_id, project) if alias is not None else None
        return _info(row) if row is not None else None


def list_models(db: Database, project: str, *, include_checkpoints: bool = True) -> list[FineTunedModelInfo]:
    """The project's fine-tuned models and the checkpoints shared with it, newest first."""
    with db.session() as session:
        shared = permissions.shared_checkpoints(session, project)
        mine = FineTunedModel.project == project
        stmt = select(FineTunedModel).where(mine | FineTunedModel.id.in_(shared) if shared else mine)
        if not include_checkpoints:
            stmt = stmt.where(FineTunedModel.kind == "final")
        rows = session.scalars(stmt.order_by(FineTunedModel.created.desc(), FineTunedModel.id)).all()
        return [_info(r) for r in rows]


def delete_model(db: Database, model_id: str, project: str) -> FineTunedModelInfo | None:
    """Forget a fine-tuned model and free its weights; None when the project has no such model.

    Deleting the final model keeps the job's checkpoints (as OpenAI does) and deletes its aliases; a
    checkpoint's folder is only removed when it is not the final model's folder too. Given an alias,
    only the alias goes: the model keeps its own id.
    """
    with db.session() as session:
        row = session.get(FineTunedModel, model_id)
        if row is None or row.project != project:
            return _delete_alias(session, model_id, project)
        info = _info(row)
        session.delete(row)
        permissions.forget_checkpoint(session, model_id)
        if info.kind == "final":  # its aliases would otherwise name nothing (or a later retrain)
            for alias in session.scalars(select(ModelAlias).where(ModelAlias.project == project,
                                                                  ModelAlias.job_id == info.job_id)):
                session.delete(alias)
        shared = session.scalars(select(FineTunedModel.id).where(FineTunedModel.path == row.path,
                                                                 FineTunedModel.id != model_id)).first()
        if info.kind == "checkpoint":
            stmt = select(Checkpoint).where(Checkpoint.fine_tuned_model_checkpoint == model_id)
            for c in session.scalars(stmt):
                session.delete(c)
    if shared is None and info.path.is_dir():
        shutil.rmtree(info.path, ignore_errors=True)
    return info


def resolve_fine_tuned(db: Database, model_id: str, project: str) -> ModelTarget | None:
    """The project's fine-tuned or checkpoint model `model_id` as a target, or None."""
    info = lookup_model(db, model_id, project)
    if info is None:
        return None
    return target_from_folder(model_id, info.path, base=info.base_model, method=info.method)


def resolve_base_name(model_id: str, settings: Settings) -> ModelTarget | None:
    """A base model by name (built-in, alias or registered), or None. A path or an unregistered hub id
    is not a name and resolves to None: a request never makes the server read a path or download."""
    if base_by_name(model_id, settings) is None:
        return None
    return ModelTarget(model_id, "base", model_id)  # the engine canonicalises aliases


def resolve_model(model_id: str, project: str, settings: Settings, db: Database | None) -> ModelTarget | None:
    """The one resolution rule: the caller's fine-tuned models first, then the base-model names."""
    if db is not None:
        target = resolve_fine_tuned(db, model_id, project)
        if target is not None:
            return target
    return resolve_base_name(model_id, settings)


# --- aliases -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AliasInfo:
    id: str
    job_id: str
    created: int
    model: FineTunedModelInfo | None  # None until the job's final model exists


class AliasConflict(UserError):
    """An alias refused: the name is taken, or the job is not the project's."""


def _delete_alias(session, alias_id: str, project: str) -> FineTunedModelInfo | None:
    alias = session.get(ModelAlias, (project, alias_id))
    if alias is None:
        return None
    row = _final_model_of(session, alias.job_id, project)
    session.delete(alias)
    if row is None:  # a pending alias: nothing to describe but its name
        return FineTunedModelInfo(id=alias_id, base_model="", path=Path(), method="", created=alias.created,
                                  job_id=alias.job_id)
    return replace(_info(row), id=alias_id)


def _alias_info(session, alias: ModelAlias) -> AliasInfo:
    row = _final_model_of(session, alias.job_id, alias.project)
    return AliasInfo(alias.id, alias.job_id, alias.created, _info(row) if row is not None else None)


def lookup_alias(db: Database, alias_id: str, project: str) -> AliasInfo | None:
    with db.session() as session:
        alias = session.get(ModelAlias, (project, alias_id))
        return _alias_info(session, alias) if alias is not None else None


def list_aliases(db: Database, project: str) -> list[AliasInfo]:
    """The project's aliases, newest first, each with the model it answers for (None: not yet)."""
    with db.session() as session:
        stmt = select(ModelAlias).where(ModelAlias.project == project)
        return [_alias_info(session, a) for a in session.scalars(stmt.order_by(ModelAlias.created.desc(),
                                                                               ModelAlias.id))]


def aliases_of(db: Database, model_id: str, project: str) -> list[str]:
    """The aliases that answer for `model_id` (a final model) in `project`."""
    with db.session() as session:
        row = session.get(FineTunedModel, model_id)
        if row is None or row.project != project or row.kind != "final":
            return []
        stmt = select(ModelAlias.id).where(ModelAlias.project == project, ModelAlias.job_id == row.job_id)
        return list(session.scalars(stmt))


def set_alias(db: Database, settings: Settings, alias_id: str, project: str, job_id: str) -> AliasInfo:
    """Make `alias_id` name job `job_id`'s final model in `project`. The same alias for the same job
    again is a no-op; a name that is already a model, a base, an alias or another job's alias is refused."""
    def refuse(why: str) -> AliasConflict:
        return AliasConflict(f"Cannot make `{alias_id}` an alias of job {job_id}: {why}", status=400,
                             param="model", code="model_alias_conflict")

    if not alias_id.strip() or len(alias_id) > 512:
        raise refuse("an alias is 1 to 512 characters.")
    if base_by_name(alias_id, settings) is not None or alias_id in settings.aliases:
        raise refuse("that name is a base model or alias on this server; pick another name.")
    with db.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.project != project:
            raise AliasConflict(f"No such fine-tuning job: {job_id}. Create the job first, then its alias.",
                                status=404, param="job", code="not_found")
        if session.get(FineTunedModel, alias_id) is not None:
            raise refuse("a fine-tuned model already has that id.")
        existing = session.get(ModelAlias, (project, alias_id))
        if existing is not None and existing.job_id != job_id:
            raise refuse(f"it is already an alias of job {existing.job_id}; delete it first "
                         f"(DELETE /v1/models/{alias_id}).")
        if existing is None:
            existing = ModelAlias(project=project, id=alias_id, job_id=job_id, created=int(time.time()))
            session.add(existing)
            session.flush()
        return _alias_info(session, existing)
