"""Cancel, pause and resume, with a worker thread training the tiny model for real."""

from __future__ import annotations

import os
import threading

import openai
import pytest
from jobkit import chat_rows, upload
from testkit import wait_for

from tuneforge.store.tables_jobs import Job


@pytest.fixture
def running_worker(inproc):
    thread = threading.Thread(target=inproc.worker.run_forever, daemon=True)
    thread.start()
    yield inproc
    inproc.worker.stop()
    thread.join(90)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _steps(client, job_id):
    return [
        e.data["step"] for e in client.fine_tuning.jobs.list_events(job_id, limit=100) if e.type == "metrics"
    ]


def _held(inproc, job_id) -> bool:
    with inproc.app.state.db.session() as session:
        return session.get(Job, job_id).worker_id is not None


def _resume_and_finish(client, job_id):
    assert client.fine_tuning.jobs.resume(job_id).status == "queued"
    done = wait_for(
        lambda: (j := client.fine_tuning.jobs.retrieve(job_id)).status in ("succeeded", "failed") and j,
        timeout=300,
        what="the resumed job to finish",
    )
    assert done.status == "succeeded", done.error
    return done


def test_pause_then_resume_continues_from_the_checkpoint(running_worker, tmp_path, job_settings):
    client = running_worker.client
    file_id = upload(client, chat_rows(20), tmp_path)
    job = client.fine_tuning.jobs.create(
        model="tiny-llama", training_file=file_id, hyperparameters={"n_epochs": 3, "batch_size": 1}
    )
    wait_for(
        lambda: (
            client.fine_tuning.jobs.checkpoints.list(job.id).data and max(_steps(client, job.id) or [0]) > 20
        ),
        timeout=240,
        what="a checkpoint and one more step",
    )
    paused = client.fine_tuning.jobs.pause(job.id)  # 60 steps: far from done
    assert paused.status == "paused"
    wait_for(lambda: not _held(running_worker, job.id), timeout=90, what="the trainer to stop")
    assert client.fine_tuning.jobs.retrieve(job.id).status == "paused"  # and nobody picks it up
    assert any(
        e.message.startswith("Fine-tuning job paused") for e in client.fine_tuning.jobs.list_events(job.id)
    )
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.pause(job.id)

    _resume_and_finish(client, job.id)
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    # The trainer saves a checkpoint where it stopped, so the resumed run loses no finished step.
    (resumed,) = [m for m in messages if m.startswith("Job resumed")]
    assert int(resumed.rsplit(" ", 1)[1]) > 20, resumed
    assert sorted(_steps(client, job.id)) == list(range(1, 61))


def test_a_pause_the_watcher_never_saw_still_lets_go_of_the_job(running_worker, tmp_path, monkeypatch):
    """The trainer can finish between two heartbeats, after the user paused: the job must end up paused
    and free (not held by a worker forever), and resuming it finishes it."""
    from tuneforge.jobs import runner

    monkeypatch.setattr(runner, "HEARTBEAT_SECONDS", 3600.0)  # the watcher beats once, at the start
    client = running_worker.client
    file_id = upload(client, chat_rows(12), tmp_path)
    job = client.fine_tuning.jobs.create(model="tiny-llama", training_file=file_id)
    wait_for(lambda: _steps(client, job.id), timeout=240, what="training to start")
    assert client.fine_tuning.jobs.pause(job.id).status == "paused"
    wait_for(lambda: not _held(running_worker, job.id), timeout=120, what="the worker to let go")
    assert client.fine_tuning.jobs.retrieve(job.id).status == "paused"
    done = _resume_and_finish(client, job.id)
    assert done.fine_tuned_model and client.models.retrieve(done.fine_tuned_model).id == done.fine_tuned_model


def test_cancel_a_running_job_stops_its_trainer(running_worker, tmp_path, job_settings):
    client = running_worker.client
    file_id = upload(client, chat_rows(12), tmp_path)
    job = client.fine_tuning.jobs.create(
        model="tiny-llama", training_file=file_id, hyperparameters={"n_epochs": 5}
    )
    wait_for(lambda: _steps(client, job.id), timeout=240, what="training to start")
    pid = int((job_settings.jobs_dir / job.id / "run.pid").read_text())
    cancelled = client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    wait_for(lambda: not _alive(pid), timeout=90, what="the trainer to exit")
    wait_for(lambda: not _held(running_worker, job.id), timeout=30, what="the worker to let go")
    final = client.fine_tuning.jobs.retrieve(job.id)
    assert final.status == "cancelled" and final.fine_tuned_model is None
    assert "Fine-tuning job cancelled" in [e.message for e in client.fine_tuning.jobs.list_events(job.id)]
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.cancel(job.id)
    assert "cancelled" in err.value.message


def test_cancel_before_any_worker_ran_it(inproc, tmp_path):
    file_id = upload(inproc.client, chat_rows(12), tmp_path)
    job = inproc.client.fine_tuning.jobs.create(model="tiny-llama", training_file=file_id)
    assert inproc.client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    assert inproc.work() == 0  # nothing left to do
    assert inproc.client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"


def test_unknown_job_is_a_404_in_openai_shape(inproc):
    with pytest.raises(openai.NotFoundError) as err:
        inproc.client.fine_tuning.jobs.retrieve("ftjob-nope")
    assert "ftjob-nope" in err.value.message and err.value.param == "id"
    for call in (
        inproc.client.fine_tuning.jobs.cancel,
        inproc.client.fine_tuning.jobs.list_events,
        inproc.client.fine_tuning.jobs.checkpoints.list,
    ):
        with pytest.raises(openai.NotFoundError):
            call("ftjob-nope")


def test_worker_shutdown_requeues_the_job_and_it_resumes(inproc, tmp_path):
    client = inproc.client
    file_id = upload(client, chat_rows(20), tmp_path)
    job = client.fine_tuning.jobs.create(
        model="tiny-llama", training_file=file_id, hyperparameters={"n_epochs": 3}
    )
    thread = threading.Thread(target=inproc.worker.run_forever, daemon=True)
    thread.start()
    wait_for(lambda: len(_steps(client, job.id)) >= 3, timeout=240, what="training to start")
    # 60 steps, far from done: stop as `tuneforge serve` or Ctrl-C on `tuneforge worker` does.
    inproc.worker.stop()
    thread.join(90)
    assert not thread.is_alive()
    interrupted = client.fine_tuning.jobs.retrieve(job.id)
    assert interrupted.status == "queued"
    assert any(
        "because its worker shut down" in e.message for e in client.fine_tuning.jobs.list_events(job.id)
    )

    from tuneforge.jobs.worker import Worker

    again = Worker(inproc.app.state.db, inproc.app.state.settings)
    while again.run_once():
        pass
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded", done.error
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    assert sum(m.startswith("Job resumed from its checkpoint at step") for m in messages) == 1
    assert sorted(_steps(client, job.id)) == list(range(1, 61))
