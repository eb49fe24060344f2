"""Tables for fine-tuning jobs, their events and checkpoints, and the fine-tuned models they produce.

One `jobs` table serves both APIs: `legacy` marks jobs created through the 0.x `/v1/fine-tunes` family,
which differ only in ids, event wording and object shape. Events carry an integer `seq` so lists are
ordered by insertion (newest-first for the API) even when several share a second.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tuneforge.store.db import Base

# BigInteger autoincrement is not an alias of ROWID on SQLite; plain Integer there keeps it one.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")


class Job(Base):
    __tablename__ = "fine_tuning_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project: Mapped[str] = mapped_column(String(128), index=True)
    legacy: Mapped[bool] = mapped_column(Boolean, default=False)
    model: Mapped[str] = mapped_column(String(512))  # what the job reports as its base (`model` field)
    base_model: Mapped[str] = mapped_column(String(512))  # the resolved base the weights come from
    init_from: Mapped[str | None] = mapped_column(String(512), nullable=True)  # ft: model continued from
    status: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # Nanosecond creation time: orders lists and the queue when several jobs share a second.
    created_ns: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    finished_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    training_file: Mapped[str] = mapped_column(String(64))
    validation_file: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # As requested ("auto" or numbers) and as resolved by the trainer once it starts.
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    resolved_hyperparameters: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    method: Mapped[str] = mapped_column(String(32), default="supervised")
    training_type: Mapped[str] = mapped_column(String(16), default="lora")  # lora | qlora | full
    # The job's cap on training processes (None: as many as its worker has; docs/scale.md).
    max_processes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    suffix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_provided_suffix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    seed: Mapped[int] = mapped_column(BigInteger)
    job_metadata: Mapped[dict[str, str] | None] = mapped_column("metadata", JSON, nullable=True)
    integrations: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    organization: Mapped[str] = mapped_column(String(128))
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    fine_tuned_model: Mapped[str | None] = mapped_column(String(512), nullable=True)
    trained_tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    result_files: Mapped[list[str]] = mapped_column(JSON, default=list)
    estimated_finish: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Progress, for `Step n/N` and the web app.
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    total_steps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Queue bookkeeping: who holds the job and whether they are alive.
    worker_id: Mapped[str | None] = mapped_column(String(256), nullable=True, index=True)
    worker_host: Mapped[str | None] = mapped_column(String(256), nullable=True)
    worker_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heartbeat_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # how many times a worker started it
    resume: Mapped[bool] = mapped_column(Boolean, default=False)  # next run continues from a checkpoint


class JobEvent(Base):
    __tablename__ = "fine_tuning_job_events"
    __table_args__ = (Index("ix_job_events_job_seq", "job_id", "seq"),)

    seq: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("fine_tuning_jobs.id", ondelete="CASCADE"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    level: Mapped[str] = mapped_column(String(8), default="info")
    message: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(16), default="message")  # message | metrics
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)  # metrics events: their step


class Checkpoint(Base):
    __tablename__ = "fine_tuning_checkpoints"
    __table_args__ = (Index("ix_checkpoints_job_step", "job_id", "step_number"),)

    seq: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("fine_tuning_jobs.id", ondelete="CASCADE"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    step_number: Mapped[int] = mapped_column(Integer)
    fine_tuned_model_checkpoint: Mapped[str] = mapped_column(String(512))
    path: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class FineTunedModel(Base):
    """A servable model a job produced: the final model or one of its checkpoints."""

    __tablename__ = "fine_tuned_models"

    id: Mapped[str] = mapped_column(String(512), primary_key=True)
    project: Mapped[str] = mapped_column(String(128), index=True)
    job_id: Mapped[str] = mapped_column(String(64), index=True)
    base_model: Mapped[str] = mapped_column(String(512))
    path: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(16), default="lora")
    kind: Mapped[str] = mapped_column(String(16), default="final")  # final | checkpoint
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created: Mapped[int] = mapped_column(BigInteger)
    owned_by: Mapped[str] = mapped_column(String(128))
