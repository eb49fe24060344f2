"""Creating jobs and changing their state on the user's behalf (cancel, pause, resume).

Raises `JobRequestError` (status, message, param, code) for bad requests; the API turns it into OpenAI's
error shape and the CLI prints it. Every state change is a conditional UPDATE, so it cannot race a
worker that is changing the same job.
"""

from __future__ import annotations

import importlib.util
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from tuneforge.errors import UserError
from tuneforge.jobs import files as job_files
from tuneforge.jobs.events import Messages, add_event
from tuneforge.jobs.naming import clean_suffix, new_job_id, now
from tuneforge.models.catalog import all_bases
from tuneforge.models.registry import lookup_model
from tuneforge.settings import Settings
from tuneforge.store.db import Database
from tuneforge.store.tables_jobs import Job

TERMINAL = ("succeeded", "failed", "cancelled")
METHODS = ("supervised", "dpo")  # method.type values tuneforge trains (reinforcement: not yet)


class JobRequestError(UserError):
    """A job request refused (unknown model, file or state); the API answers it in OpenAI's shape."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message, status=status, param=param, code=code)


@dataclass
class JobRequest:
    model: str
    training_file: str
    validation_file: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    suffix: str | None = None
    seed: int | None = None
    metadata: dict[str, str] | None = None
    integrations: list[Any] | None = None
    method: str = "supervised"
    training_type: str = "lora"  # lora | qlora | full (tuneforge's extension field)
    max_processes: int | None = None  # at most this many training processes (tuneforge's extension field)
    legacy: bool = False


def resolve_model(db: Database, settings: Settings, name: str, project: str) -> tuple[str, str | None]:
    """(base model name, fine-tuned model to continue from) for a job's `model`, or a 400."""
    parent = lookup_model(db, name, project)
    if parent is not None:
        return parent.base_model, parent.id
    # Registered names and aliases only: a hub id would be downloaded and a server path probed.
    bases = all_bases(settings)
    target = settings.resolve_alias(name)
    if target not in bases:
        known = sorted(set(bases) | set(settings.aliases))
        raise JobRequestError(
            400, f"Model {name[:200]} is not available for fine-tuning or does not exist. Use one of: "
                 f"{', '.join(known)}, or a fine-tuned model (ft:...) of yours. To fine-tune another "
                 "model, register it on the server first: `tuneforge models add NAME PATH`.",
            param="model", code="model_not_found")
    return bases[target].name, None


def _check_file(db: Database, settings: Settings, file_id: str | None, project: str, param: str) -> None:
    if file_id is None:
        return
    info = job_files.get_file(db, settings, file_id, project)
    if info is None:
        raise JobRequestError(400, f"invalid {param}: no file with id {file_id!r}. Upload it with "
                                   f"purpose 'fine-tune' (POST /v1/files) and pass the id it returns.",
                              param=param, code="invalid_file")
    if info.purpose != "fine-tune":
        raise JobRequestError(400, f"invalid {param}: file {file_id} has purpose {info.purpose!r}; "
                                   f"fine-tuning needs a file uploaded with purpose 'fine-tune'.",
                              param=param, code="invalid_file_purpose")


def _check_training_type(req: JobRequest) -> None:
    if req.training_type != "qlora":
        return
    if req.method == "dpo":
        raise JobRequestError(400, "training_type 'qlora' trains supervised jobs only; use 'lora' for a DPO "
                                   "job.", param="training_type", code="invalid_training_type")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise JobRequestError(400, "training_type 'qlora' needs bitsandbytes on this server (pip install "
                                   "'tuneforge[qlora]'); use 'lora' meanwhile.",
                              param="training_type", code="invalid_training_type")


def create_job(db: Database, settings: Settings, project: str, req: JobRequest) -> Job:
    if req.method not in METHODS:
        raise JobRequestError(
            400, f"method.type {str(req.method)[:40]!r} is not supported by this server; use 'supervised' "
                 "(chat or prompt/completion examples) or 'dpo' (preference pairs: input, preferred_output, "
                 "non_preferred_output).", param="method.type", code="unsupported_method")
    _check_training_type(req)
    base, init_from = resolve_model(db, settings, req.model, project)
    _check_file(db, settings, req.training_file, project, "training_file")
    _check_file(db, settings, req.validation_file, project, "validation_file")
    job_id, created = new_job_id(req.legacy), now()
    keys = ("n_epochs", "batch_size", "learning_rate_multiplier") + (("beta",) if req.method == "dpo" else ())
    hp = {k: req.hyperparameters.get(k, "auto") for k in keys}
    if req.legacy:
        hp["prompt_loss_weight"] = req.hyperparameters.get("prompt_loss_weight", 0.01)
    job = Job(
        id=job_id, project=project, legacy=req.legacy,
        model=req.model if req.legacy else (req.model if init_from else base),
        base_model=base, init_from=init_from, status="validating_files", created_at=created,
        created_ns=time.time_ns(),
        updated_at=created, training_file=req.training_file, validation_file=req.validation_file,
        hyperparameters=hp, method=req.method, training_type=req.training_type,
        max_processes=req.max_processes,
        suffix=clean_suffix(req.suffix, legacy=req.legacy), user_provided_suffix=req.suffix,
        seed=req.seed if req.seed is not None else secrets.randbelow(2**31 - 1),
        job_metadata=req.metadata, integrations=req.integrations, organization=settings.organization,
        result_files=[], attempts=0, resume=False,
    )
    msgs = Messages(req.legacy)
    with db.session() as session:
        session.add(job)
        session.flush()
        add_event(session, job_id, msgs.created(job_id), legacy=req.legacy)
        add_event(session, job_id, msgs.validating(req.training_file, req.validation_file), legacy=req.legacy)
    return job


def get_job(db: Database, job_id: str, project: str, *, legacy: bool | None = None) -> Job:
    with db.session() as session:
        job = session.get(Job, job_id)
    if job is None or job.project != project or (legacy is not None and job.legacy != legacy):
        what = "fine-tune" if legacy else "fine-tuning job"
        raise JobRequestError(404, f"No such {what}: {job_id}. List yours with GET "
                                   f"{'/v1/fine-tunes' if legacy else '/v1/fine_tuning/jobs'}.",
                              param="id", code="not_found" if not legacy else None)
    return job


def _transition(db: Database, job: Job, allowed: tuple[str, ...], values: dict[str, Any],
                event: str, verb: str) -> Job:
    """Move the job on if its status is still one of `allowed`; a 400 naming the status otherwise."""
    with db.session() as session:
        result = session.execute(update(Job).where(Job.id == job.id, Job.status.in_(allowed))
                                 .values(updated_at=now(), **values))
        if result.rowcount == 1:
            add_event(session, job.id, event, legacy=job.legacy)
    if result.rowcount != 1:
        current = get_job(db, job.id, job.project)
        raise JobRequestError(400, f"Job {job.id} is {current.status} and cannot be {verb}; only jobs that "
                                   f"are {', '.join(allowed)} can.", param="id", code="invalid_job_state")
    return get_job(db, job.id, job.project)


def cancel_job(db: Database, job_id: str, project: str, *, legacy: bool | None = None) -> Job:
    job = get_job(db, job_id, project, legacy=legacy)
    return _transition(db, job, ("validating_files", "queued", "running", "paused"),
                       {"status": "cancelled", "finished_at": now(), "estimated_finish": None},
                       Messages(job.legacy).cancelled(), "cancelled")


def pause_job(db: Database, job_id: str, project: str) -> Job:
    job = get_job(db, job_id, project)
    return _transition(db, job, ("queued", "running"), {"status": "paused", "estimated_finish": None},
                       Messages(job.legacy).paused(job.step), "paused")


def resume_job(db: Database, job_id: str, project: str) -> Job:
    job = get_job(db, job_id, project)
    # A job paused before it ever ran starts fresh; otherwise it continues from its last checkpoint.
    return _transition(db, job, ("paused",), {"status": "queued", "resume": job.started_at is not None},
                       "Fine-tuning job resumed by the user, moving job to queued state", "resumed")


def list_jobs(db: Database, project: str, *, legacy: bool) -> list[Job]:
    with db.session() as session:
        return list(session.scalars(select(Job).where(Job.project == project, Job.legacy == legacy)
                                    .order_by(Job.created_ns.desc(), Job.id)))
