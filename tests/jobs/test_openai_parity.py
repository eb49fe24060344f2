"""OpenAI parity of the jobs API through the real `openai` SDK: the jobs list's metadata filter,
checkpoint permissions (sharing a checkpoint with another project) and `metrics` events."""

from __future__ import annotations

import openai
import pytest
from jobkit import chat_rows, upload

from tuneforge.store.keys import KeyStore

# Query strings the jobs list refuses (400, naming the parameter), never a 500.
BAD_FILTERS = [
    ([("metadata[", "x")], "metadata["),
    ([("metadata[]", "x")], "metadata[]"),
    ([("metadata[a][b]", "x")], "metadata[a][b]"),
    ([("metadata[team]", "x" * 513)], "metadata[team]"),
    ([("metadata", "yes")], "metadata"),
    ([("metadata", "null"), ("metadata[team]", "a")], "metadata"),
    ([(f"metadata[k{i}]", "v") for i in range(17)], "metadata"),
    ([("metadata[team]", "a"), ("after", "ftjob-nope")], "after"),
]


def _clients(inproc, *projects: str) -> list[openai.OpenAI]:
    keys = KeyStore(inproc.app.state.db)
    return [openai.OpenAI(base_url="http://127.0.0.1/v1", api_key=keys.create(p)[1], http_client=inproc.http,
                          max_retries=0) for p in projects]


def _error(resp, status: int) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    return err


def test_jobs_list_filters_by_metadata_with_cursors_and_projects(inproc, tmp_path):
    alpha, beta = _clients(inproc, "alpha", "beta")
    file_id = upload(alpha, chat_rows(), tmp_path)

    def create(metadata):
        return alpha.fine_tuning.jobs.create(model="tiny-llama", training_file=file_id, metadata=metadata).id

    prod_a, plain_a, team_b, bare = (create({"team": "a", "env": "prod"}), create({"team": "a"}),
                                     create({"team": "b"}), create(None))
    beta_file = upload(beta, chat_rows(), tmp_path, "b.jsonl")
    beta.fine_tuning.jobs.create(model="tiny-llama", training_file=beta_file, metadata={"team": "a"})

    def ids(client=alpha, **kw) -> list[str]:
        return [j.id for j in client.fine_tuning.jobs.list(**kw)]  # auto-paginates

    assert ids(metadata={"team": "a"}) == [plain_a, prod_a]  # newest first, this project's only
    assert ids(metadata={"team": "a", "env": "prod"}) == [prod_a]  # every pair must match
    assert ids(metadata={"team": "c"}) == []
    assert ids(extra_query={"metadata": "null"}) == [bare]
    assert ids() == [bare, team_b, plain_a, prod_a]
    # Pages of one follow the cursor through the filtered list without repeats.
    first = alpha.fine_tuning.jobs.list(metadata={"team": "a"}, limit=1)
    assert [j.id for j in first.data] == [plain_a] and first.has_more
    assert ids(metadata={"team": "a"}, limit=1) == [plain_a, prod_a]
    # A cursor that the filter leaves out still places the page; oldest-first works too.
    assert ids(metadata={"team": "a"}, after=team_b) == [plain_a, prod_a]
    assert ids(metadata={"team": "a"}, extra_query={"order": "asc"}) == [prod_a, plain_a]
    assert [j.metadata for j in beta.fine_tuning.jobs.list(metadata={"team": "a"})] == [{"team": "a"}]

    headers = {"Authorization": f"Bearer {alpha.api_key}"}
    for query, param in BAD_FILTERS:
        err = _error(inproc.http.get("/v1/fine_tuning/jobs", params=query, headers=headers), 400)
        assert err["param"] == param and err["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        alpha.fine_tuning.jobs.list(metadata={"k" * 65: "v"})


@pytest.mark.filterwarnings("ignore:Retrieve is deprecated:DeprecationWarning")  # one call of the old API
def test_checkpoint_permissions_share_a_checkpoint_and_metrics_events(inproc, tmp_path):
    alpha, beta, gamma = _clients(inproc, "alpha", "beta", "gamma")
    job = alpha.fine_tuning.jobs.create(
        model="tiny-llama", training_file=upload(alpha, chat_rows(10), tmp_path),
        validation_file=upload(alpha, chat_rows(2), tmp_path, "valid.jsonl"),
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 5}}})
    inproc.work()
    done = alpha.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded", done.error

    # Metrics events, as OpenAI sends them: type "metrics" and a data dict with its keys.
    events = list(alpha.fine_tuning.jobs.list_events(job.id))
    metrics = [e for e in events if e.type == "metrics"]
    assert [e.data["step"] for e in reversed(metrics)] == [1, 2, 3, 4]  # 10 rows / 5, 2 epochs
    for e in metrics:
        assert e.object == "fine_tuning.job.event" and e.level == "info"
        assert {"step", "total_steps", "train_loss", "train_mean_token_accuracy"} <= set(e.data)
        assert e.data["total_steps"] == 4 and 0 <= e.data["train_mean_token_accuracy"] <= 1
        assert e.message.startswith(f"Step {e.data['step']}/4: training loss=")
    assert any({"valid_loss", "valid_mean_token_accuracy"} <= set(e.data) for e in metrics)
    assert [e.data["step"] for e in metrics if "full_valid_loss" in e.data] == [4, 2]  # each epoch's end
    assert all(e.type == "message" for e in events if e not in metrics)

    ckpts = alpha.fine_tuning.jobs.checkpoints.list(job.id).data
    ckpt = ckpts[1].fine_tuned_model_checkpoint
    assert ckpt == f"{done.fine_tuned_model}:ckpt-step-2"
    hello = [{"role": "user", "content": "Where is my order?"}]

    def chat(client):
        return client.chat.completions.create(model=ckpt, messages=hello, max_tokens=3, temperature=0)

    perms = alpha.fine_tuning.checkpoints.permissions
    with pytest.raises(openai.NotFoundError):  # not shared yet
        chat(beta)
    assert ckpt not in {m.id for m in beta.models.list()}

    created = perms.create(ckpt, project_ids=["beta"]).data
    assert [(p.object, p.project_id) for p in created] == [("checkpoint.permission", "beta")]
    grant = created[0]
    assert grant.id.startswith("cp_") and grant.created_at > 0
    assert perms.create(ckpt, project_ids=["beta"]).data[0].id == grant.id  # granting twice: one grant

    # beta may now use the checkpoint (chat, /v1/models), but not manage, delete or see other ones.
    reply = chat(beta)  # the one generation of this test
    assert reply.model == ckpt and reply.usage.completion_tokens == 3
    assert ckpt in {m.id for m in beta.models.list()}
    assert beta.models.retrieve(ckpt).id == ckpt
    assert done.fine_tuned_model not in {m.id for m in beta.models.list()}
    with pytest.raises(openai.NotFoundError):
        beta.models.delete(ckpt)
    with pytest.raises(openai.NotFoundError):
        beta.fine_tuning.checkpoints.permissions.list(ckpt)
    with pytest.raises(openai.NotFoundError):
        beta.fine_tuning.checkpoints.permissions.create(ckpt, project_ids=["gamma"])
    with pytest.raises(openai.NotFoundError):
        chat(gamma)

    second = perms.create(ckpt, project_ids=["gamma"]).data[0]
    listed = perms.retrieve(ckpt)  # the SDK's older call: one page with first_id/last_id
    assert [p.id for p in listed.data] == [second.id, grant.id] and listed.has_more is False
    assert listed.first_id == second.id and listed.last_id == grant.id
    page = perms.list(ckpt, limit=1, order="ascending")
    assert [p.id for p in page.data] == [grant.id] and page.has_more
    assert [p.id for p in perms.list(ckpt, limit=1, order="ascending")] == [grant.id, second.id]  # pages on
    assert [p.project_id for p in perms.list(ckpt, project_id="gamma")] == ["gamma"]

    headers = {"Authorization": f"Bearer {alpha.api_key}"}
    url = f"/v1/fine_tuning/checkpoints/{ckpt}/permissions"
    for body, param in (({"project_ids": []}, "project_ids"),
                        ({"project_ids": ["no-such"]}, "project_ids[0]"),
                        ({"project_ids": ["beta", "alpha"]}, "project_ids[1]"),
                        ({"project_ids": ["bad name!"]}, "project_ids[0]")):
        assert _error(inproc.http.post(url, json=body, headers=headers), 400)["param"] == param
    assert _error(inproc.http.post(url, json={}, headers=headers), 400)["param"] == "project_ids"
    missing = f"/v1/fine_tuning/checkpoints/{done.fine_tuned_model}:ckpt-step-99/permissions"
    assert _error(inproc.http.get(missing, headers=headers), 404)["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        perms.delete("cp_nope", fine_tuned_model_checkpoint=ckpt)

    gone = perms.delete(grant.id, fine_tuned_model_checkpoint=ckpt)
    assert (gone.id, gone.object, gone.deleted) == (grant.id, "checkpoint.permission", True)
    with pytest.raises(openai.NotFoundError):  # revoked
        chat(beta)
    assert gamma.models.retrieve(ckpt).id == ckpt
    assert [p.project_id for p in perms.list(ckpt)] == ["gamma"]
