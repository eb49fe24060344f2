"""The 0.x `/v1/fine-tunes` family that `openai api fine_tunes.*` (openai<1.0) calls.

Same jobs underneath as `/v1/fine_tuning/jobs`; only ids (`ft-...`), object shapes, status names
(`pending`) and event wording differ. `GET .../events?stream=true` streams server-sent events until the
job ends, then `data: [DONE]`, which is what `fine_tunes.follow` waits for.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sse_starlette.sse import EventSourceResponse

from tuneforge.api.deps import current_project, get_db, get_settings_dep
from tuneforge.api.schemas.common import error_responses
from tuneforge.api.schemas.fine_tuning import (
    LegacyEventList,
    LegacyFineTune,
    LegacyFineTuneCreate,
    LegacyFineTuneList,
    legacy_event,
    legacy_job_object,
)
from tuneforge.jobs import files as job_files
from tuneforge.jobs import service
from tuneforge.jobs.service import TERMINAL, JobRequest
from tuneforge.settings import Settings
from tuneforge.store.db import Database
from tuneforge.store.tables_jobs import Job, JobEvent

router = APIRouter(tags=["fine-tunes (legacy)"], responses=error_responses(401))
FineTuneId = Path(..., description="The fine-tune's id (`ft-...`).", max_length=200)
POLL_SECONDS = 0.5


def _events(db: Database, job_id: str, after_seq: int = 0) -> list[JobEvent]:
    """Message events oldest first (the 0.x API never showed per-step metrics)."""
    with db.session() as session:
        stmt = select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.seq > after_seq,
                                      JobEvent.type == "message")
        return list(session.scalars(stmt.order_by(JobEvent.seq)))


def _render(db: Database, settings: Settings, job: Job, with_events: bool) -> dict:
    ids = [job.training_file, *([job.validation_file] if job.validation_file else []), *job.result_files]
    objects = job_files.file_objects(db, settings, ids, job.project)
    return legacy_job_object(job, {o["id"]: o for o in objects}, _events(db, job.id) if with_events else None)


@router.post("/fine-tunes", response_model=LegacyFineTune, responses=error_responses(400),
             summary="Create a fine-tune (0.x API)")
async def create_fine_tune(body: LegacyFineTuneCreate, project: str = Depends(current_project),
                           db: Database = Depends(get_db),
                           settings: Settings = Depends(get_settings_dep)) -> dict:
    hp = {"n_epochs": body.n_epochs or "auto", "batch_size": body.batch_size or "auto",
          "learning_rate_multiplier": body.learning_rate_multiplier or "auto",
          "prompt_loss_weight": body.prompt_loss_weight if body.prompt_loss_weight is not None else 0.01}
    req = JobRequest(model=body.model, training_file=body.training_file, validation_file=body.validation_file,
                     hyperparameters=hp, suffix=body.suffix, legacy=True)
    job = await run_in_threadpool(service.create_job, db, settings, project, req)
    return await run_in_threadpool(_render, db, settings, job, True)


@router.get("/fine-tunes", response_model=LegacyFineTuneList, summary="List fine-tunes (0.x API)")
def list_fine_tunes(project: str = Depends(current_project), db: Database = Depends(get_db),
                    settings: Settings = Depends(get_settings_dep)) -> dict:
    jobs = service.list_jobs(db, project, legacy=True)
    return {"object": "list", "data": [_render(db, settings, j, False) for j in jobs], "has_more": False}


@router.get("/fine-tunes/{fine_tune_id}", response_model=LegacyFineTune, responses=error_responses(404),
            summary="Retrieve a fine-tune (0.x API)")
def retrieve_fine_tune(fine_tune_id: str = FineTuneId, project: str = Depends(current_project),
                       db: Database = Depends(get_db),
                       settings: Settings = Depends(get_settings_dep)) -> dict:
    job = service.get_job(db, fine_tune_id, project, legacy=True)
    return _render(db, settings, job, True)


@router.post("/fine-tunes/{fine_tune_id}/cancel", response_model=LegacyFineTune,
             responses=error_responses(400, 404), summary="Cancel a fine-tune (0.x API)")
def cancel_fine_tune(fine_tune_id: str = FineTuneId, project: str = Depends(current_project),
                     db: Database = Depends(get_db),
                     settings: Settings = Depends(get_settings_dep)) -> dict:
    job = service.cancel_job(db, fine_tune_id, project, legacy=True)
    return _render(db, settings, job, True)


@router.get("/fine-tunes/{fine_tune_id}/events", response_model=LegacyEventList,
            responses={**error_responses(404), 200: {
                "content": {"text/event-stream": {}}, "description": "The events (stream=true: SSE)"}},
            summary="List or stream a fine-tune's events (0.x API)")
async def fine_tune_events(fine_tune_id: str = FineTuneId,
                           stream: bool = Query(False, description="Stream events as server-sent events."),
                           project: str = Depends(current_project), db: Database = Depends(get_db)):
    job = await run_in_threadpool(service.get_job, db, fine_tune_id, project, legacy=True)
    if not stream:
        events = await run_in_threadpool(_events, db, job.id)
        return {"object": "list", "data": [legacy_event(e) for e in events], "has_more": False}
    return EventSourceResponse(_follow(db, job.id, project), sep="\n", ping=15)


async def _follow(db: Database, job_id: str, project: str) -> AsyncIterator[dict]:
    """Every event so far, then new ones as they happen, until the job stops; then [DONE]."""
    last_seq = 0
    while True:
        # Read the status first: events written before a terminal status are then never missed.
        job = await run_in_threadpool(service.get_job, db, job_id, project)
        for event in await run_in_threadpool(_events, db, job_id, last_seq):
            last_seq = event.seq
            yield {"data": json.dumps(legacy_event(event))}
        if job.status in TERMINAL or job.status == "paused":
            break
        await asyncio.sleep(POLL_SECONDS)
    yield {"data": "[DONE]"}
