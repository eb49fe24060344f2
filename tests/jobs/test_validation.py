"""Create-time 400s and asynchronous file validation, as OpenAI reports them (reference §5.4, §12.4)."""

from __future__ import annotations

import openai
import pytest
from jobkit import chat_rows, upload


def test_unknown_model_is_a_400_naming_the_param(inproc, tmp_path):
    file_id = upload(inproc.client, chat_rows(), tmp_path)
    with pytest.raises(openai.BadRequestError) as err:
        inproc.client.fine_tuning.jobs.create(model="gpt-9", training_file=file_id)
    assert err.value.param == "model"
    assert err.value.code == "model_not_found"
    assert "gpt-9" in err.value.message and "tiny-llama" in err.value.message


@pytest.mark.parametrize("model", ["someorg/some-model", "/etc", "/no/such/dir", "../../tmp", "x" * 300])
def test_hub_ids_and_server_paths_are_model_not_found_saying_how_to_register(inproc, tmp_path, model):
    file_id = upload(inproc.client, chat_rows(), tmp_path)
    with pytest.raises(openai.BadRequestError) as err:
        inproc.client.fine_tuning.jobs.create(model=model, training_file=file_id)
    assert err.value.param == "model" and err.value.code == "model_not_found"
    assert "tuneforge models add NAME PATH" in err.value.message
    # The same answer whether the path exists or not: no file-existence oracle.
    assert "/etc" not in err.value.message.replace(model[:200], "") and "tiny-llama" in err.value.message


def test_unknown_or_wrong_purpose_file_is_a_400(inproc, tmp_path):
    with pytest.raises(openai.BadRequestError) as err:
        inproc.client.fine_tuning.jobs.create(model="tiny-llama", training_file="file-doesnotexist")
    assert err.value.param == "training_file" and "file-doesnotexist" in err.value.message
    path = tmp_path / "notes.jsonl"
    path.write_text('{"a": 1}\n')
    other = inproc.client.files.create(file=path.open("rb"), purpose="batch").id
    with pytest.raises(openai.BadRequestError) as err:
        inproc.client.fine_tuning.jobs.create(model="tiny-llama", training_file=other)
    assert err.value.param == "training_file" and "purpose" in err.value.message
    good = upload(inproc.client, chat_rows(), tmp_path)
    with pytest.raises(openai.BadRequestError) as err:
        inproc.client.fine_tuning.jobs.create(
            model="tiny-llama", training_file=good, validation_file="file-nope"
        )
    assert err.value.param == "validation_file"


@pytest.mark.parametrize(
    "hp,param",
    [
        ({"n_epochs": 0}, "n_epochs"),
        ({"batch_size": 1000}, "batch_size"),
        ({"learning_rate_multiplier": -1}, "learning_rate_multiplier"),
    ],
)
def test_bad_hyperparameters_are_400s_with_param(inproc, tmp_path, hp, param):
    file_id = upload(inproc.client, chat_rows(), tmp_path)
    with pytest.raises(openai.BadRequestError) as err:
        inproc.client.fine_tuning.jobs.create(model="tiny-llama", training_file=file_id, hyperparameters=hp)
    assert param in (err.value.param or "")


def test_unsupported_method_is_refused_with_a_message(inproc, tmp_path):
    file_id = upload(inproc.client, chat_rows(), tmp_path)
    with pytest.raises(openai.BadRequestError) as err:
        inproc.client.fine_tuning.jobs.create(
            model="tiny-llama", training_file=file_id, method={"type": "reinforcement"}
        )
    assert err.value.param == "method.type"


def test_too_few_examples_fails_with_invalid_n_examples(inproc, tmp_path):
    file_id = upload(inproc.client, chat_rows(3), tmp_path)
    job = inproc.client.fine_tuning.jobs.create(model="tiny-llama", training_file=file_id)
    assert job.status == "validating_files"
    assert job.hyperparameters.n_epochs == "auto"
    inproc.work()
    job = inproc.client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "failed"
    assert job.error.code == "invalid_n_examples" and job.error.param == "training_file"
    assert "3" in job.error.message and "10" in job.error.message
    assert job.finished_at is not None and job.fine_tuned_model is None


def test_bad_line_fails_with_invalid_training_file_naming_the_line(inproc, tmp_path):
    rows = chat_rows(12)
    rows[6] = {"messages": [{"content": "no role here"}]}
    file_id = upload(inproc.client, rows, tmp_path)
    job = inproc.client.fine_tuning.jobs.create(model="tiny-llama", training_file=file_id)
    inproc.work()
    job = inproc.client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "failed" and job.error.code == "invalid_training_file"
    assert "7" in job.error.message  # the 7th line
    messages = [e.message for e in inproc.client.fine_tuning.jobs.list_events(job.id)]
    assert any(m.startswith("Fine-tuning job failed") for m in messages)


def test_bad_validation_file_fails_with_invalid_validation_file(inproc, tmp_path):
    train = upload(inproc.client, chat_rows(12), tmp_path)
    bad = tmp_path / "valid.jsonl"
    bad.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
        "this is not json\n"
    )
    valid = inproc.client.files.create(file=bad.open("rb"), purpose="fine-tune").id
    job = inproc.client.fine_tuning.jobs.create(
        model="tiny-llama", training_file=train, validation_file=valid
    )
    inproc.work()
    job = inproc.client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "failed"
    assert job.error.code == "invalid_validation_file" and job.error.param == "validation_file"
    assert "2" in job.error.message


def test_valid_files_move_the_job_to_queued(inproc, tmp_path):
    file_id = upload(inproc.client, chat_rows(12), tmp_path)
    job = inproc.client.fine_tuning.jobs.create(model="tiny-llama", training_file=file_id)
    from tuneforge.jobs.queue import claim_next

    claim = claim_next(inproc.worker.db, inproc.worker.identity)
    assert claim is not None and claim.phase == "validate"
    inproc.worker.validate(claim)
    job = inproc.client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "queued"
    events = [e.message for e in inproc.client.fine_tuning.jobs.list_events(job.id)]
    assert events[0] == "Files validated, moving job to queued state"  # newest first
    assert events[-1] == f"Created fine-tuning job: {job.id}"
    assert events[-2] == f"Validating training file: {file_id}"


def test_job_list_pages_newest_first_with_after(inproc, tmp_path):
    file_id = upload(inproc.client, chat_rows(12), tmp_path)
    ids = [inproc.client.fine_tuning.jobs.create(model="davinci", training_file=file_id).id for _ in range(3)]
    first = inproc.client.fine_tuning.jobs.list(limit=2)
    assert first.object == "list" and first.has_more is True
    assert [j.id for j in first.data] == ids[::-1][:2]
    second = inproc.client.fine_tuning.jobs.list(limit=2, after=first.data[-1].id)
    assert [j.id for j in second.data] == [ids[0]] and second.has_more is False
    assert [j.id for j in inproc.client.fine_tuning.jobs.list(limit=1)] == ids[::-1]  # auto-pagination
    assert all(j.model == "smollm2-135m-instruct" for j in first.data)  # the alias, resolved
    with pytest.raises(openai.BadRequestError) as err:
        inproc.client.fine_tuning.jobs.list(after="ftjob-unknown")
    assert err.value.param == "after"


@pytest.mark.parametrize(("extra", "param"), [
    ({"integrations": [{"type": "wandb", "wandb": {"project": "p"}}] * 5000}, "integrations"),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
    ({"metadata": {"k" * 65: "v"}}, "metadata"),
    ({"metadata": {"k": "v" * 513}}, "metadata"),
    ({"metadata": {"k": 5}}, "metadata"),
])
def test_oversized_lists_and_maps_are_400s_naming_the_field(inproc, tmp_path, extra, param):
    file_id = upload(inproc.client, chat_rows(), tmp_path)
    body = {"model": "tiny-llama", "training_file": file_id, **extra}
    r = inproc.http.post("/v1/fine_tuning/jobs", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"].startswith(param)
    assert inproc.client.fine_tuning.jobs.list().data == []
