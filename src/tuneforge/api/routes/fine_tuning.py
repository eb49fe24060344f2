"""`/v1/fine_tuning/jobs`: create, list, retrieve, cancel, pause, resume, events, checkpoints."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from tuneforge.api.deps import current_project, get_db, get_settings_dep
from tuneforge.api.pagination import PageParams, cursor_errors, list_page, page_params, paginate
from tuneforge.api.schemas.common import error_responses
from tuneforge.api.schemas.fine_tuning import (
    CheckpointList,
    EventList,
    FineTuningJob,
    JobCreate,
    JobList,
    checkpoint_object,
    event_object,
    job_object,
)
from tuneforge.jobs import listing, service
from tuneforge.jobs.service import JobRequest
from tuneforge.settings import Settings
from tuneforge.store.db import Database
from tuneforge.store.tables_jobs import Checkpoint, JobEvent

router = APIRouter(tags=["fine-tuning"], responses=error_responses(401))
JobId = Path(..., description="The job's id (`ftjob-...`).", max_length=200)


@router.post("/fine_tuning/jobs", response_model=FineTuningJob, responses=error_responses(400),
             summary="Create a fine-tuning job")
async def create_job(body: JobCreate, project: str = Depends(current_project), db: Database = Depends(get_db),
                     settings: Settings = Depends(get_settings_dep)) -> dict:
    req = JobRequest(model=body.model, training_file=body.training_file, validation_file=body.validation_file,
                     hyperparameters=body.chosen_hyperparameters(), suffix=body.suffix, seed=body.seed,
                     metadata=body.metadata, training_type=body.training_type,
                     max_processes=body.max_processes,
                     integrations=[i.model_dump(exclude_none=True) for i in body.integrations or ()] or None,
                     method=body.method.type if body.method else "supervised")
    job = await run_in_threadpool(service.create_job, db, settings, project, req)
    return job_object(job)


@router.get("/fine_tuning/jobs", response_model=JobList, responses=error_responses(400),
            summary="List fine-tuning jobs (newest first); filter with metadata[KEY]=VALUE or metadata=null")
def list_jobs(request: Request, page: PageParams = Depends(page_params(default_limit=20)),
              project: str = Depends(current_project), db: Database = Depends(get_db)) -> dict:
    wanted = listing.parse_metadata_filter(request.query_params.multi_items())
    with cursor_errors():
        result = listing.list_jobs(db, project, after=page.after, limit=page.limit, order=page.order,
                                   metadata=wanted)
        return list_page([job_object(j) for j in result.items], result.has_more)


@router.get("/fine_tuning/jobs/{fine_tuning_job_id}", response_model=FineTuningJob,
            responses=error_responses(404), summary="Retrieve a fine-tuning job")
def retrieve_job(fine_tuning_job_id: str = JobId, project: str = Depends(current_project),
                 db: Database = Depends(get_db)) -> dict:
    return job_object(service.get_job(db, fine_tuning_job_id, project, legacy=False))


@router.post("/fine_tuning/jobs/{fine_tuning_job_id}/cancel", response_model=FineTuningJob,
             responses=error_responses(400, 404), summary="Cancel a fine-tuning job")
def cancel_job(fine_tuning_job_id: str = JobId, project: str = Depends(current_project),
               db: Database = Depends(get_db)) -> dict:
    return job_object(service.cancel_job(db, fine_tuning_job_id, project, legacy=False))


@router.post("/fine_tuning/jobs/{fine_tuning_job_id}/pause", response_model=FineTuningJob,
             responses=error_responses(400, 404), summary="Pause a running or queued job")
def pause_job(fine_tuning_job_id: str = JobId, project: str = Depends(current_project),
              db: Database = Depends(get_db)) -> dict:
    service.get_job(db, fine_tuning_job_id, project, legacy=False)
    return job_object(service.pause_job(db, fine_tuning_job_id, project))


@router.post("/fine_tuning/jobs/{fine_tuning_job_id}/resume", response_model=FineTuningJob,
             responses=error_responses(400, 404), summary="Resume a paused job from its last checkpoint")
def resume_job(fine_tuning_job_id: str = JobId, project: str = Depends(current_project),
               db: Database = Depends(get_db)) -> dict:
    service.get_job(db, fine_tuning_job_id, project, legacy=False)
    return job_object(service.resume_job(db, fine_tuning_job_id, project))


@router.get("/fine_tuning/jobs/{fine_tuning_job_id}/events", response_model=EventList,
            responses=error_responses(400, 404), summary="List a job's events (newest first)")
def list_events(fine_tuning_job_id: str = JobId, page: PageParams = Depends(page_params(default_limit=20)),
                project: str = Depends(current_project), db: Database = Depends(get_db)) -> dict:
    service.get_job(db, fine_tuning_job_id, project, legacy=False)
    with db.session() as session, cursor_errors():
        result = paginate(session, select(JobEvent).where(JobEvent.job_id == fine_tuning_job_id),
                          id_column=JobEvent.id, sort_columns=[JobEvent.seq], after=page.after,
                          limit=page.limit, order=page.order)
        return list_page([event_object(e) for e in result.items], result.has_more)


@router.get("/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints", response_model=CheckpointList,
            responses=error_responses(400, 404), summary="List a job's checkpoints (newest first)")
def list_checkpoints(fine_tuning_job_id: str = JobId,
                     page: PageParams = Depends(page_params(default_limit=10)),
                     project: str = Depends(current_project), db: Database = Depends(get_db)) -> dict:
    service.get_job(db, fine_tuning_job_id, project, legacy=False)
    with db.session() as session, cursor_errors():
        result = paginate(session, select(Checkpoint).where(Checkpoint.job_id == fine_tuning_job_id),
                          id_column=Checkpoint.id, sort_columns=[Checkpoint.step_number, Checkpoint.seq],
                          after=page.after, limit=page.limit, order=page.order)
        return list_page([checkpoint_object(c) for c in result.items], result.has_more, with_ids=True)
