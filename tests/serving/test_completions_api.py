"""`/v1/completions` (legacy) through the `openai` SDK and the 0.x CLI against a live server."""

from __future__ import annotations

import os
import subprocess

import pytest
from servekit import FT_ID

PROMPT = "Customer: my parcel is late ->"


def test_default_max_tokens_is_16_and_usage_is_exact(client, tokenizer):
    r = client.completions.create(model=FT_ID, prompt=PROMPT, temperature=0)
    assert r.object == "text_completion" and r.id.startswith("cmpl-")
    assert r.usage.prompt_tokens == len(tokenizer.encode(PROMPT, add_special_tokens=False))
    assert r.usage.completion_tokens == 16 and r.choices[0].finish_reason == "length"


def test_echo_with_logprobs_scores_the_prompt(client, tokenizer):
    r = client.completions.create(model=FT_ID, prompt=PROMPT, max_tokens=4, temperature=0, echo=True,
                                  logprobs=2)
    c = r.choices[0]
    n_prompt = len(tokenizer.encode(PROMPT, add_special_tokens=False))
    assert c.text.startswith(PROMPT)
    lp = c.logprobs
    assert len(lp.tokens) == n_prompt + 4
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert all(v <= 0 for v in lp.token_logprobs[1:])
    assert all(1 <= len(top) <= 3 for top in lp.top_logprobs[1:])  # logprobs=2 plus the chosen token
    assert lp.text_offset[0] == 0 and lp.text_offset[1] == len(lp.tokens[0])
    # Prompt scoring alone: echo with max_tokens=0 generates nothing.
    s = client.completions.create(model=FT_ID, prompt=PROMPT, max_tokens=0, echo=True, logprobs=0)
    assert s.choices[0].text == PROMPT and s.usage.completion_tokens == 0
    assert s.choices[0].logprobs.token_logprobs[1:] == pytest.approx(lp.token_logprobs[1:n_prompt], abs=1e-4)


def test_best_of_returns_the_most_likely_candidates(client):
    r = client.completions.create(model=FT_ID, prompt=PROMPT, max_tokens=6, best_of=4, n=2, seed=7,
                                  logprobs=0)
    assert [c.index for c in r.choices] == [0, 1]
    assert r.usage.completion_tokens == 24  # every candidate is generated (and counted)
    means = [sum(c.logprobs.token_logprobs) / len(c.logprobs.token_logprobs) for c in r.choices]
    assert means[0] >= means[1] - 1e-6


def test_several_prompts_and_token_prompts(client, tokenizer):
    ids = tokenizer.encode("Order 42 ->", add_special_tokens=False)
    r = client.completions.create(model="tiny-llama", prompt=[PROMPT, "Refund ->"], max_tokens=3, n=2)
    assert sorted(c.index for c in r.choices) == [0, 1, 2, 3]
    t = client.completions.create(model="tiny-llama", prompt=ids, max_tokens=3, temperature=0, echo=True)
    assert t.choices[0].text.startswith("Order 42 ->")
    assert t.usage.prompt_tokens == len(ids)


def test_stream_with_stop_and_usage(client):
    full = client.completions.create(model=FT_ID, prompt=PROMPT, max_tokens=16, temperature=0).choices[0].text
    stop = full[6:10]
    chunks = list(client.completions.create(model=FT_ID, prompt=PROMPT, max_tokens=16, temperature=0,
                                            stop=stop, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == full[: full.index(stop)]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.prompt_tokens > 0


def test_legacy_cli_completions_create(live, client, openai028):
    cli = openai028
    expected = client.completions.create(model=FT_ID, prompt=PROMPT, max_tokens=5, temperature=0)
    expected = expected.choices[0].text
    env = {**os.environ, "OPENAI_API_KEY": "sk-anything"}
    for extra in ([], ["--stream"]):
        out = subprocess.run([str(cli), "-b", live.base_url, "api", "completions.create", "-m", FT_ID,
                              "-p", PROMPT, "-M", "5", "-t", "0", *extra], capture_output=True, text=True,
                             env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == (PROMPT + expected).strip()  # it prints prompt + completion
