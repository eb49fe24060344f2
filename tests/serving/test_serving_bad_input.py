"""Bad input gets OpenAI's errors with `param`; load is bounded (429 + Retry-After); a client that goes
away mid-stream frees its slot at once."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from servekit import FT_ID

MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"n": 0}, "n"),
    ({"n": 129}, "n"),
    ({"temperature": -0.5}, "temperature"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages[0].content[0]"),
    ({"logit_bias": {"999999": 5}}, "logit_bias"),
])
def test_chat_bad_values_are_400_with_param(client, kwargs, param):
    args = {"model": FT_ID, "messages": MSG, "max_tokens": 2, **kwargs}
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(**args)
    assert err.value.param == param
    assert param.split("[")[0].split(".")[0] in err.value.message


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"best_of": 1, "n": 2}, "best_of"),
    ({"best_of": 3, "stream": True}, "best_of"),
    ({"suffix": "tail"}, "suffix"),
    ({"logprobs": 6}, "logprobs"),
])
def test_completion_bad_values_are_400_with_param(client, kwargs, param):
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model=FT_ID, prompt="x", max_tokens=2, **kwargs)
    assert err.value.param == param


def test_unknown_model_is_404_model_not_found(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="ft:tiny-llama:personal:nope:00000000", messages=MSG)
    assert err.value.code == "model_not_found" and err.value.param == "model"
    assert "ft:tiny-llama:personal:nope:00000000" in err.value.message


def test_prompt_longer_than_context_names_limit_and_count(client, tokenizer):
    long_prompt = "word " * 2100  # the tiny model's context is 2048 tokens
    count = len(tokenizer.encode(long_prompt, add_special_tokens=False))
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model="tiny-llama", prompt=long_prompt, max_tokens=5)
    assert err.value.code == "context_length_exceeded" and err.value.param == "prompt"
    assert "2048 tokens" in err.value.message and f"{count} in your prompt" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=FT_ID, messages=[{"role": "user", "content": long_prompt}])
    assert err.value.param == "messages" and "2048 tokens" in err.value.message


def test_queue_limit_429_and_disconnect_frees_the_slot(live):
    engine = live.engine
    limit = engine.max_queued
    engine.max_queued = 1
    # 16 long sequences: busy for far longer than the test takes, unless the disconnect stops them.
    body = {"model": "tiny-llama", "prompt": "go", "max_tokens": 1500, "n": 16, "stream": True}
    try:
        with httpx.Client(base_url=live.base_url, timeout=60) as http:
            with http.stream("POST", "/completions", json=body) as stream:
                lines = stream.iter_lines()  # keep the iterator: dropping it closes the connection
                next(lines)  # generating now
                busy = http.post("/completions", json={**body, "stream": False, "max_tokens": 1, "n": 1})
                assert busy.status_code == 429
                assert int(busy.headers["retry-after"]) >= 1
                assert busy.json()["error"]["code"] == "rate_limit_exceeded"
            # The streaming client went away: its slot is free (almost) at once.
            deadline = time.monotonic() + 5
            while engine.stats()["open_requests"] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert engine.stats()["open_requests"] == 0
            ok = http.post("/completions", json={**body, "stream": False, "max_tokens": 1, "n": 1})
            assert ok.status_code == 200, ok.text
    finally:
        engine.max_queued = limit
    deadline = time.monotonic() + 5  # the engine drops finished rows right after posting their end
    while sum(engine.stats()["running_rows"].values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sum(engine.stats()["running_rows"].values()) == 0
