"""`/v1/chat/completions` through the current `openai` SDK against a live server, on a LoRA fine-tune."""

from __future__ import annotations

import json

import pytest
from servekit import FT_ID

MESSAGES = [{"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": [{"type": "text", "text": "Where is my "},
                                         {"type": "text", "text": "order?"}]}]


def _prompt_tokens(tokenizer) -> int:
    flat = [{"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": "Where is my order?"}]
    text = tokenizer.apply_chat_template(flat, add_generation_prompt=True, tokenize=False)
    return len(tokenizer.encode(text, add_special_tokens=False))


def test_server_default_max_tokens_caps_only_replies_that_set_none(client, live):
    import dataclasses

    engine = live.engine
    saved = engine.settings
    engine.settings = dataclasses.replace(saved, default_max_tokens=5)  # TUNEFORGE_DEFAULT_MAX_TOKENS=5
    try:
        r = client.chat.completions.create(model=FT_ID, messages=MESSAGES, temperature=0)
        asked = client.chat.completions.create(model=FT_ID, messages=MESSAGES, max_tokens=9, temperature=0)
    finally:
        engine.settings = saved
    assert r.usage.completion_tokens == 5 and r.choices[0].finish_reason == "length"
    assert asked.usage.completion_tokens == 9  # the request's own max_tokens wins


def test_chat_with_fine_tuned_model_shapes_and_exact_usage(client, tokenizer):
    r = client.chat.completions.create(model=FT_ID, messages=MESSAGES, max_tokens=7, temperature=0)
    assert r.object == "chat.completion" and r.model == FT_ID and r.id.startswith("chatcmpl-")
    choice = r.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason == "length"
    assert r.usage.prompt_tokens == _prompt_tokens(tokenizer)
    assert r.usage.completion_tokens == 7
    assert r.usage.total_tokens == r.usage.prompt_tokens + 7


def test_stream_matches_non_stream_and_reports_usage(client):
    full = client.chat.completions.create(model=FT_ID, messages=MESSAGES, max_tokens=12, temperature=0)
    chunks = list(client.chat.completions.create(model=FT_ID, messages=MESSAGES, max_tokens=12, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 12
    assert all(c.usage is None for c in chunks[:-1])


def test_stop_sequence_is_cut_in_both_modes(client):
    free = client.chat.completions.create(model=FT_ID, messages=MESSAGES, max_tokens=20, temperature=0)
    text = free.choices[0].message.content
    stop = text[len(text) // 2: len(text) // 2 + 6]  # a piece from the middle, spanning tokens
    cut = text[: text.index(stop)]
    r = client.chat.completions.create(model=FT_ID, messages=MESSAGES, max_tokens=20, temperature=0,
                                       stop=[stop])
    assert r.choices[0].message.content == cut and r.choices[0].finish_reason == "stop"
    chunks = list(client.chat.completions.create(model=FT_ID, messages=MESSAGES, max_tokens=20, temperature=0,
                                                 stop=stop, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == cut
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_logprobs_and_top_logprobs(client):
    r = client.chat.completions.create(model=FT_ID, messages=MESSAGES, max_tokens=5, temperature=0,
                                       logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == 5
    assert "".join(t.token for t in content) == r.choices[0].message.content
    for t in content:
        assert len(t.top_logprobs) == 3 and t.logprob <= 0
        assert t.logprob == pytest.approx(t.top_logprobs[0].logprob)  # greedy picks the best
        assert t.bytes == list(t.token.encode())


def test_n_and_seed_are_reproducible(client):
    kw = dict(model=FT_ID, messages=MESSAGES, max_tokens=8, temperature=1.0, n=3, seed=42)
    a = client.chat.completions.create(**kw)
    b = client.chat.completions.create(**kw)
    texts = [c.message.content for c in a.choices]
    assert [c.index for c in a.choices] == [0, 1, 2]
    assert texts == [c.message.content for c in b.choices]
    assert len(set(texts)) > 1  # the choices are different samples
    assert a.usage.completion_tokens == 24


def test_frequency_penalty_changes_repetition(client):
    kw = dict(model="tiny-llama", messages=MESSAGES, max_tokens=24, temperature=0)
    base = client.chat.completions.create(**kw, logprobs=True).choices[0].logprobs.content
    pen = client.chat.completions.create(**kw, logprobs=True, frequency_penalty=2.0)
    pen = pen.choices[0].logprobs.content
    repeats = len(base) - len({t.token for t in base})
    assert repeats > 0  # the tiny random model repeats itself...
    assert len(pen) - len({t.token for t in pen}) < repeats  # ...less with a penalty


def test_json_schema_response_format_gives_valid_json(client):
    schema = {"type": "object", "properties": {"refund": {"type": "boolean"}}, "required": ["refund"],
              "additionalProperties": False}
    r = client.chat.completions.create(
        model=FT_ID, messages=MESSAGES, max_tokens=30,
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}})
    assert r.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(r.choices[0].message.content)["refund"], bool)
    obj = client.chat.completions.create(model=FT_ID, messages=MESSAGES, max_tokens=6,
                                         response_format={"type": "json_object"})
    assert obj.choices[0].message.content.lstrip().startswith("{")
