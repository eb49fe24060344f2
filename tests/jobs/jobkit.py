"""Helpers for the tests in this folder (the fixtures that use them are in conftest.py)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from testkit import write_jsonl

QUESTIONS = [
    "How do I reset my password?",
    "Where is my order?",
    "Can I change my shipping address?",
    "How do I cancel my subscription?",
    "Do you ship abroad?",
    "How long does a refund take?",
    "Which payment methods do you take?",
    "How do I contact support?",
    "Is there a mobile app?",
    "Can I get an invoice?",
    "How do I delete my account?",
    "Do you offer gift cards?",
]


def chat_rows(n: int = 12) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "system", "content": "You are Acme's support assistant."},
                {"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]},
                {"role": "assistant", "content": f"Answer {i}: open Settings, then Help."},
            ]
        }
        for i in range(n)
    ]


@dataclass
class Proc:
    proc: subprocess.Popen
    log: Path
    url: str = ""

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _env(home: Path, db_url: str | None) -> dict[str, str]:
    env = {**os.environ, "TUNEFORGE_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("TUNEFORGE_DATABASE_URL", None)
    if db_url:
        env["TUNEFORGE_DATABASE_URL"] = db_url
    return env


@dataclass
class InProcess:
    """An app (no background worker) behind the real ASGI stack, an SDK client on it, and a worker the
    test drives step by step with `work()`."""

    app: object
    client: object  # openai.OpenAI
    http: object  # starlette TestClient (an httpx.Client)
    worker: object  # tuneforge.jobs.worker.Worker

    def work(self) -> int:
        """Do every piece of work waiting in the queue (validation, training); how many were done."""
        done = 0
        while self.worker.run_once():
            done += 1
        return done


def upload(client, rows: list[dict], tmp_path: Path, name: str = "train.jsonl") -> str:
    path = write_jsonl(tmp_path / name, rows)
    with open(path, "rb") as fh:
        return client.files.create(file=fh, purpose="fine-tune").id
