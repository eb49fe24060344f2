"""Score one served model on one held-out row, over HTTP.

- The answer: `/v1/chat/completions` for chat rows (the server applies the model's chat template), or
  `/v1/completions` for legacy prompt/completion rows (they were trained as raw continuations), greedy
  (temperature 0), capped near the reference's length: a much longer answer cannot score better.
- The reference's loss and top-1 token accuracy: `/v1/completions` with `echo`, `max_tokens: 0` and
  `logprobs: 1` on prompt text + reference, counting only the tokens that start at or after the reference.
  The API does not expose the model's chat template, so a chat row's prompt is a plain transcript
  (`role: content` lines ending in `assistant:`), not the template the model was trained with: the numbers
  compare models on the same text, they are not the training loss. Legacy rows are scored exactly as
  trained (prompt + completion), without the end-of-text token the training loss also counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tuneforge.evaluation.errors import EvalServerError
from tuneforge.evaluation.http import Server


@dataclass
class Prompt:
    """The part of a row the model is asked, and the answer it should give."""

    question: str  # for display: the last user message, or the legacy prompt
    reference: str
    messages: list[dict] | None = None  # chat rows: the conversation up to the reference answer
    prompt: str | None = None  # legacy rows: the raw prompt text


@dataclass
class ReferenceScore:
    nll: float  # summed negative log-likelihood of the reference tokens
    correct: int  # reference tokens that were the model's top-1 choice
    tokens: int


class Unavailable(Exception):
    """The server cannot score text (no /v1/completions, or no echo/logprobs); says why."""


def split_prompt(row: dict) -> Prompt:
    """The last assistant turn is the reference; what precedes it is the prompt."""
    if "messages" in row:
        messages = row["messages"]
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
        if last is None:
            raise ValueError("a chat row without an assistant message has no reference answer")
        context = messages[:last]
        users = [m for m in context if m.get("role") == "user"]
        question = str(users[-1].get("content", "")) if users else ""
        return Prompt(question, str(messages[last].get("content") or ""), messages=context)
    return Prompt(row.get("prompt", ""), row.get("completion", ""), prompt=row.get("prompt", ""))


def plain_prompt(prompt: Prompt) -> str:
    """The text the reference is scored after. A chat prompt ends in a newline so that the reference's
    first token does not merge with the text before it."""
    if prompt.messages is None:
        return prompt.prompt or ""
    lines = [f"{m.get('role', 'user')}: {m.get('content') or ''}" for m in prompt.messages]
    return "\n".join([*lines, "assistant:"]) + "\n"


def score_reference(server: Server, model: str, prompt: Prompt) -> ReferenceScore:
    head = plain_prompt(prompt)
    body = {"model": model, "prompt": head + prompt.reference, "max_tokens": 0, "echo": True,
            "logprobs": 1, "temperature": 0}
    response = server.post("completions", body)
    if response.status_code == 401:  # a wrong key is the caller's to fix, not a missing feature
        raise EvalServerError(server.failure(response, model), 401)
    if response.status_code >= 400:
        raise Unavailable(server.failure(response, model))
    try:
        lp = response.json()["choices"][0]["logprobs"]
        pairs = zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"], lp["text_offset"], strict=True)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise Unavailable(f"{server.base_url}/completions gave no echoed logprobs for {model}") from exc
    nll, correct, count = 0.0, 0, 0
    for _token, logprob, top, offset in pairs:
        if offset < len(head) or logprob is None:
            continue
        nll -= logprob
        count += 1
        # logprobs=1 returns the argmax; the scored token is top-1 when nothing beats it.
        correct += bool(top) and logprob >= max(top.values()) - 1e-6
    if not count or not math.isfinite(nll):
        raise Unavailable(f"{server.base_url}/completions scored no reference tokens for {model}")
    return ReferenceScore(nll, correct, count)


def answer(server: Server, model: str, prompt: Prompt, max_tokens: int, completions_ok: bool) -> str:
    """The model's greedy answer. Legacy rows continue their prompt where /v1/completions works, else
    they are asked as a user message."""
    if prompt.messages is None and completions_ok:
        out = server.ok("completions", {"model": model, "prompt": prompt.prompt or "",
                                        "max_tokens": max_tokens, "temperature": 0})
        return out["choices"][0]["text"].strip()
    messages = prompt.messages if prompt.messages is not None else \
        [{"role": "user", "content": prompt.prompt or ""}]
    out = server.ok("chat/completions", {"model": model, "messages": messages, "max_tokens": max_tokens,
                                         "temperature": 0})
    return (out["choices"][0]["message"].get("content") or "").strip()


def answer_budget(reference: str, tokens: int | None, cap: int) -> int:
    """Reference length x 1.5 + 8 tokens, capped; without a token count, 2 tokens a character (CJK
    characters are often 2-3 byte-level tokens)."""
    estimate = int(tokens * 1.5) + 8 if tokens else 2 * len(reference) + 8
    return max(1, min(cap, estimate))
