"""The target side of a job: find what an earlier run migrated, re-create a job, keep its source id
answering (an alias), and follow the new jobs until they end."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

import openai

from tuneforge.migrate.errors import MigrateError, describe
from tuneforge.migrate.source import SourceJob
from tuneforge.models.methods import METHODS

MIGRATED_FROM = "migrated_from"  # the source job id (fixed interface: tests outside rely on it)
MIGRATED_MODEL = "migrated_model"  # the source's fine-tuned model id, which becomes an alias
MAX_METADATA = 16  # OpenAI's cap on metadata pairs
TERMINAL = ("succeeded", "failed", "cancelled")


def migrated_jobs(target: openai.OpenAI) -> dict[str, dict]:
    """Target jobs made by earlier runs, by source job id (newest wins if a source job was made twice)."""
    out: dict[str, dict] = {}
    for job in target.fine_tuning.jobs.list(limit=100):
        source_id = (job.metadata or {}).get(MIGRATED_FROM)
        if source_id and source_id not in out:
            out[source_id] = job.model_dump()
    return out


def create_body(job: SourceJob, base: str, training: str, validation: str | None) -> dict:
    """The create request that repeats `job` on the target: same method, hyperparameters ("auto" stays
    "auto"), suffix, seed and metadata, plus where it came from."""
    metadata = {**job.metadata, MIGRATED_FROM: job.id}
    if job.fine_tuned_model:
        metadata[MIGRATED_MODEL] = job.fine_tuned_model[:512]
    if len(metadata) > MAX_METADATA:
        raise MigrateError(f"it has {len(job.metadata)} metadata pairs; with {MIGRATED_FROM} and "
                           f"{MIGRATED_MODEL} that is over the cap of {MAX_METADATA}")
    body: dict = {"model": base, "training_file": training, "metadata": metadata,
                  "method": {"type": job.method, job.method: {"hyperparameters": job.hyperparameters}}}
    if validation:
        body["validation_file"] = validation
    if job.suffix:
        body["suffix"] = job.suffix[:64]
    if isinstance(job.seed, int):
        body["seed"] = job.seed
    return body


def create_job(target: openai.OpenAI, job: SourceJob, body: dict) -> dict:
    extra = {"training_type": job.training_type} if job.training_type in METHODS else None
    try:
        return target.fine_tuning.jobs.create(**body, extra_body=extra).model_dump()
    except openai.BadRequestError as exc:
        if (exc.param or "").startswith("method"):
            raise MigrateError(f"method {job.method!r} is not supported by the target: {describe(exc)}") \
                from None
        raise MigrateError(f"the target refused the job: {describe(exc)}") from None
    except openai.APIError as exc:
        raise MigrateError(f"creating the job on the target failed: {describe(exc)}") from None


def keep_source_id(target: openai.OpenAI, alias: str, job_id: str) -> None:
    """Make the source's model id answer for the new job's model (idempotent; a clash raises)."""
    try:
        target.put(f"/models/{quote(alias, safe=':@')}", body={"job": job_id}, cast_to=object)
    except openai.APIError as exc:
        raise MigrateError(f"the source id {alias} cannot answer on the target: {describe(exc)}") from None


def follow(target: openai.OpenAI, job_ids: list[str], say: Callable[[str], None],
           poll: float = 2.0, seen: Callable[[dict], None] | None = None) -> dict[str, dict]:
    """Poll the jobs until each ends, saying each status change (and showing each poll to `seen`);
    their last objects by id."""
    last: dict[str, dict] = {}
    pending = list(job_ids)
    while pending:
        for job_id in list(pending):
            try:
                job = target.fine_tuning.jobs.retrieve(job_id).model_dump()
            except openai.APIError as exc:
                raise MigrateError(f"following job {job_id} on the target failed: {describe(exc)}") \
                    from None
            if job["status"] != (last.get(job_id) or {}).get("status"):
                model = f" -> {job['fine_tuned_model']}" if job.get("fine_tuned_model") else ""
                say(f"  {job_id}: {job['status']}{model}")
            last[job_id] = job
            if seen is not None:
                seen(job)
            if job["status"] in TERMINAL:
                pending.remove(job_id)
        if pending:
            time.sleep(poll)
    return last
