"""Jobs trained by two data-parallel ranks (torchrun, gloo on the CPU) through the real server: a rank
killed with -9 mid-run ends that attempt cleanly and the job resumes from its last checkpoint, finishing
once with one set of results; a cancel stops every rank at the same step."""

from __future__ import annotations

import csv
import io
import os
import signal
from pathlib import Path

import openai
import pytest
from jobkit import chat_rows
from testkit import wait_for, write_jsonl


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _rank_pids(launcher: int) -> dict[int, int]:
    """{rank: pid} of the ranks torchrun (pid `launcher`) started."""
    ranks = {}
    for pid in _children(launcher):
        try:
            env = dict(v.split("=", 1) for v in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
                       if "=" in v)
        except OSError:
            continue
        if "RANK" in env:
            ranks[int(env["RANK"])] = pid
    return ranks


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")


@pytest.fixture
def two_rank_server(job_home, spawn, monkeypatch):
    monkeypatch.setenv("TUNEFORGE_TRAIN_PROCESSES", "2")
    server = spawn("serve", job_home)
    return server, openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)


def _finished(client, job_id: str):
    job = client.fine_tuning.jobs.retrieve(job_id)
    return job if job.status in ("succeeded", "failed", "cancelled") else None


def test_a_rank_killed_mid_run_resumes_from_the_checkpoint_and_finishes_once(two_rank_server, job_home,
                                                                             tmp_path):
    server, client = two_rank_server
    file_id = client.files.create(file=write_jsonl(tmp_path / "t.jsonl", chat_rows(12)).open("rb"),
                                  purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(model="tiny-llama", training_file=file_id,
                                         hyperparameters={"n_epochs": 6, "batch_size": 2},
                                         extra_body={"max_processes": 2})
    assert job.model_extra["max_processes"] == 2
    folder = job_home / "jobs" / job.id
    wait_for(lambda: (folder / "run.pid").is_file(), timeout=120, what="the trainer to start")
    launcher = int((folder / "run.pid").read_text())
    ranks = wait_for(lambda: len(r := _rank_pids(launcher)) == 2 and r, timeout=120, what="two ranks")
    # Freeze rank 1 once the first checkpoint is on disk, so the run is surely mid-way when it dies.
    wait_for(lambda: (folder / "output" / "checkpoints" / "step-6").is_dir(), timeout=240,
             what="the first checkpoint")
    os.kill(ranks[1], signal.SIGSTOP)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "running"
    os.kill(ranks[1], signal.SIGKILL)
    # The attempt ends: no rank of the first launch is left behind.
    wait_for(lambda: not any(_alive(p) for p in (launcher, *ranks.values())), timeout=90,
             what="every process of the first attempt to exit")

    done = wait_for(lambda: _finished(client, job.id), timeout=300, what="the retried job to finish")
    assert done.status == "succeeded", (done.error, server.output()[-3000:])
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    messages = [e.message for e in events]
    lost = [m for m in messages if m.startswith("A training process of this job stopped")]
    assert len(lost) == 1, messages
    assert messages.count("Training with 2 processes (data parallel)") == 2
    assert any(m.startswith("Job resumed from its checkpoint at step ") for m in messages)
    assert messages.count("The job has successfully completed") == 1
    steps = [e.data["step"] for e in events if e.type == "metrics"]
    assert sorted(steps) == list(range(1, 37))  # one metrics event per step: 6 steps x 6 epochs
    assert len(done.result_files) == 1
    rows = list(csv.reader(io.StringIO(client.files.content(done.result_files[0]).text)))
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 37))
    reply = client.chat.completions.create(model=done.fine_tuned_model, max_tokens=4,
                                           messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].message.content is not None


def test_cancelling_a_two_rank_job_stops_every_rank(two_rank_server, job_home, tmp_path):
    server, client = two_rank_server
    file_id = client.files.create(file=write_jsonl(tmp_path / "t.jsonl", chat_rows(12)).open("rb"),
                                  purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(model="tiny-llama", training_file=file_id,
                                         hyperparameters={"n_epochs": 50, "batch_size": 1})
    folder = job_home / "jobs" / job.id
    wait_for(lambda: any(e.type == "metrics" for e in client.fine_tuning.jobs.list_events(job.id, limit=5)),
             timeout=240, what="the first step")
    launcher = int((folder / "run.pid").read_text())
    ranks = _rank_pids(launcher)
    assert len(ranks) == 2
    client.fine_tuning.jobs.cancel(job.id)
    wait_for(lambda: not any(_alive(p) for p in (launcher, *ranks.values())), timeout=90,
             what="every rank to stop")
    assert client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
    log = (folder / "train.log").read_text("utf-8", errors="replace")
    assert "Traceback" not in log, log[-3000:]
