"""Job events in OpenAI's wording (reference §6.3), and in the 0.x API's wording for legacy jobs (§11.1)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tuneforge.jobs.naming import new_event_id, now
from tuneforge.store.tables_jobs import JobEvent


def add_event(session: Session, job_id: str, message: str, *, legacy: bool = False, level: str = "info",
              type: str = "message", data: dict[str, Any] | None = None, step: int | None = None) -> None:
    session.add(JobEvent(id=new_event_id(legacy), job_id=job_id, created_at=now(), level=level,
                         message=message, type=type, data=data if data is not None else {}, step=step))


def drop_metrics_after(session: Session, job_id: str, step: int) -> None:
    """A resumed run repeats the steps after its checkpoint: forget the first run's metrics for them, so
    the job keeps exactly one metrics event per step."""
    session.execute(delete(JobEvent).where(JobEvent.job_id == job_id, JobEvent.type == "metrics",
                                           JobEvent.step > step))


def metrics_rows(session: Session, job_id: str) -> list[dict[str, Any]]:
    """The job's per-step metrics, oldest first (used for the legacy results CSV)."""
    rows = session.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.type == "metrics")
                           .order_by(JobEvent.seq)).all()
    return [dict(row.data or {}) for row in rows]


def _fmt(value: float) -> str:
    return f"{value:.2f}"


def step_message(line: dict[str, Any]) -> str:
    """`Step 10/120: training loss=1.23, validation loss=1.40` as OpenAI prints it (2 decimals)."""
    parts = [f"training loss={_fmt(line['train_loss'])}"]
    if line.get("valid_loss") is not None:
        parts.append(f"validation loss={_fmt(line['valid_loss'])}")
    if line.get("full_valid_loss") is not None:
        parts.append(f"full validation loss={_fmt(line['full_valid_loss'])}")
    return f"Step {line['step']}/{line['total_steps']}: " + ", ".join(parts)


class Messages:
    """The messages one job emits; legacy jobs speak the 0.x API's dialect."""

    def __init__(self, legacy: bool):
        self.legacy = legacy

    def created(self, job_id: str) -> str:
        return f"Created fine-tune: {job_id}" if self.legacy else f"Created fine-tuning job: {job_id}"

    def validating(self, training_file: str, validation_file: str | None) -> str:
        if validation_file:
            return f"Validating training file: {training_file} and validation file: {validation_file}"
        return f"Validating training file: {training_file}"

    def queued(self, position: int) -> str:
        if self.legacy:
            return f"Fine-tune enqueued. Queue number: {position}"
        return "Files validated, moving job to queued state"

    def started(self) -> str:
        return "Fine-tune started" if self.legacy else "Fine-tuning job started"

    def resumed(self, step: int | None) -> str:
        where = f"from its checkpoint at step {step}" if step else "from the beginning (no checkpoint yet)"
        return f"Job resumed {where}"

    def epoch(self, epoch: int, n_epochs: int | None) -> str:
        return f"Completed epoch {epoch}/{n_epochs}" if n_epochs else f"Completed epoch {epoch}"

    def checkpoint(self, step: int, model_id: str) -> str:
        return f"Checkpoint created at step {step} with Snapshot ID: {model_id}"

    def model_created(self, model_id: str) -> str:
        return f"Uploaded model: {model_id}" if self.legacy else f"New fine-tuned model created: {model_id}"

    def result_file(self, file_id: str) -> str:
        return f"Uploaded result file: {file_id}"

    def succeeded(self) -> str:
        return "Fine-tune succeeded" if self.legacy else "The job has successfully completed"

    def cancelled(self) -> str:
        return "Fine-tune cancelled" if self.legacy else "Fine-tuning job cancelled"

    def paused(self, step: int | None) -> str:
        return f"Fine-tuning job paused at step {step}" if step else "Fine-tuning job paused"

    def failed(self, message: str) -> str:
        return f"Fine-tune failed: {message}" if self.legacy else f"Fine-tuning job failed: {message}"
