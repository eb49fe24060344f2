"""Turns the trainer's JSON lines (docs/internals.md) into job state, events, checkpoints and models.

Every write is guarded by "this worker still holds the job and it is still running", so a job the user
cancelled, or that another worker took over, is never overwritten by a late line.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tuneforge.jobs import files as job_files
from tuneforge.jobs.events import Messages, add_event, drop_metrics_after, metrics_rows, step_message
from tuneforge.jobs.naming import checkpoint_model_id, new_checkpoint_id, now
from tuneforge.jobs.queue import WorkerIdentity
from tuneforge.jobs.registry import final_model_id
from tuneforge.settings import Settings
from tuneforge.store.db import Database
from tuneforge.store.tables_jobs import Checkpoint, FineTunedModel, Job, JobEvent

log = logging.getLogger("tuneforge.jobs")

METRIC_KEYS = ("step", "total_steps", "train_loss", "train_mean_token_accuracy", "valid_loss",
               "valid_mean_token_accuracy", "full_valid_loss", "full_valid_mean_token_accuracy",
               # DPO jobs (training/dpo.py)
               "train_reward_accuracy", "train_reward_margin", "train_chosen_reward", "train_rejected_reward",
               "valid_reward_accuracy", "valid_reward_margin", "valid_chosen_reward", "valid_rejected_reward",
               "full_valid_reward_accuracy", "full_valid_reward_margin")
LEGACY_CSV = ("step", "elapsed_tokens", "elapsed_examples", "training_loss", "training_sequence_accuracy",
              "training_token_accuracy", "validation_loss", "validation_sequence_accuracy",
              "validation_token_accuracy")


class Outcome:
    """What the run ended with, as far as the lines told us."""

    def __init__(self) -> None:
        self.completed = False
        self.cancelled = False
        self.failed: tuple[str, str] | None = None  # (code, message)
        self.last_step: int | None = None


class ProgressRecorder:
    def __init__(self, db: Database, settings: Settings, job_id: str, worker: WorkerIdentity):
        self.db, self.settings, self.job_id, self.worker = db, settings, job_id, worker
        self.outcome = Outcome()
        self._result_file_id: str | None = None

    def _held_job(self, session: Session, running: bool = True) -> Job | None:
        """The job if this worker still holds it; with `running`, only while it is still running."""
        job = session.get(Job, self.job_id, with_for_update=self.db.engine.dialect.name == "postgresql")
        if job is None or job.worker_id != self.worker.id or (running and job.status != "running"):
            return None
        return job

    def handle(self, line: dict[str, Any]) -> None:
        kind = line.get("type")
        if kind == "cancelled":
            self.outcome.cancelled = True
            self.outcome.last_step = line.get("step", self.outcome.last_step)
            return
        if kind == "failed":
            self.outcome.failed = (str(line.get("code") or "training_failed"), str(line.get("message", "")))
            return
        if kind == "completed":
            self._store_results(line)
        handler = getattr(self, f"_on_{kind}", None)
        if handler is None:
            log.warning("job %s: ignoring trainer line of unknown type %r", self.job_id, kind)
            return
        with self.db.session() as session:
            # Progress made while a pause or cancel takes effect is still recorded (the trainer's stop
            # checkpoint includes those steps); only success needs the job to be running still.
            job = self._held_job(session, running=kind == "completed")
            if job is not None:
                handler(session, job, line)
                job.updated_at = now()

    def _on_started(self, session: Session, job: Job, line: dict[str, Any]) -> None:
        msgs = Messages(job.legacy)
        job.resolved_hyperparameters = dict(line.get("hyperparameters") or {})
        job.total_steps = line.get("total_steps")
        job.started_at = job.started_at or now()
        resumed_from = line.get("resumed_from_step")
        if resumed_from is not None or job.attempts > 1 or job.resume:
            drop_metrics_after(session, job.id, int(resumed_from or 0))
            add_event(session, job.id, msgs.resumed(resumed_from), legacy=job.legacy)
        else:
            add_event(session, job.id, msgs.started(), legacy=job.legacy)
        if int(line.get("processes") or 1) > 1:
            add_event(session, job.id, f"Training with {line['processes']} processes (data parallel)",
                      legacy=job.legacy)

    def _on_step(self, session: Session, job: Job, line: dict[str, Any]) -> None:
        data = {k: line[k] for k in METRIC_KEYS if line.get(k) is not None}
        for extra in ("epoch", "tokens_per_second", "elapsed_tokens", "elapsed_examples"):
            if line.get(extra) is not None:
                data[extra] = line[extra]
        self.outcome.last_step = job.step = int(line["step"])
        job.total_steps = line.get("total_steps", job.total_steps)
        if line.get("eta_seconds") is not None:
            job.estimated_finish = now() + int(line["eta_seconds"])
        add_event(session, job.id, step_message(line), legacy=job.legacy, type="metrics", data=data,
                  step=job.step)

    def _on_epoch_end(self, session: Session, job: Job, line: dict[str, Any]) -> None:
        full = {k: line[k] for k in ("full_valid_loss", "full_valid_mean_token_accuracy",
                                     "full_valid_reward_accuracy", "full_valid_reward_margin",
                                     "full_valid_by_language")  # the last: a tuneforge extension
                if line.get(k) is not None}
        if full:  # OpenAI reports the full validation loss on the epoch's last step line
            stmt = select(JobEvent).where(JobEvent.job_id == job.id, JobEvent.type == "metrics")
            last = session.scalars(stmt.order_by(JobEvent.seq.desc()).limit(1)).first()
            if last is not None:
                last.data = {**(last.data or {}), **full}
                last.message = step_message(last.data)
        n_epochs = (job.resolved_hyperparameters or {}).get("n_epochs")
        if job.legacy:
            add_event(session, job.id, Messages(True).epoch(int(line["epoch"]), n_epochs), legacy=True)

    def _on_checkpoint(self, session: Session, job: Job, line: dict[str, Any]) -> None:
        step = int(line["step"])
        known = select(Checkpoint.id).where(Checkpoint.job_id == job.id, Checkpoint.step_number == step)
        if line.get("restored") and session.scalars(known).first() is not None:
            return  # a resumed trainer lists the checkpoints on disk: only those never reported are news
        model_id = checkpoint_model_id(final_model_id(job), step)
        metrics = {"step": step, **{k: v for k, v in (line.get("metrics") or {}).items()
                                    if v is not None and k in METRIC_KEYS}}  # OpenAI's flat metrics
        session.execute(delete(Checkpoint).where(Checkpoint.job_id == job.id, Checkpoint.step_number == step))
        session.add(Checkpoint(id=new_checkpoint_id(), job_id=job.id, created_at=now(), step_number=step,
                               fine_tuned_model_checkpoint=model_id, path=str(line["path"]), metrics=metrics))
        session.merge(FineTunedModel(id=model_id, project=job.project, job_id=job.id,
                                     base_model=job.base_model, path=str(line["path"]),
                                     method=job.training_type, kind="checkpoint", step=step, created=now(),
                                     owned_by=job.organization))
        self._prune_checkpoints(session, job)
        add_event(session, job.id, Messages(job.legacy).checkpoint(step, model_id), legacy=job.legacy)

    def _prune_checkpoints(self, session: Session, job: Job) -> None:
        """The trainer keeps the newest few checkpoint folders; forget the ones it removed."""
        for ckpt in session.scalars(select(Checkpoint).where(Checkpoint.job_id == job.id)).all():
            if not Path(ckpt.path).exists():
                session.delete(ckpt)
                session.execute(delete(FineTunedModel).where(
                    FineTunedModel.id == ckpt.fine_tuned_model_checkpoint))

    def _on_completed(self, session: Session, job: Job, line: dict[str, Any]) -> None:
        msgs = Messages(job.legacy)
        model_id = final_model_id(job)
        final_path = Path(str(line.get("output_dir") or "")) / "final"
        if not final_path.is_dir():
            final_path = Path(str(line.get("output_dir")))
        session.merge(FineTunedModel(id=model_id, project=job.project, job_id=job.id,
                                     base_model=job.base_model, path=str(final_path),
                                     method=job.training_type, kind="final", step=job.step,
                                     created=now(), owned_by=job.organization))
        add_event(session, job.id, msgs.model_created(model_id), legacy=job.legacy)
        if not job.result_files and self._result_file_id:
            job.result_files = [self._result_file_id]
            if job.legacy:
                add_event(session, job.id, msgs.result_file(self._result_file_id), legacy=True)
        # The newest checkpoint is the final model itself, as OpenAI reports it.
        newest = session.scalars(select(Checkpoint).where(Checkpoint.job_id == job.id)
                                 .order_by(Checkpoint.step_number.desc()).limit(1)).first()
        if newest is not None and newest.step_number == job.step:
            newest.fine_tuned_model_checkpoint = model_id
        job.fine_tuned_model = model_id
        job.trained_tokens = int(line.get("trained_tokens") or 0)
        job.status = "succeeded"
        job.finished_at = now()
        job.estimated_finish = None
        job.error = None
        add_event(session, job.id, msgs.succeeded(), legacy=job.legacy)
        self.outcome.completed = True

    def _store_results(self, line: dict[str, Any]) -> None:
        """Save the results CSV as a file first: its own transaction, so SQLite never sees two writers."""
        self._result_file_id = None
        with self.db.session() as session:
            job = self._held_job(session)
            if job is None or job.result_files:
                return
            data = self._results_csv(session, job, line.get("results_csv"))
            legacy, project = job.legacy, job.project
        name = "compiled_results.csv" if legacy else "step_metrics.csv"
        self._result_file_id = job_files.store_result_file(self.db, self.settings, project, name, data)

    def _results_csv(self, session: Session, job: Job, path: str | None) -> bytes:
        """One row per step, even when a resumed run repeated some steps (the last run's row wins)."""
        if job.legacy or not path or not Path(path).is_file():
            return _legacy_csv(metrics_rows(session, job.id)) if job.legacy else _csv_from_events(
                metrics_rows(session, job.id))
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, [])
            rows: dict[int, list[str]] = {}
            for row in reader:
                if row and row[0].strip().isdigit():
                    rows[int(row[0])] = row
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows[k] for k in sorted(rows))
        return out.getvalue().encode()


def _num(value: Any) -> str:
    return "" if value is None else f"{value:.5f}" if isinstance(value, float) else str(value)


def _csv_from_events(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"])
    for r in rows:
        writer.writerow([r.get("step"), _num(r.get("train_loss")), _num(r.get("train_mean_token_accuracy")),
                         _num(r.get("valid_loss")), _num(r.get("valid_mean_token_accuracy"))])
    return out.getvalue().encode()


def _legacy_csv(rows: list[dict[str, Any]]) -> bytes:
    """The 0.x API's `compiled_results.csv` columns (sequence accuracy is not measured: left empty)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LEGACY_CSV)
    for r in rows:
        writer.writerow([r.get("step"), r.get("elapsed_tokens", ""), r.get("elapsed_examples", ""),
                         _num(r.get("train_loss")), "", _num(r.get("train_mean_token_accuracy")),
                         _num(r.get("valid_loss")), "", _num(r.get("valid_mean_token_accuracy"))])
    return out.getvalue().encode()
