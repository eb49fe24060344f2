"""The job worker: claims work from the queue and does it, one job at a time.

Work comes in three kinds, in this order: a job whose worker died (resumed from its last checkpoint),
a job whose files need validating, and a queued job to train. Any number of workers (threads in
`tuneforge serve`, `tuneforge worker` processes, other machines on one PostgreSQL) can share a queue.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import func, select

from tuneforge.jobs import files as job_files
from tuneforge.jobs.events import Messages, add_event
from tuneforge.jobs.naming import now
from tuneforge.jobs.queue import Claim, WorkerIdentity, claim_next
from tuneforge.jobs.runner import JobRun
from tuneforge.settings import Settings
from tuneforge.store.db import Database
from tuneforge.store.tables_jobs import Job

log = logging.getLogger("tuneforge.jobs")


class Worker:
    def __init__(self, db: Database, settings: Settings, *, poll_interval: float = 0.5,
                 stale_after: float = 60.0):
        self.db, self.settings = db, settings
        self.poll_interval, self.stale_after = poll_interval, stale_after
        self.identity = WorkerIdentity.new()
        self.stopping = threading.Event()
        self.jobs_run = 0

    def run_forever(self) -> None:
        log.info("worker %s: waiting for jobs", self.identity.id)
        while not self.stopping.is_set():
            try:
                did_work = self.run_once()
            except Exception:  # a broken job must not kill the worker; it is logged and failed
                log.exception("worker %s: unexpected error", self.identity.id)
                did_work = False
            if not did_work:
                self.stopping.wait(self.poll_interval)

    def stop(self) -> None:
        self.stopping.set()

    def run_once(self) -> bool:
        """Claim and do one piece of work; False when there was none."""
        claim = claim_next(self.db, self.identity, self.stale_after)
        if claim is None:
            return False
        if claim.phase == "validate":
            self._validate_or_fail(claim)
        else:
            self.train(claim)
        return True

    def _validate_or_fail(self, claim: Claim) -> None:
        """Validation is deterministic: a crash would crash again on every claim, so it fails the job
        now (the traceback goes to the log) instead of leaving it in `validating_files` forever."""
        try:
            self.validate(claim)
        except Exception:
            log.exception("job %s: validating its files crashed", claim.job_id)
            self._fail(claim.job_id, "file_validation_failed",
                       "The job failed because tuneforge could not validate its files (an internal error; "
                       "the server log has the details). Check the file with `tuneforge prepare -f FILE` "
                       "and report the problem if the file looks right.", "training_file")

    def train(self, claim: Claim) -> None:
        log.info("worker %s: running %s%s", self.identity.id, claim.job_id,
                 " (resumed)" if claim.resumed else "")
        self.jobs_run += 1
        try:
            JobRun(self.db, self.settings, claim.job_id, self.identity, self.stopping).run()
        except Exception as exc:
            log.exception("job %s: could not run", claim.job_id)
            self._fail(claim.job_id, "training_failed", f"The job could not start: {exc}", None)

    def validate(self, claim: Claim) -> None:
        """Check the files with the data layer; `failed` with OpenAI's error codes, or `queued`."""
        with self.db.session() as session:
            job = session.get(Job, claim.job_id)
            assert job is not None
            checks = [("training_file", job.training_file)]
            if job.validation_file:
                checks.append(("validation_file", job.validation_file))
            project, legacy, method = job.project, job.legacy, job.method or "supervised"
        for param, file_id in checks:
            problem = self._check_file(file_id, project, param, legacy, method)
            if problem is not None:
                self._fail(claim.job_id, problem[0], problem[1], param)
                return
        with self.db.session() as session:
            job = session.get(Job, claim.job_id)
            if job is None or job.worker_id != self.identity.id or job.status != "validating_files":
                return  # cancelled meanwhile
            ahead = select(func.count()).select_from(Job).where(Job.status == "queued")
            position = session.scalar(ahead) or 0
            job.status, job.updated_at = "queued", now()
            job.worker_id = job.worker_pid = job.heartbeat_at = None
            msgs = Messages(legacy)
            if legacy:
                add_event(session, job.id, "Fine-tune costs $0.00", legacy=True)
            add_event(session, job.id, msgs.queued(position), legacy=legacy)

    def _check_file(self, file_id: str, project: str, param: str, legacy: bool,
                    method: str = "supervised") -> tuple[str, str] | None:
        code = "invalid_training_file" if param == "training_file" else "invalid_validation_file"
        info = job_files.get_file(self.db, self.settings, file_id, project)
        if info is None or not info.path.is_file():
            return code, f"The job failed because the file {file_id} ({param}) no longer exists."
        from tuneforge.data.limits import min_examples
        from tuneforge.data.validate import validate_file  # heavy imports: only when validating

        purpose = "training" if param == "training_file" else "validation"
        report = validate_file(info.path, min_examples=min_examples(purpose, legacy), method=method)
        return report.openai_error(param)

    def _fail(self, job_id: str, code: str, message: str, param: str | None) -> None:
        with self.db.session() as session:
            job = session.get(Job, job_id)
            if job is None or job.worker_id != self.identity.id or job.status not in ("validating_files",
                                                                                      "running"):
                return
            job.status, job.finished_at, job.updated_at = "failed", now(), now()
            job.error = {"code": code, "message": message, "param": param}
            job.worker_id = job.worker_pid = job.heartbeat_at = None
            add_event(session, job.id, Messages(job.legacy).failed(message), legacy=job.legacy, level="error")


class WorkerThread:
    """A worker inside `tuneforge serve`, started and stopped with the app."""

    def __init__(self, worker: Worker):
        self.worker = worker
        self.thread = threading.Thread(target=worker.run_forever, name="tuneforge-worker", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 90.0) -> None:
        self.worker.stop()  # a running trainer gets SIGTERM and the job goes back to the queue
        self.thread.join(timeout)

