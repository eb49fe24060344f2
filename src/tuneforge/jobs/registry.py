"""The fine-tuned models jobs produced: what serving and `/v1/models` look up (docs/internals.md)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from tuneforge.jobs.naming import clean_suffix, fine_tuned_model_id, legacy_model_id
from tuneforge.store.db import Database
from tuneforge.store.tables_jobs import Checkpoint, FineTunedModel, Job


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


def final_model_id(job: Job) -> str:
    """The id the job's model gets when it succeeds (checkpoint ids extend it)."""
    if job.legacy:
        return legacy_model_id(job.model, job.organization, clean_suffix(job.suffix, legacy=True),
                               job.created_at)
    return fine_tuned_model_id(job.base_model, job.organization, job.suffix, job.id)


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
