"""The 0.x `/v1/fine-tunes` family: shapes, ids, wording, and `?stream=true` ending with [DONE]."""

from __future__ import annotations

import json

from jobkit import chat_rows, upload


def _legacy_job(inproc, tmp_path, n: int, **body) -> dict:
    file_id = upload(
        inproc.client, [{"prompt": f"Q{i} ->", "completion": f" A{i}\n"} for i in range(n)], tmp_path
    )
    resp = inproc.http.post("/v1/fine-tunes", json={"training_file": file_id, **body})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_create_returns_the_legacy_shape(inproc, tmp_path):
    job = _legacy_job(inproc, tmp_path, 12, model="curie", suffix="My Bot!")
    assert job["id"].startswith("ft-") and job["object"] == "fine-tune" and job["status"] == "pending"
    assert job["model"] == "curie" and job["fine_tuned_model"] is None
    assert job["hyperparams"] == {
        "batch_size": None,
        "learning_rate_multiplier": None,
        "n_epochs": 4,
        "prompt_loss_weight": 0.01,
    }
    assert job["training_files"][0]["object"] == "file" and job["training_files"][0]["purpose"] == "fine-tune"
    assert job["validation_files"] == [] and job["result_files"] == []
    assert job["events"][0]["object"] == "fine-tune-event"
    assert job["events"][0]["message"] == f"Created fine-tune: {job['id']}"
    # Legacy jobs stay out of the new API's list, and the other way round.
    assert inproc.client.fine_tuning.jobs.list().data == []
    assert [j["id"] for j in inproc.http.get("/v1/fine-tunes").json()["data"]] == [job["id"]]


def test_stream_sends_every_event_then_done(inproc, tmp_path):
    # Rows without a completion: the job fails at validation, so the stream ends. (A legacy file with
    # few examples now trains, as at OpenAI: data.limits.min_examples.)
    file_id = upload(inproc.client, [{"prompt": f"Q{i} ->"} for i in range(3)], tmp_path)
    job = inproc.http.post("/v1/fine-tunes", json={"training_file": file_id}).json()
    inproc.work()
    with inproc.http.stream("GET", f"/v1/fine-tunes/{job['id']}/events", params={"stream": "true"}) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        data = [line[len("data: ") :] for line in resp.iter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    events = [json.loads(d) for d in data[:-1]]
    assert [e["object"] for e in events] == ["fine-tune-event"] * len(events)
    assert events[0]["message"] == f"Created fine-tune: {job['id']}"
    assert events[-1]["level"] == "error" and "Line 1" in events[-1]["message"]
    listed = inproc.http.get(f"/v1/fine-tunes/{job['id']}/events").json()
    assert listed["object"] == "list" and [e["message"] for e in listed["data"]] == [
        e["message"] for e in events
    ]
    retrieved = inproc.http.get(f"/v1/fine-tunes/{job['id']}").json()
    assert retrieved["status"] == "failed"


def test_cancel_and_unknown_ids(inproc, tmp_path):
    job = _legacy_job(inproc, tmp_path, 12)
    resp = inproc.http.post(f"/v1/fine-tunes/{job['id']}/cancel")
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    assert resp.json()["events"][-1]["message"] == "Fine-tune cancelled"
    missing = inproc.http.get("/v1/fine-tunes/ft-missing")
    assert missing.status_code == 404 and "ft-missing" in missing.json()["error"]["message"]
    # A new-API job is not visible under the legacy ids, and vice versa.
    new = inproc.client.fine_tuning.jobs.create(
        model="tiny-llama", training_file=upload(inproc.client, chat_rows(), tmp_path, "chat.jsonl")
    )
    assert inproc.http.get(f"/v1/fine-tunes/{new.id}").status_code == 404
    assert inproc.http.get(f"/v1/fine_tuning/jobs/{job['id']}").status_code == 404


def test_legacy_create_validates_params(inproc, tmp_path):
    file_id = upload(inproc.client, chat_rows(), tmp_path)
    resp = inproc.http.post("/v1/fine-tunes", json={"training_file": file_id, "n_epochs": 0})
    body = resp.json()["error"]
    assert resp.status_code == 400 and body["param"] == "n_epochs" and body["type"] == "invalid_request_error"
    resp = inproc.http.post("/v1/fine-tunes", json={"training_file": file_id, "model": "gpt-9"})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "model"
