"""Migrating from a source shaped like OpenAI today (no legacy API, resolved hyperparameters, DPO jobs,
deleted files, base64 result files), into a tuneforge that only queues the jobs (--no-wait): what can
migrate does, what cannot is reported for its job, and the run exits non-zero saying which."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from migratekit import SOURCE_KEY, Server, migrate
from testkit import UvicornThread

TRAIN = b"".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                          {"role": "assistant", "content": f"a{i}"}]}).encode() + b"\n"
                 for i in range(10))
PREFS = json.dumps({"input": {"messages": [{"role": "user", "content": "hi"}]},
                    "preferred_output": [{"role": "assistant", "content": "Hello!"}],
                    "non_preferred_output": [{"role": "assistant", "content": "k"}]}).encode() + b"\n"
RESULTS = base64.b64encode(b"step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n"
                           b"1,1.5,0.0,,\n")
FILES = {"file-train": ("train.jsonl", "fine-tune", TRAIN), "file-prefs": ("prefs.jsonl", "fine-tune", PREFS),
         "file-res": ("step_metrics.csv", "fine-tune-results", RESULTS)}
SFT_MODEL = "ft:gpt-4o-mini-2024-07-18:acme:support:AbC123"


def _job(job_id: str, model: str, training_file: str, fine_tuned: str | None, status: str = "succeeded",
         method: dict | None = None, created: int = 1_720_000_000) -> dict:
    hp = {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8}
    return {"id": job_id, "object": "fine_tuning.job", "created_at": created, "status": status,
            "model": model, "fine_tuned_model": fine_tuned, "training_file": training_file,
            "validation_file": None, "result_files": ["file-res"] if fine_tuned else [],
            "hyperparameters": hp if method is None else None, "seed": 42, "metadata": None,
            "organization_id": "org-acme", "trained_tokens": 1000, "finished_at": created + 60,
            "error": {"code": None, "message": None, "param": None},
            "method": method or {"type": "supervised", "supervised": {"hyperparameters": hp}}}


MINI, MINI41 = "gpt-4o-mini-2024-07-18", "gpt-4.1-mini-2025-04-14"
JOBS = [
    {**_job("ftjob-sft", MINI, "file-train", SFT_MODEL), "validation_file": "file-vanished"},
    _job("ftjob-dpo", MINI, "file-prefs", f"ft:{MINI}:acme:prefs:DeF456", created=1_720_000_100,
         method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.1, "n_epochs": 2}}}),
    _job("ftjob-gone", MINI41, "file-deleted", f"ft:{MINI41}:acme:gone:GhI789", created=1_720_000_200),
    _job("ftjob-failed", MINI, "file-train", None, status="failed", created=1_720_000_300),
]


def _openai_like():
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    app = FastAPI()

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                       "code": None}}, status_code=status)

    @app.middleware("http")
    async def auth(request: Request, call_next):
        if request.headers.get("authorization") != f"Bearer {SOURCE_KEY}":
            return error(401, "Incorrect API key provided")
        return await call_next(request)

    @app.get("/v1/fine_tuning/jobs")
    def jobs(after: str | None = None):
        ids = [j["id"] for j in JOBS]
        start = ids.index(after) + 1 if after in ids else 0
        return {"object": "list", "data": JOBS[start:start + 2], "has_more": start + 2 < len(JOBS)}

    @app.get("/v1/fine-tunes")
    def legacy():
        return error(404, "Invalid URL (GET /v1/fine-tunes)")

    @app.get("/v1/files/{file_id}")
    def file(file_id: str):
        if file_id not in FILES:
            return error(404, f"No such File object: {file_id}")
        name, purpose, data = FILES[file_id]
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": 1, "filename": name,
                "purpose": purpose, "status": "processed"}

    @app.get("/v1/files/{file_id}/content")
    def content(file_id: str):
        return Response(FILES[file_id][2]) if file_id in FILES else error(404, f"No such File: {file_id}")

    return app


@pytest.fixture(scope="module")
def openai_source():
    server = UvicornThread(_openai_like())
    yield server.url + "/v1"
    server.stop()


@pytest.fixture(scope="module")
def queue_only_target(settings, tiny_model, tmp_path_factory):
    server = Server(settings, tmp_path_factory.mktemp("queue-target") / "home", worker=False)
    yield server
    server.stop()


def test_openai_shaped_source(openai_source, queue_only_target):
    target = queue_only_target.client()
    run = migrate(openai_source, queue_only_target.base_url, "--no-wait")
    out = run.stdout
    assert run.returncode == 1 and "1 of 4 job(s) did not migrate" in run.stderr, out + run.stderr
    assert "file-deleted no longer exists on the source" in out
    assert "Note: ftjob-sft: its validation file file-vanished no longer exists on the source; migrated " \
           "without it" in out  # the job still trains on its training file
    assert "failed on the source; only succeeded jobs are migrated" in out
    default = target.models.retrieve("gpt-4o-mini").model_dump()["root"]
    assert "target's default base" in out and default in out  # gpt-4.1-mini: unknown here

    jobs = {j.metadata["migrated_from"]: j for j in target.fine_tuning.jobs.list().data}
    assert sorted(jobs) == ["ftjob-dpo", "ftjob-sft"]
    dpo = jobs["ftjob-dpo"].method
    assert dpo.type == "dpo" and (dpo.dpo.hyperparameters.beta, dpo.dpo.hyperparameters.n_epochs) == (0.1, 2)
    job = jobs["ftjob-sft"]
    assert job.metadata == {"migrated_from": "ftjob-sft", "migrated_model": SFT_MODEL}
    assert job.model == default and job.seed == 42 and job.user_provided_suffix == "support"
    hp = job.method.supervised.hyperparameters
    assert (hp.n_epochs, hp.batch_size, hp.learning_rate_multiplier) == (3, 1, 1.8)
    copied = {f.filename: target.files.content(f.id).read() for f in target.files.list()}
    assert copied["train.jsonl"] == TRAIN and copied["step_metrics.csv"] == RESULTS  # kept base64, as is
    pending = httpx.put(f"{queue_only_target.base_url}/models/{SFT_MODEL}", json={"job": job.id})
    assert pending.status_code == 200 and pending.json()["model"] is None  # answers once trained

    again = migrate(openai_source, queue_only_target.base_url, "--no-wait")
    assert again.returncode == 1 and "already migrated as " + job.id in again.stdout
    assert "already migrated as " + jobs["ftjob-dpo"].id in again.stdout
    assert len(target.fine_tuning.jobs.list().data) == 2 and len(target.files.list().data) == len(copied)
