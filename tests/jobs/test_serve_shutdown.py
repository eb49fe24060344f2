"""SIGTERM to `tuneforge serve` with a job training and a client following its events: the server ends,
and so does every process it started; the job is not lost (a restart resumes it)."""

from __future__ import annotations

import signal
import threading

import httpx
import openai
import psutil
from jobkit import chat_rows
from testkit import wait_for, write_jsonl


def test_sigterm_ends_the_server_and_its_trainer_even_with_a_stream_open(job_home, spawn, tmp_path):
    server = spawn("serve", job_home)
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    train = write_jsonl(tmp_path / "train.jsonl", chat_rows(12))
    file_id = client.files.create(file=train.open("rb"), purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(model="tiny-llama", training_file=file_id,
                                         hyperparameters={"n_epochs": 50, "batch_size": 1})
    pid_file = job_home / "jobs" / job.id / "run.pid"
    wait_for(lambda: client.fine_tuning.jobs.retrieve(job.id).status == "running" and pid_file.is_file(),
             timeout=240, what="the job to start training")
    trainer = psutil.Process(int(pid_file.read_text()))

    def follow() -> None:  # what `fine_tunes.follow` holds open: a legacy event stream
        try:
            with httpx.stream("GET", f"{server.base_url}/fine-tunes/{job.id}/events?stream=true",
                              timeout=120) as r:
                for _ in r.iter_lines():
                    pass
        except httpx.HTTPError:
            pass

    threading.Thread(target=follow, daemon=True).start()
    started = psutil.Process(server.proc.pid).children(recursive=True)
    assert trainer in started
    server.proc.send_signal(signal.SIGTERM)  # the server alone, as a service manager would
    server.proc.wait(90)

    def all_gone() -> bool:
        return not [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    wait_for(all_gone, timeout=30, what=f"every process the server started to end: {started}")

    restarted = spawn("serve", job_home)
    client = openai.OpenAI(base_url=restarted.base_url, api_key="x", max_retries=0)
    status = client.fine_tuning.jobs.retrieve(job.id).status
    assert status in ("queued", "running", "validating_files"), status  # picked up again, not lost
