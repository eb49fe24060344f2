"""Two `tuneforge worker` processes on one PostgreSQL run 4 queued jobs, none of them twice."""

from __future__ import annotations

import re
from collections import Counter

import openai
from jobkit import chat_rows
from pg import _fresh_postgres_db
from sqlalchemy import select
from testkit import wait_for, write_jsonl

from tuneforge.store.db import Database
from tuneforge.store.tables_jobs import Job


def test_two_workers_share_one_postgres_queue(job_home, spawn, tmp_path, postgres_url):  # noqa: F811
    url = _fresh_postgres_db(postgres_url)
    server = spawn("serve", job_home, db_url=url, extra=("--no-worker",))
    workers = [spawn("worker", job_home, db_url=url, extra=("--poll-interval", "0.3")) for _ in range(2)]
    for w in workers:
        wait_for(lambda w=w: "waiting for jobs" in w.output() or w.proc.poll() is not None, timeout=180,
                 what="a worker to start")
        assert w.proc.poll() is None, w.output()
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    train = write_jsonl(tmp_path / "train.jsonl", chat_rows(12))
    file_id = client.files.create(file=train.open("rb"), purpose="fine-tune").id
    jobs = [
        client.fine_tuning.jobs.create(
            model="tiny-llama", training_file=file_id, suffix=f"w{i}", hyperparameters={"n_epochs": 1}
        ).id
        for i in range(4)
    ]

    def all_done():
        states = [client.fine_tuning.jobs.retrieve(j).status for j in jobs]
        return all(s in ("succeeded", "failed", "cancelled") for s in states) and states

    states = wait_for(all_done, timeout=400, what="4 jobs to finish")
    assert states == ["succeeded"] * 4, [w.output() for w in workers]

    runs = Counter()
    for w in workers:
        runs.update(re.findall(r"running (ftjob-\w+)", w.output()))
    assert sorted(runs) == sorted(jobs) and set(runs.values()) == {1}, runs  # each ran once, somewhere
    per_worker = [len(re.findall(r"running ftjob-", w.output())) for w in workers]
    assert all(n >= 1 for n in per_worker), per_worker  # and the work was shared
    for job_id in jobs:
        messages = [e.message for e in client.fine_tuning.jobs.list_events(job_id, limit=100)]
        assert messages.count("Fine-tuning job started") == 1 and not any("resumed" in m for m in messages)
    db = Database(url)
    with db.session() as session:
        assert {j.attempts for j in session.scalars(select(Job))} == {1}
    db.dispose()
    print(f"jobs per worker: {per_worker}")


def test_workers_started_together_on_an_empty_postgres_both_come_up(job_home, spawn, postgres_url):  # noqa: F811
    url = _fresh_postgres_db(postgres_url)  # no tables yet: both workers race to create them
    workers = [spawn("worker", job_home, db_url=url, extra=("--once",)) for _ in range(3)]
    for w in workers:
        assert w.proc.wait(120) == 0, w.output()
        assert "worker stopped after 0 training run(s)" in w.output()
