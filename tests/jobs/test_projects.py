"""With API keys, a project sees only its own jobs, events, checkpoints and models (404 for others')."""

from __future__ import annotations

import openai
import pytest
from jobkit import chat_rows, upload

from tuneforge.store.keys import KeyStore
from tuneforge.store.tables_jobs import FineTunedModel


def test_jobs_and_models_are_scoped_to_the_key_s_project(inproc, tmp_path):
    keys = KeyStore(inproc.app.state.db)
    _, alpha_key = keys.create("alpha")
    _, beta_key = keys.create("beta")

    def client(key: str) -> openai.OpenAI:
        return openai.OpenAI(
            base_url="http://127.0.0.1/v1", api_key=key, http_client=inproc.http, max_retries=0
        )

    alpha, beta = client(alpha_key), client(beta_key)
    job = alpha.fine_tuning.jobs.create(
        model="tiny-llama", training_file=upload(alpha, chat_rows(), tmp_path)
    )
    with pytest.raises(openai.BadRequestError):  # beta cannot train on alpha's file either
        beta.fine_tuning.jobs.create(model="tiny-llama", training_file=job.training_file)
    for call in (
        beta.fine_tuning.jobs.retrieve,
        beta.fine_tuning.jobs.cancel,
        beta.fine_tuning.jobs.pause,
        beta.fine_tuning.jobs.list_events,
        beta.fine_tuning.jobs.checkpoints.list,
    ):
        with pytest.raises(openai.NotFoundError):
            call(job.id)
    assert beta.fine_tuning.jobs.list().data == []
    assert [j.id for j in alpha.fine_tuning.jobs.list()] == [job.id]
    with pytest.raises(openai.AuthenticationError):
        client("sk-wrong").fine_tuning.jobs.list()

    with inproc.app.state.db.session() as session:
        session.add(
            FineTunedModel(
                id="ft:tiny-llama:personal::alpha123",
                project="alpha",
                job_id=job.id,
                base_model="tiny-llama",
                path=str(tmp_path),
                method="lora",
                kind="final",
                created=1700000000,
                owned_by="personal",
            )
        )
    assert alpha.models.retrieve("ft:tiny-llama:personal::alpha123").id == "ft:tiny-llama:personal::alpha123"
    with pytest.raises(openai.NotFoundError):
        beta.models.retrieve("ft:tiny-llama:personal::alpha123")
    with pytest.raises(openai.NotFoundError):
        beta.models.delete("ft:tiny-llama:personal::alpha123")
    assert "ft:tiny-llama:personal::alpha123" not in {m.id for m in beta.models.list()}
    with pytest.raises(openai.BadRequestError):  # nor continue training from it
        beta.fine_tuning.jobs.create(
            model="ft:tiny-llama:personal::alpha123",
            training_file=upload(beta, chat_rows(), tmp_path, "b.jsonl"),
        )
