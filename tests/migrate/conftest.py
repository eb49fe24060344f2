"""One source tuneforge server with a finished chat job and a finished legacy job on it (made once per
module: training is the slow part), and fresh target servers to migrate into."""

from __future__ import annotations

import httpx
import pytest
from migratekit import Server, finished
from pg import database_url, postgres_url  # noqa: F401  (fixtures)
from testkit import wait_for, write_jsonl

QUESTIONS = ["How do I reset my password?", "Where is my order?", "Do you ship abroad?",
             "How long does a refund take?", "Is there a mobile app?", "Can I get an invoice?"]


def chat_rows(n: int) -> list[dict]:
    return [{"messages": [{"role": "system", "content": "You are Acme's support assistant."},
                          {"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]},
                          {"role": "assistant", "content": f"Answer {i}: open Settings, then Help. 谢谢"}]}
            for i in range(n)]


def legacy_rows(n: int) -> list[dict]:
    return [{"prompt": f"{QUESTIONS[i % len(QUESTIONS)]} ->", "completion": f" Answer {i}.\n"}
            for i in range(n)]


@pytest.fixture(scope="module")
def source(settings, tiny_model, tmp_path_factory):
    server = Server(settings, tmp_path_factory.mktemp("source") / "home")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def source_jobs(source, tmp_path_factory) -> dict:
    """A finished chat job (with a validation file, suffix, seed, metadata) and a finished legacy job."""
    folder = tmp_path_factory.mktemp("source-data")
    client = source.client()
    ids = {}
    for name, rows in (("train.jsonl", chat_rows(12)), ("valid.jsonl", chat_rows(4)),
                       ("legacy.jsonl", legacy_rows(10))):
        with write_jsonl(folder / name, rows).open("rb") as fh:
            ids[name] = client.files.create(file=fh, purpose="fine-tune").id
    chat = client.fine_tuning.jobs.create(
        model="tiny-llama", training_file=ids["train.jsonl"], validation_file=ids["valid.jsonl"],
        suffix="support", seed=7, metadata={"team": "support"},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}})
    legacy = httpx.post(source.base_url + "/fine-tunes", timeout=30, json={
        "training_file": ids["legacy.jsonl"], "model": "tiny-llama", "n_epochs": 1, "suffix": "oldie"})
    assert legacy.status_code == 200, legacy.text
    legacy_id = legacy.json()["id"]
    chat_job = finished(client, chat.id)

    def legacy_done():
        job = httpx.get(f"{source.base_url}/fine-tunes/{legacy_id}", timeout=30).json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    legacy_job = wait_for(legacy_done, 120, "the legacy job to finish")
    assert legacy_job["status"] == "succeeded", legacy_job
    return {"chat": chat_job, "legacy": legacy_job, "files": ids}
