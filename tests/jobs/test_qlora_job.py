"""A QLoRA job through the API (`training_type: "qlora"`, tuneforge's extension): it trains, its model
answers in chat like a LoRA fine-tune, and what cannot work is refused when the job is created."""

from __future__ import annotations

import openai
import pytest
from jobkit import chat_rows, upload

pytest.importorskip("bitsandbytes", reason="QLoRA needs the qlora extra (bitsandbytes)")


def test_a_qlora_job_trains_and_its_model_answers(inproc, tmp_path):
    client = inproc.client
    file_id = upload(client, chat_rows(12), tmp_path)
    job = client.fine_tuning.jobs.create(model="tiny-llama", training_file=file_id,
                                         hyperparameters={"n_epochs": 1, "batch_size": 4},
                                         extra_body={"training_type": "qlora"})
    assert job.model_extra["training_type"] == "qlora"
    inproc.work()
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded", done.error
    reply = client.chat.completions.create(model=done.fine_tuned_model, max_tokens=4,
                                           messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].message.content is not None
    assert client.models.retrieve(done.fine_tuned_model).id == done.fine_tuned_model


def test_qlora_for_a_dpo_job_is_refused_at_creation(inproc, tmp_path):
    client = inproc.client
    file_id = upload(client, chat_rows(12), tmp_path)
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(model="tiny-llama", training_file=file_id,
                                       method={"type": "dpo", "dpo": {}},
                                       extra_body={"training_type": "qlora"})
    assert err.value.body["param"] == "training_type"
    assert "supervised jobs only" in err.value.body["message"]
