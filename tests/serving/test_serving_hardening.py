"""Hostile or careless requests: every malformed field is a 400 in OpenAI's shape naming the field (never a
500), a costly response_format is refused before it reaches the decode thread, a huge prompt is refused
before it is tokenized, and a model named by a server path is an unknown model that echoes no path."""

from __future__ import annotations

import json
import logging
import math
import time

import httpx
import pytest
from servekit import FT_ID

MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def http(live):
    with httpx.Client(base_url=live.base_url, timeout=60) as c:
        yield c


def _post(http, path: str, body: dict):
    """Raw JSON, so NaN and Infinity reach the server as Python's json writes them."""
    return http.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})


def _error(response, param_prefix: str) -> dict:
    assert response.status_code == 400, response.text
    err = response.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "invalid_request_error"
    assert err["param"] and err["param"].startswith(param_prefix), err
    return err


@pytest.mark.parametrize(("fields", "param"), [
    ({"messages": [{"role": ["user"], "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": {"a": 1}, "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": {"text": "x"}}]}, "messages[0].content"),
    ({"messages": ["hello"]}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": MSG * 2049}, "messages"),
    ({"logit_bias": {"²": 1}}, "logit_bias"),
    ({"logit_bias": {"abc": 1}}, "logit_bias"),
    ({"logit_bias": {"99999999": 1}}, "logit_bias"),
    ({"logit_bias": {"5": 101}}, "logit_bias"),
    ({"logit_bias": {"5": -1000}}, "logit_bias"),
    ({"seed": 2**64}, "seed"),
    ({"seed": -(2**70)}, "seed"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"stop": [1, 2]}, "stop"),
    ({"n": 0}, "n"),
    ({"n": 10**9}, "n"),
    ({"max_tokens": -1}, "max_tokens"),
    ({"max_tokens": "lots"}, "max_tokens"),
    ({"max_completion_tokens": -3}, "max_completion_tokens"),
    ({"temperature": 2.5}, "temperature"),
    ({"temperature": math.nan}, "temperature"),
    ({"top_p": math.inf}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"top_logprobs": 21, "logprobs": True}, "top_logprobs"),
    ({"tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(129)]}, "tools"),
    ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools"),
    ({"tools": "everything"}, "tools"),
    ({"functions": [{"name": f"f{i}"} for i in range(129)]}, "functions"),
])
def test_chat_malformed_fields_are_400_naming_the_field(http, fields, param):
    body = {"model": FT_ID, "messages": MSG, "max_tokens": 2, **fields}
    _error(_post(http, "/chat/completions", body), param)


@pytest.mark.parametrize(("fields", "param"), [
    ({"logprobs": 6}, "logprobs"),
    ({"logprobs": -1}, "logprobs"),
    ({"prompt": [[1, 2], [99999999]]}, "prompt[1]"),
    ({"prompt": [[1, 2], ["x"]]}, "prompt"),
    ({"best_of": 1, "n": 2}, "best_of"),
    ({"seed": 2**64}, "seed"),
])
def test_completion_malformed_fields_are_400_naming_the_field(http, fields, param):
    _error(http.post("/completions", json={"model": "tiny-llama", "prompt": "x", "max_tokens": 2, **fields}),
           param)


def test_64_bit_seeds_are_accepted_and_reproducible(http):
    body = {"model": "tiny-llama", "prompt": "x", "max_tokens": 4, "temperature": 1}
    for seed in (2**63 - 1, -(2**63)):
        first = http.post("/completions", json={**body, "seed": seed})
        again = http.post("/completions", json={**body, "seed": seed})
        assert first.status_code == 200, first.text
        assert first.json()["choices"][0]["text"] == again.json()["choices"][0]["text"]


def _schema_format(schema) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"a": {"type": "string", "pattern": "[a-z]{1,20000}[0-9]{1,20000}"}}},
    {"type": "object", "properties": {"a": {"type": "string", "pattern": "(("}}},
    ["not", "an", "object"],
    {"type": "thing"},
    {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
    {"type": "object", "properties": {"a": {"$ref": "https://example.com/schema.json"}}},
])
def test_costly_or_invalid_json_schema_is_400_response_format(http, schema):
    started = time.monotonic()
    r = http.post("/chat/completions", json={"model": FT_ID, "messages": MSG, "max_tokens": 2,
                                             "response_format": _schema_format(schema)})
    _error(r, "response_format")
    assert time.monotonic() - started < 10  # refused up front, not after building an automaton


def test_property_names_like_keywords_are_fine(http):
    schema = {"type": "object", "properties": {"type": {"type": "string", "maxLength": 3},
                                               "pattern": {"type": "boolean"}}, "required": ["pattern"]}
    r = http.post("/chat/completions", json={"model": FT_ID, "messages": MSG, "max_tokens": 12,
                                             "response_format": _schema_format(schema)})
    assert r.status_code == 200, r.text


def test_huge_prompt_is_refused_before_tokenizing_and_the_server_stays_responsive(live, http):
    huge = "word " * 1_600_000  # 8 MB
    started = time.monotonic()
    r = http.post("/completions", json={"model": "tiny-llama", "prompt": huge, "max_tokens": 1})
    err = _error(r, "prompt")
    assert err["code"] == "context_length_exceeded"
    r = http.post("/chat/completions", json={"model": "tiny-llama", "max_tokens": 1,
                                             "messages": [{"role": "user", "content": huge}]})
    assert _error(r, "messages")["code"] == "context_length_exceeded"
    assert time.monotonic() - started < 10
    assert httpx.get(live.url + "/v1/health", timeout=10).status_code in (200, 401)


def test_model_named_by_a_server_path_is_404_without_the_path(http, tiny_model_dir):
    for model in (str(tiny_model_dir), str(tiny_model_dir.parent), "/etc"):
        r = http.post("/chat/completions", json={"model": model, "messages": MSG, "max_tokens": 2})
        assert r.status_code == 404, r.text
        err = r.json()["error"]
        assert err["code"] == "model_not_found" and err["param"] == "model"
        assert model not in err["message"] and str(tiny_model_dir.parent) not in err["message"]


def test_a_big_n_request_does_not_starve_a_small_chat(live, http):
    # n=64 rows that never stop early: before fairness, all 64 took the batch and a 2-token chat waited
    # for every one of them to finish.
    big = {"model": "tiny-llama", "prompt": "go", "max_tokens": 1900, "n": 64, "ignore_eos": True,
           "stream": True}
    with http.stream("POST", "/completions", json=big) as stream:
        lines = stream.iter_lines()  # keep the iterator: dropping it closes the connection
        next(lines)  # the big request is decoding
        started = time.monotonic()
        small = http.post("/chat/completions", json={"model": "tiny-llama", "messages": MSG, "max_tokens": 2},
                          timeout=60)
        waited = time.monotonic() - started
        assert small.status_code == 200, small.text
        assert small.json()["choices"][0]["finish_reason"] in ("stop", "length")
        assert waited < 10, f"the small chat waited {waited:.1f} s behind the big request"
    deadline = time.monotonic() + 10  # the big request's client went away: its rows go too
    while live.engine.stats()["open_requests"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.engine.stats()["open_requests"] == 0


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def _about_disconnect(record: logging.LogRecord) -> bool:
    return "disconnect" in record.getMessage() or "Cancelled" in record.getMessage()


def test_client_disconnect_is_one_log_line_without_traceback(live):
    records = _Records()
    loggers = [logging.getLogger(n) for n in ("", "uvicorn")]  # uvicorn's loggers stop at "uvicorn"
    for lg in loggers:
        lg.addHandler(records)
    level = logging.getLogger("tuneforge.api").level
    logging.getLogger("tuneforge.api").setLevel(logging.INFO)
    try:
        body = {"model": "tiny-llama", "prompt": "go", "max_tokens": 1900, "ignore_eos": True}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(live.base_url + "/completions", json=body, timeout=1.0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (live.engine.stats()["open_requests"]
                                               or not any(_about_disconnect(r) for r in records.records)):
            time.sleep(0.05)
    finally:
        for lg in loggers:
            lg.removeHandler(records)
        logging.getLogger("tuneforge.api").setLevel(level)
    lines = [r for r in records.records if _about_disconnect(r)]
    assert len(lines) == 1, [r.getMessage() for r in records.records]
    assert not [r for r in records.records if r.exc_info], [r.getMessage() for r in records.records]


def test_echo_logprobs_of_a_long_prompt_cover_every_token(client, tokenizer):
    prompt = "The refund policy covers orders shipped to Canada. " * 60  # > 256 tokens: several chunks
    count = len(tokenizer.encode(prompt, add_special_tokens=False))
    r = client.completions.create(model="tiny-llama", prompt=prompt, max_tokens=0, echo=True, logprobs=2)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == count and lp.token_logprobs[0] is None
    assert all(v <= 0 for v in lp.token_logprobs[1:]) and all(len(t) >= 2 for t in lp.top_logprobs[1:])
