"""Pieces shared by the chat and legacy completion endpoints: OpenAI's request rules, sampling
parameters, the context-length check, and reading several engine handles as one stream."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tuneforge.serving.engine import RequestHandle
from tuneforge.serving.params import ClientGone, Delta, Finished, SamplingParams, ServingError, TokenInfo


def bad(message: str, param: str | None, code: str | None = None) -> ServingError:
    return ServingError(message, status=400, param=param, code=code)


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def now() -> int:
    return int(time.time())


def stop_list(stop: str | list[str] | None) -> list[str]:
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else list(stop)
    if len(stops) > 4:
        raise bad(f"'stop' has {len(stops)} sequences; at most 4 are allowed.", "stop")
    return [s for s in stops if s]


def sampling_params(body, max_tokens: int | None, logprobs: int | None, json_mode: bool,
                    vocab_size: int, json_schema: dict | None = None) -> SamplingParams:
    bias: dict[int, float] = {}
    for key, value in (body.logit_bias or {}).items():
        if not (key.isascii() and key.isdigit()) or not 0 <= int(key) < vocab_size:
            raise bad(f"Invalid key {key!r} in 'logit_bias': keys are token ids from 0 to {vocab_size - 1}.",
                      "logit_bias")
        if not -100 <= value <= 100:
            raise bad(f"Invalid value {value} for token {key} in 'logit_bias': use -100 to 100.",
                      "logit_bias")
        bias[int(key)] = float(value)
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        presence_penalty=body.presence_penalty or 0.0,
        frequency_penalty=body.frequency_penalty or 0.0,
        logit_bias=bias, stop=stop_list(body.stop), seed=body.seed, logprobs=logprobs, json_mode=json_mode,
        json_schema=json_schema, ignore_eos=bool(getattr(body, "ignore_eos", False)),
    )


CHARS_PER_TOKEN = 32  # generous: real tokenizers average 3-5; a cap this loose refuses no real prompt


def max_prompt_chars(context: int) -> int:
    """Text longer than this cannot fit the context: refused before it is tokenized (megabytes take
    seconds)."""
    return context * CHARS_PER_TOKEN


def check_context(context: int, prompt_tokens: int, max_tokens: int | None, param: str) -> None:
    """OpenAI's context_length_exceeded error, naming the limit and the counts."""
    what = "messages" if param == "messages" else "prompt"
    if max_tokens is None:
        if prompt_tokens >= context:
            raise bad(f"This model's maximum context length is {context} tokens. However, your {what} "
                      f"resulted in {prompt_tokens} tokens. Please reduce the length of the {what}.",
                      param, "context_length_exceeded")
        return
    if prompt_tokens + max_tokens > context:
        raise bad(f"This model's maximum context length is {context} tokens, however you requested "
                  f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in your {what}; {max_tokens} for "
                  f"the completion). Please reduce your {what}; or completion length.", param,
                  "context_length_exceeded")


def token_bytes(text: str) -> list[int]:
    return list(text.encode("utf-8"))


@dataclass
class Choice:
    """What one returned sequence accumulates when the response is not streamed."""

    text: str = ""
    tokens: list[TokenInfo] = field(default_factory=list)
    finish_reason: str | None = None
    completion_tokens: int = 0
    mean_logprob: float = 0.0


async def merged(handles: list[RequestHandle]) -> AsyncIterator[tuple[int, object]]:
    """Events of several handles as they come, tagged with the handle's position."""
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(i: int, handle: RequestHandle) -> None:
        try:
            async for event in handle.events():
                await queue.put((i, event))
        except Exception as exc:  # surfaces in the consumer below
            await queue.put((i, exc))
        finally:
            await queue.put((i, None))

    tasks = [asyncio.create_task(pump(i, h)) for i, h in enumerate(handles)]
    live = len(tasks)
    try:
        while live:
            i, event = await queue.get()
            if event is None:
                live -= 1
            elif isinstance(event, Exception):
                raise event
            else:
                yield i, event
    finally:
        for task in tasks:
            task.cancel()
        for handle in handles:
            handle.close()


async def collect(handles: list[RequestHandle], per_handle: int) -> tuple[dict[int, Choice], list]:
    """Run to completion: choices keyed by `handle index * per_handle + sequence index`."""
    choices: dict[int, Choice] = {}
    extras: list = []
    async for i, event in merged(handles):
        if isinstance(event, Delta):
            c = choices.setdefault(i * per_handle + event.index, Choice())
            c.text += event.text
            c.tokens.extend(event.tokens)
        elif isinstance(event, Finished):
            c = choices.setdefault(i * per_handle + event.index, Choice())
            c.finish_reason = event.finish_reason
            c.completion_tokens = event.completion_tokens
            c.mean_logprob = event.cumulative_logprob / max(1, event.completion_tokens)
        else:
            extras.append((i, event))
    return choices, extras


async def until_disconnected(coro, is_disconnected) -> object:
    """Await `coro`, but give up (freeing the engine slot) as soon as the client goes away."""
    task = asyncio.ensure_future(coro)
    while True:
        done, _ = await asyncio.wait({task}, timeout=0.25)
        if done:
            return task.result()
        if await is_disconnected():
            task.cancel()
            raise ClientGone()


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
