"""Atomic claims (SQLite and PostgreSQL) and the takeover of jobs whose worker died."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import pytest

from tuneforge.jobs.queue import WorkerIdentity, claim_next, heartbeat
from tuneforge.store.db import Database
from tuneforge.store.tables_jobs import Job


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    database.init_schema()
    yield database
    database.dispose()


def _add_jobs(db: Database, n: int, status: str = "queued", **values) -> list[str]:
    ids = [f"ftjob-test{i:04d}" for i in range(n)]
    with db.session() as session:
        for i, job_id in enumerate(ids):
            session.add(
                Job(
                    id=job_id,
                    project="default",
                    model="tiny-llama",
                    base_model="tiny-llama",
                    status=status,
                    created_at=1000 + i,
                    updated_at=1000 + i,
                    training_file="file-x",
                    hyperparameters={},
                    seed=1,
                    organization="personal",
                    result_files=[],
                    attempts=0,
                    resume=False,
                    **values,
                )
            )
    return ids


def test_racing_workers_claim_each_job_exactly_once(db):
    ids = _add_jobs(db, 24)
    claims: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        me = WorkerIdentity.new()
        while (claim := claim_next(db, me)) is not None:
            with lock:
                claims.append(claim.job_id)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claims) == ids  # every job once, none twice
    with db.session() as session:
        assert {(j.status, j.attempts) for j in session.query(Job)} == {("running", 1)}


def test_oldest_job_is_claimed_first_and_validation_before_training(db):
    _add_jobs(db, 2)
    with db.session() as session:
        session.get(Job, "ftjob-test0001").status = "validating_files"
    first = claim_next(db, WorkerIdentity.new())
    second = claim_next(db, WorkerIdentity.new())
    assert (first.job_id, first.phase) == ("ftjob-test0001", "validate")
    assert (second.job_id, second.phase, second.resumed) == ("ftjob-test0000", "train", False)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_running_job_of_a_dead_local_worker_is_resumed_at_once(db):
    (job_id,) = _add_jobs(
        db,
        1,
        status="running",
        worker_id="gone",
        worker_host=socket.gethostname(),
        worker_pid=_dead_pid(),
        heartbeat_at=time.time(),
    )
    me = WorkerIdentity.new()
    claim = claim_next(db, me)
    assert claim is not None and claim.job_id == job_id and claim.resumed and claim.phase == "train"
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job.resume and job.worker_id == me.id and job.attempts == 1
    assert heartbeat(db, job_id, me) == "running"


def test_remote_worker_keeps_its_job_while_its_heartbeat_is_fresh(db):
    (job_id,) = _add_jobs(
        db,
        1,
        status="running",
        worker_id="other-host:1:abc",
        worker_host="other-host",
        worker_pid=1,
        heartbeat_at=time.time(),
    )
    assert claim_next(db, WorkerIdentity.new(), stale_after=60) is None
    with db.session() as session:
        session.get(Job, job_id).heartbeat_at = time.time() - 120
    me = WorkerIdentity.new()
    claim = claim_next(db, me, stale_after=60)
    assert claim is not None and claim.resumed
    # The old holder learns it lost the job at its next heartbeat, and stops its trainer.
    old = WorkerIdentity(id="other-host:1:abc", host="other-host", pid=1)
    assert heartbeat(db, job_id, old) is None


def test_terminal_and_paused_jobs_are_never_claimed(db):
    for status in ("succeeded", "failed", "cancelled", "paused"):
        _add_jobs(db, 1, status=status)
        assert claim_next(db, WorkerIdentity.new()) is None
        with db.session() as session:
            session.query(Job).delete()


def test_a_job_that_keeps_killing_its_worker_is_failed_not_resumed_forever(db):
    from tuneforge.jobs.queue import MAX_STARTS

    (job_id,) = _add_jobs(db, 1, status="running", worker_id="gone", worker_host=socket.gethostname(),
                          worker_pid=_dead_pid(), heartbeat_at=time.time())
    with db.session() as session:
        session.get(Job, job_id).attempts = MAX_STARTS  # its worker died after each of these starts
    assert claim_next(db, WorkerIdentity.new()) is None
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job.status == "failed" and job.worker_id is None
        assert job.error["code"] == "training_failed" and "worker stopped" in job.error["message"]
    assert claim_next(db, WorkerIdentity.new()) is None  # and it stays failed
