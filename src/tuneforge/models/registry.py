"""The one model registry: a name in, a `ModelTarget` out.

Every command and endpoint resolves a model id here: a fine-tuned or checkpoint id of the caller's
project (the `fine_tuned_models` table), or a base model of the catalog (a built-in, an alias or a base
registered with `tuneforge models add`). Paths and hub ids are not names: only `tuneforge models add`
(an operator action) turns them into one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import select

from tuneforge.models.catalog import base_by_name
from tuneforge.settings import Settings
from tuneforge.store.db import Database
from tuneforge.store.tables_jobs import Checkpoint, FineTunedModel

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
    return ModelTarget(model_id, "lora" if method == "lora" else "full", base or "", folder)


def _info(row: FineTunedModel) -> FineTunedModelInfo:
    return FineTunedModelInfo(id=row.id, base_model=row.base_model, path=Path(row.path), method=row.method,
                              created=row.created, job_id=row.job_id, owned_by=row.owned_by, kind=row.kind,
                              step=row.step)


def lookup_model(db: Database, model_id: str, project: str) -> FineTunedModelInfo | None:
    """A fine-tuned or checkpoint model of `project`, or None. Another project's model is None too."""
    with db.session() as session:
        row = session.get(FineTunedModel, model_id)
        if row is None or row.project != project:
            return None
        return _info(row)


def list_models(db: Database, project: str, *, include_checkpoints: bool = True) -> list[FineTunedModelInfo]:
    """The project's fine-tuned models, newest first."""
    with db.session() as session:
        stmt = select(FineTunedModel).where(FineTunedModel.project == project)
        if not include_checkpoints:
            stmt = stmt.where(FineTunedModel.kind == "final")
        rows = session.scalars(stmt.order_by(FineTunedModel.created.desc(), FineTunedModel.id)).all()
        return [_info(r) for r in rows]


def delete_model(db: Database, model_id: str, project: str) -> FineTunedModelInfo | None:
    """Forget a fine-tuned model and free its weights; None when the project has no such model.

    Deleting the final model keeps the job's checkpoints (as OpenAI does); a checkpoint's folder is
    only removed when it is not the final model's folder too.
    """
    with db.session() as session:
        row = session.get(FineTunedModel, model_id)
        if row is None or row.project != project:
            return None
        info = _info(row)
        session.delete(row)
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
