"""The job queue: atomic claims that are safe across worker threads, processes and machines.

A claim is a conditional UPDATE that only succeeds while the row still looks the way the claimer saw it
(status, holder, heartbeat). On PostgreSQL the candidate row is first locked with
`SELECT ... FOR UPDATE SKIP LOCKED`, so competing workers skip each other's rows instead of waiting; on
SQLite, whose writers are serialised, the conditional UPDATE alone decides (rowcount 1 = ours).

A running job belongs to the worker whose id is in `worker_id` and which keeps `heartbeat_at` fresh. It
is *stale* (its worker died: crash, kill -9, power loss) when the heartbeat is older than `stale_after`
seconds, or at once when the worker was on this host and its process is gone. Stale jobs are claimed
again with `resume=True`, so they continue from their last checkpoint instead of starting over.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from tuneforge.jobs.events import Messages, add_event
from tuneforge.store.db import Database
from tuneforge.store.tables_jobs import Job

HOST = socket.gethostname()
ACTIVE = ("validating_files", "running")


@dataclass(frozen=True)
class WorkerIdentity:
    id: str
    host: str
    pid: int

    @classmethod
    def new(cls) -> WorkerIdentity:
        return cls(id=f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}", host=HOST, pid=os.getpid())


@dataclass(frozen=True)
class Claim:
    job_id: str
    phase: str  # "validate" | "train"
    resumed: bool  # taken over from a dead worker (or resumed after a pause/shutdown)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


# Every start counts (pauses and resumes too), so the bound is generous: only a job that keeps killing its
# worker reaches it.
MAX_STARTS = 10


def is_stale(job: Job, stale_after: float, now: float | None = None) -> bool:
    """Whether the worker holding `job` is gone."""
    if job.worker_id is None:
        return True
    now = time.time() if now is None else now
    if job.heartbeat_at is None or now - job.heartbeat_at > stale_after:
        return True
    return job.worker_host == HOST and job.worker_pid is not None and not _pid_alive(job.worker_pid)


def _is_postgres(db: Database) -> bool:
    return db.engine.dialect.name == "postgresql"


def _try_claim(db: Database, job_id: str, guard: ColumnElement[bool], values: dict) -> bool:
    """Set `values` on the job iff `guard` still holds; True when this caller won."""
    with db.session() as session:
        if _is_postgres(db):
            locked = session.scalars(
                select(Job.id).where(Job.id == job_id, guard).with_for_update(skip_locked=True)
            ).first()
            if locked is None:
                return False
        result = session.execute(update(Job).where(Job.id == job_id, guard).values(**values))
        return result.rowcount == 1


def claim_next(db: Database, worker: WorkerIdentity, stale_after: float = 60.0) -> Claim | None:
    """Claim the oldest piece of work: a dead worker's job first, then validation, then training."""
    now = time.time()
    held = {"worker_id": worker.id, "worker_host": worker.host, "worker_pid": worker.pid,
            "heartbeat_at": now}
    with db.session() as session:
        candidates = session.execute(
            select(Job.id, Job.status, Job.worker_id, Job.heartbeat_at, Job.worker_host, Job.worker_pid,
                   Job.resume, Job.attempts)
            .where(or_(Job.status.in_(ACTIVE), Job.status == "queued"))
            .order_by(Job.created_ns, Job.id)
        ).all()
    # Stale active jobs first (they were already promised to the user), then oldest first.
    ordered = sorted(candidates, key=lambda r: (r.status == "queued", r.status == "validating_files"))
    for row in ordered:
        probe = Job(worker_id=row.worker_id, heartbeat_at=row.heartbeat_at, worker_host=row.worker_host,
                    worker_pid=row.worker_pid)
        # A queued job can still be held briefly: paused and resumed while its trainer was stopping.
        if row.worker_id is not None and not is_stale(probe, stale_after, now):
            continue
        holder = Job.worker_id.is_(None) if row.worker_id is None else Job.worker_id == row.worker_id
        beat = (Job.heartbeat_at.is_(None) if row.heartbeat_at is None
                else Job.heartbeat_at == row.heartbeat_at)
        guard = and_(Job.status == row.status, holder, beat)
        if row.status == "queued":
            if _try_claim(db, row.id, guard, {**held, "status": "running", "attempts": Job.attempts + 1}):
                return Claim(row.id, "train", resumed=bool(row.resume))
        elif row.status == "validating_files":
            if _try_claim(db, row.id, guard, held):
                return Claim(row.id, "validate", resumed=False)
        elif (row.attempts or 0) >= MAX_STARTS:
            _give_up(db, row.id, guard, row.attempts)
        elif _try_claim(db, row.id, guard, {**held, "resume": True, "attempts": Job.attempts + 1}):
            return Claim(row.id, "train", resumed=True)
    return None


def _give_up(db: Database, job_id: str, guard: ColumnElement[bool], starts: int) -> None:
    """A job whose worker died again after MAX_STARTS starts is failed, not resumed once more: whatever
    kills its worker (memory, a crash in the trainer's host process) would kill the next one too."""
    message = (f"The job was started {starts} times and its worker stopped each time without finishing "
               f"it (out of memory or a crash). It is failed so it does not take down more workers; check "
               f"the server's memory and log, then create it again (a smaller batch_size needs less memory).")
    values = {"status": "failed", "finished_at": int(time.time()), "updated_at": int(time.time()),
              "worker_id": None, "worker_pid": None, "heartbeat_at": None,
              "error": {"code": "training_failed", "message": message, "param": None}}
    if _try_claim(db, job_id, guard, values):
        with db.session() as session:
            legacy = session.get(Job, job_id).legacy
            add_event(session, job_id, Messages(legacy).failed(message), legacy=legacy, level="error")


def heartbeat(db: Database, job_id: str, worker: WorkerIdentity) -> str | None:
    """Refresh our hold on the job; returns its status, or None when another worker now owns it."""
    with db.session() as session:
        result = session.execute(
            update(Job).where(Job.id == job_id, Job.worker_id == worker.id).values(heartbeat_at=time.time())
        )
        if result.rowcount != 1:
            return None
        return session.scalars(select(Job.status).where(Job.id == job_id)).one()


def release(db: Database, job_id: str, worker: WorkerIdentity, **values) -> bool:
    """Let go of the job (optionally changing fields), only if we still hold it."""
    with db.session() as session:
        result = session.execute(
            update(Job).where(Job.id == job_id, Job.worker_id == worker.id)
            .values(worker_id=None, worker_pid=None, heartbeat_at=None, **values)
        )
        return result.rowcount == 1
