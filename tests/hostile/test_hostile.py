"""Malformed and hostile requests against a live server (issue 13): for each case, what a user or an
attacker would see. Invariants held by every case:
- no 5xx, and the status is one the case names (a 400 names the field in `param` where it says so);
- an error is OpenAI's shape `{"error": {"message", "type", "param", "code"}}` and names no server path;
- the server still answers `/health` at once;
- nothing was written outside the store (the sandbox around the home holds only what it held before).
The stall cases also check that a small chat on the same model is answered while the hostile one runs.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from cases import ALL_CASES, MODEL, TRAIN, Case

SERVER_PATH_MARKERS = ("/root/", "/tmp/", "/home/", ".cache/tuneforge", "site-packages")


def _outside_store(target) -> set[Path]:
    """Every file around the store: the sandbox minus the blob store, the jobs folder and the database."""
    store = (target.home / "files", target.home / "jobs", target.home / "models")
    return {
        p
        for p in target.sandbox.rglob("*")
        if p.is_file() and not any(p.is_relative_to(s) for s in store) and not p.name.startswith("db.sqlite")
    }


def _fill(value, training_file: str):
    if isinstance(value, str):
        return value.replace(TRAIN, training_file)
    if isinstance(value, dict):
        return {k: _fill(v, training_file) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, training_file) for v in value]
    return value


def send(target, case: Case, timeout: float = 60) -> httpx.Response:
    url = (target.url if case.root else target.base_url) + case.path
    kwargs: dict = {"headers": case.headers, "params": case.params, "timeout": timeout}
    if case.json is not None:
        kwargs["json"] = _fill(case.json, target.training_file)
    elif case.content is not None:
        kwargs["content"] = (
            _fill(case.content, target.training_file) if isinstance(case.content, str) else case.content
        )
    if case.data is not None or case.files is not None:
        kwargs["data"], kwargs["files"] = case.data, case.files
    return httpx.request(case.method, url, **kwargs)


def _leaked_paths(message: str, sent: str) -> list[str]:
    """Server paths in an error message that the request did not itself contain (echoing the caller's
    own `model` back is fine; naming the server's storage is not)."""
    tokens = re.findall(r"\S+", message)
    return [
        t for t in tokens if any(m in t for m in SERVER_PATH_MARKERS) and t.strip("`'\".,:;()") not in sent
    ]


def assert_error_shape(r: httpx.Response, sent: str = "") -> dict:
    try:
        body = r.json()
    except json.JSONDecodeError:
        raise AssertionError(f"{r.status_code} with a body that is not JSON: {r.text[:300]!r}") from None
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict) and set(error) >= {"message", "type", "param", "code"}, body
    assert isinstance(error["message"], str) and error["message"], body
    leaked = _leaked_paths(error["message"], sent)
    assert not leaked, f"the error names a server path {leaked}: {error['message']}"
    return error


def assert_alive(target) -> None:
    r = httpx.get(target.url + "/health", timeout=5)
    assert r.status_code == 200, "the server stopped answering"


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_hostile_request(target, case: Case):
    before = _outside_store(target)
    r = send(target, case)
    assert r.status_code < 500, f"{case.id}: {r.status_code} {r.text[:500]}"
    assert r.status_code in case.expect, (
        f"{case.id}: expected {case.expect}, got {r.status_code} {r.text[:500]}"
    )
    if r.status_code >= 400 and not case.root:
        sent = unquote(f"{case.path} {case.params} {case.json} {case.data} {case.content!r}")
        error = assert_error_shape(r, sent)
        if case.param is not None:
            assert error["param"] and case.param in error["param"], f"{case.id}: param {error['param']!r}"
    assert_alive(target)
    assert _outside_store(target) == before, "a file appeared outside the store"


def test_at_least_150_cases():
    assert len(ALL_CASES) >= 150 and len({c.id for c in ALL_CASES}) == len(ALL_CASES)


# ---- stall cases: one request must not hold up everyone else on the model ----------------------------
def _small_chat_seconds(target) -> float:
    start = time.monotonic()
    r = httpx.post(
        target.base_url + "/chat/completions",
        timeout=120,
        json={"model": MODEL, "max_tokens": 2, "messages": [{"role": "user", "content": "hello"}]},
    )
    assert r.status_code == 200, r.text
    return time.monotonic() - start


def _while_running(
    target, body: dict, path: str = "/chat/completions"
) -> tuple[float, float, httpx.Response]:
    """Send the hostile request in the background; meanwhile time /health and a small chat."""
    box: dict = {}
    worker = threading.Thread(
        target=lambda: box.update(r=httpx.post(target.base_url + path, json=body, timeout=300))
    )
    worker.start()
    time.sleep(0)  # let it connect first; the checks below do not depend on who wins
    start = time.monotonic()
    assert_alive(target)
    health_s = time.monotonic() - start
    chat_s = _small_chat_seconds(target)
    worker.join(300)
    assert not worker.is_alive(), "the hostile request never ended"
    return health_s, chat_s, box["r"]


STALL_LIMIT_S = 10.0  # generous: a small chat takes well under a second on the tiny model


def test_pathological_schema_does_not_stall_other_chats(target):
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "pattern": "[a-z]{1,20000}[0-9]{1,20000}"}},
    }
    body = {
        "model": MODEL,
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    health_s, chat_s, r = _while_running(target, body)
    assert health_s < 5 and chat_s < STALL_LIMIT_S, (health_s, chat_s)
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert assert_error_shape(r)["param"] == "response_format"


def test_a_huge_n_request_does_not_starve_a_small_chat(target):
    body = {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 64, "n": 64, "ignore_eos": True}
    health_s, chat_s, r = _while_running(target, body, path="/completions")
    assert health_s < 5 and chat_s < STALL_LIMIT_S, (health_s, chat_s)
    assert r.status_code < 500, r.text


def test_an_8_mb_prompt_does_not_block_the_event_loop(target):
    body = {"model": MODEL, "max_tokens": 2, "messages": [{"role": "user", "content": "word " * 1_600_000}]}
    health_s, chat_s, r = _while_running(target, body)
    assert health_s < 5 and chat_s < STALL_LIMIT_S, (health_s, chat_s)
    assert r.status_code == 400 and assert_error_shape(r)["code"] == "context_length_exceeded", r.text[:300]


def test_echo_logprobs_of_a_long_prompt_answers_and_others_proceed(target):
    body = {"model": MODEL, "prompt": "one two three " * 500, "max_tokens": 0, "echo": True, "logprobs": 5}
    health_s, chat_s, r = _while_running(target, body, path="/completions")
    assert health_s < 5 and chat_s < STALL_LIMIT_S, (health_s, chat_s)
    assert r.status_code == 200, r.text[:300]
    logprobs = r.json()["choices"][0]["logprobs"]
    assert len(logprobs["tokens"]) > 1000 and len(logprobs["top_logprobs"]) == len(logprobs["tokens"])


def test_a_failing_schema_row_ends_only_its_own_request(target):
    """A stream beside a request whose schema cannot be satisfied still gets its whole answer."""
    bad = {
        "model": MODEL,
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"not": {}}}},
    }
    box: dict = {}
    worker = threading.Thread(
        target=lambda: box.update(r=httpx.post(target.base_url + "/chat/completions", json=bad, timeout=120))
    )
    worker.start()
    good = httpx.post(
        target.base_url + "/chat/completions",
        timeout=120,
        json={
            "model": MODEL,
            "max_tokens": 8,
            "stream": True,
            "messages": [{"role": "user", "content": "hello"}],
        },
    )
    worker.join(120)
    assert good.status_code == 200 and "Generation failed" not in good.text and "[DONE]" in good.text
    assert box["r"].status_code < 500, box["r"].text
