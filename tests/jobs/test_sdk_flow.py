"""The whole fine-tuning flow with the current `openai` SDK against a real `tuneforge serve` process."""

from __future__ import annotations

import csv
import io
import re

import openai
import pytest
from jobkit import chat_rows
from testkit import wait_for, write_jsonl

FT_ID = re.compile(r"^ft:tiny-llama:personal:support:[A-Za-z0-9]{8}$")


def test_upload_create_follow_checkpoints_results_models_delete(job_home, spawn, tmp_path):
    server = spawn("serve", job_home)
    client = openai.OpenAI(base_url=server.base_url, api_key="anything", max_retries=0)

    train = write_jsonl(tmp_path / "train.jsonl", chat_rows(12))
    valid = write_jsonl(tmp_path / "valid.jsonl", chat_rows(4))
    train_id = client.files.create(file=train.open("rb"), purpose="fine-tune").id
    valid_id = client.files.create(file=valid.open("rb"), purpose="fine-tune").id

    job = client.fine_tuning.jobs.create(
        model="tiny-llama",
        training_file=train_id,
        validation_file=valid_id,
        suffix="support",
        seed=7,
        metadata={"team": "support"},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
    )
    assert job.status == "validating_files" and job.id.startswith("ftjob-")
    assert job.hyperparameters.n_epochs == 2 and job.hyperparameters.batch_size == "auto"
    assert job.seed == 7 and job.metadata == {"team": "support"} and job.result_files == []

    done = wait_for(
        lambda: (
            (j := client.fine_tuning.jobs.retrieve(job.id)).status in ("succeeded", "failed", "cancelled")
            and j
        ),
        timeout=300,
        what="the job to finish",
    )
    assert done.status == "succeeded", (done.error, server.output())
    assert FT_ID.match(done.fine_tuned_model), done.fine_tuned_model
    assert isinstance(done.hyperparameters.batch_size, int)  # "auto" resolved once running
    assert isinstance(done.hyperparameters.learning_rate_multiplier, float)
    assert done.method.supervised.hyperparameters.n_epochs == 2
    assert done.trained_tokens > 0 and done.finished_at >= done.created_at
    assert len(done.result_files) == 1

    # Auto-pagination over small pages must follow `after` to the end, newest first, with no repeats.
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=5))
    assert len({e.id for e in events}) == len(events)
    assert [e.created_at for e in events] == sorted((e.created_at for e in events), reverse=True)
    messages = [e.message for e in reversed(events)]
    assert messages[0] == f"Created fine-tuning job: {job.id}"
    assert messages[1] == f"Validating training file: {train_id} and validation file: {valid_id}"
    assert "Fine-tuning job started" in messages
    assert messages[-2] == f"New fine-tuned model created: {done.fine_tuned_model}"
    assert messages[-1] == "The job has successfully completed"
    metrics = [e for e in events if e.type == "metrics"]
    total = metrics[0].data["total_steps"]
    assert sorted(e.data["step"] for e in metrics) == list(range(1, total + 1))
    assert re.match(r"^Step \d+/\d+: training loss=\d+\.\d\d", metrics[0].message)
    assert {"step", "train_loss", "train_mean_token_accuracy"} <= set(metrics[0].data)
    assert any(e.data.get("valid_loss") is not None for e in metrics)
    assert any("validation loss=" in e.message for e in metrics)

    ckpts = client.fine_tuning.jobs.checkpoints.list(job.id)
    assert ckpts.has_more is False and ckpts.first_id == ckpts.data[0].id
    steps = [c.step_number for c in ckpts.data]
    assert steps == sorted(steps, reverse=True) and steps[0] == total
    assert ckpts.data[0].fine_tuned_model_checkpoint == done.fine_tuned_model  # newest = the final model
    older = ckpts.data[1].fine_tuned_model_checkpoint
    assert older == f"{done.fine_tuned_model}:ckpt-step-{steps[1]}"
    assert ckpts.data[0].metrics.train_loss is not None

    results = client.files.retrieve(done.result_files[0])
    assert results.purpose == "fine-tune-results"
    rows = list(csv.reader(io.StringIO(client.files.content(results.id).text)))
    assert rows[0][:5] == ["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, total + 1))

    listed = {m.id: m for m in client.models.list()}
    assert done.fine_tuned_model in listed and older in listed
    assert {"smollm2-135m-instruct", "davinci", "gpt-4o-mini", "tiny-llama"} <= set(listed)
    model = client.models.retrieve(done.fine_tuned_model)  # ':' in the path
    assert model.id == done.fine_tuned_model and model.object == "model" and model.created > 0
    assert client.models.retrieve(older).id == older

    deleted = client.models.delete(done.fine_tuned_model)
    assert deleted.deleted is True and deleted.id == done.fine_tuned_model
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve(done.fine_tuned_model)
    assert err.value.code == "model_not_found"
    assert done.fine_tuned_model not in {m.id for m in client.models.list()}
    assert client.models.retrieve(older).id == older  # checkpoints outlive the final model, as at OpenAI

    page = client.fine_tuning.jobs.list(limit=1)
    assert page.data[0].id == job.id and page.has_more is False
    assert [j.id for j in client.fine_tuning.jobs.list(metadata={"team": "support"})] == [job.id]
    assert list(client.fine_tuning.jobs.list(metadata={"team": "sales"})) == []
