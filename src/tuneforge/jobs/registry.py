"""The id a job's fine-tuned model gets. The models themselves are looked up in `models/registry.py`."""

from __future__ import annotations

from tuneforge.jobs.naming import clean_suffix, fine_tuned_model_id, legacy_model_id
from tuneforge.store.tables_jobs import Job


def final_model_id(job: Job) -> str:
    """The id the job's model gets when it succeeds (checkpoint ids extend it)."""
    if job.legacy:
        return legacy_model_id(job.model, job.organization, clean_suffix(job.suffix, legacy=True),
                               job.created_at)
    return fine_tuned_model_id(job.base_model, job.organization, job.suffix, job.id)
