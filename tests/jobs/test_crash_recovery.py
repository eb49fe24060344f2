"""kill -9 of the server mid-training, then a restart: the job finishes once, with one set of results."""

from __future__ import annotations

import csv
import io
import os
import signal

import openai
from jobkit import chat_rows
from testkit import wait_for, write_jsonl


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_kill_9_mid_training_then_restart_resumes_from_checkpoint(job_home, spawn, tmp_path):
    server = spawn("serve", job_home)
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    train = write_jsonl(tmp_path / "train.jsonl", chat_rows(12))
    file_id = client.files.create(file=train.open("rb"), purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(
        model="tiny-llama", training_file=file_id, hyperparameters={"n_epochs": 4, "batch_size": 1}
    )

    def past_first_checkpoint():
        ckpts = client.fine_tuning.jobs.checkpoints.list(job.id).data
        if not ckpts:
            return None
        steps = [
            e.data["step"]
            for e in client.fine_tuning.jobs.list_events(job.id, limit=3).data
            if e.type == "metrics"
        ]
        return steps and max(steps) > ckpts[0].step_number and ckpts[0].step_number

    checkpoint_step = wait_for(past_first_checkpoint, timeout=240, what="training past the first checkpoint")
    trainer_pid = int((job_home / "jobs" / job.id / "run.pid").read_text())
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)
    # The orphaned trainer dies with its parent; nothing trains this job until someone resumes it.
    wait_for(lambda: not _pid_alive(trainer_pid), timeout=20, what="the old trainer to die")

    restarted = spawn("serve", job_home)
    client = openai.OpenAI(base_url=restarted.base_url, api_key="x", max_retries=0)
    done = wait_for(
        lambda: (
            (j := client.fine_tuning.jobs.retrieve(job.id)).status in ("succeeded", "failed", "cancelled")
            and j
        ),
        timeout=300,
        what="the resumed job to finish",
    )
    assert done.status == "succeeded", (done.error, restarted.output())

    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    messages = [e.message for e in events]
    assert messages.count("Fine-tuning job started") == 1
    resumed = [m for m in messages if m.startswith("Job resumed")]
    # The newest checkpoint when the server died: the one seen, or the next epoch's if it landed meanwhile.
    assert len(resumed) == 1 and resumed[0].startswith("Job resumed from its checkpoint at step ")
    assert int(resumed[0].rsplit(" ", 1)[1]) in (checkpoint_step, checkpoint_step + 12), resumed
    assert messages.count("The job has successfully completed") == 1
    steps = [e.data["step"] for e in events if e.type == "metrics"]
    assert sorted(steps) == list(range(1, 49))  # one metrics event per step: 12 examples x 4 epochs

    # One checkpoint per epoch, the last 3 kept (the 4th epoch's is the final model itself).
    ckpts = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in ckpts] == [48, 36, 24]
    assert ckpts[0].fine_tuned_model_checkpoint == done.fine_tuned_model
    assert len(done.result_files) == 1
    results = [f for f in client.files.list() if f.purpose == "fine-tune-results"]
    assert [f.id for f in results] == done.result_files  # one results file, not one per run
    rows = list(csv.reader(io.StringIO(client.files.content(done.result_files[0]).text)))
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 49))
    assert client.models.retrieve(done.fine_tuned_model).id == done.fine_tuned_model
