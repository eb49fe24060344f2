"""`/v1/completions` (legacy): raw-text prompts, `echo`, integer `logprobs`, `best_of`."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

from tuneforge.serving.engine import InferenceEngine, Prepared, RequestHandle
from tuneforge.serving.openai_common import (
    bad,
    check_context,
    collect,
    max_prompt_chars,
    merged,
    new_id,
    now,
    sampling_params,
    until_disconnected,
    usage,
)
from tuneforge.serving.params import Delta, Finished, GenerationRequest, PromptLogprobs, TokenInfo


def _prompts(tokenizer, prompt, max_chars: int) -> list[tuple[str, list[int]]]:
    """(text, token ids) for each prompt: a string, strings, token ids, or lists of token ids."""
    if prompt is None:
        prompt = "<|endoftext|>"
    if isinstance(prompt, str):
        items: list = [prompt]
    elif prompt and all(isinstance(p, int) for p in prompt):
        items = [prompt]
    else:
        items = list(prompt)
    if not items:
        raise bad("'prompt' is empty: send a string, a list of strings, or token ids.", "prompt")
    out = []
    for i, item in enumerate(items):
        where = "prompt" if len(items) == 1 else f"prompt[{i}]"
        if isinstance(item, str):
            if len(item) > max_chars:
                raise bad(f"The {where} has {len(item)} characters, more than this model's context can "
                          f"hold. Please reduce the length of the {where}.", where, "context_length_exceeded")
            ids = tokenizer.encode(item, add_special_tokens=False)
            text = item
        else:
            bad_ids = [t for t in item if not 0 <= t < len(tokenizer)]
            if bad_ids:
                raise bad(f"Invalid token id {bad_ids[0]} in '{where}': ids run from 0 to "
                          f"{len(tokenizer) - 1}.", where)
            ids, text = list(item), tokenizer.decode(item)
        if not ids:
            raise bad(f"'{where}' is empty: send at least one token of text.", where)
        out.append((text, ids))
    return out


def _logprobs(tokens: list[TokenInfo], offset: int) -> dict:
    out: dict[str, list] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for t in tokens:
        lp = None if math.isnan(t.logprob) else t.logprob
        top = None
        if lp is not None:
            top = {text: value for _, text, value in t.top}
            top.setdefault(t.text, lp)  # the sampled token is always among them
        out["tokens"].append(t.text)
        out["token_logprobs"].append(lp)
        out["top_logprobs"].append(top)
        out["text_offset"].append(offset)
        offset += len(t.text)
    return out


async def create_completion(engine: InferenceEngine, body, project: str, is_disconnected):
    """A `text_completion` dict, or (stream) an async iterator of completion chunks."""
    if body.suffix:
        raise bad("'suffix' (insertion) is not supported: tuneforge models only continue a prompt. "
                  "Remove 'suffix' and put the text before the insertion point in 'prompt'.", "suffix")
    n = body.n or 1
    best_of = body.best_of or n
    if best_of < n:
        raise bad(f"'best_of' ({best_of}) must be greater than or equal to 'n' ({n}).", "best_of")
    if body.stream and best_of > n:
        raise bad("'best_of' cannot be used with 'stream': the best candidates are only known at the end. "
                  "Remove one of them.", "best_of")
    if body.stream_options is not None and not body.stream:
        raise bad("'stream_options' is only allowed when 'stream' is true.", "stream_options")
    prepared = await engine.prepare(body.model, project)
    tok = prepared.backend.tokenizer
    prompts = await asyncio.to_thread(_prompts, tok, body.prompt,
                                      max_prompt_chars(prepared.backend.context_length))
    for i, (_, ids) in enumerate(prompts):
        check_context(prepared.backend.context_length, len(ids), body.max_tokens,
                      "prompt" if len(prompts) == 1 else f"prompt[{i}]")
    if body.max_tokens == 0 and not body.echo:
        raise bad("'max_tokens' is 0: set it to at least 1, or use 'echo' to score the prompt.", "max_tokens")
    params = sampling_params(body, body.max_tokens, body.logprobs, False, len(tok))
    echo_lp = bool(body.echo) and body.logprobs is not None
    handles = _submit_all(engine, prepared, body.model, prompts, params, best_of, echo_lp, project)
    prompt_tokens = sum(len(ids) for _, ids in prompts)
    rid, created = new_id("cmpl"), now()
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return _stream(handles, prompts, rid, created, body, n, prompt_tokens, include_usage)
    choices, extras = await until_disconnected(collect(handles, best_of), is_disconnected)
    prompt_lps = {i: ev.tokens for i, ev in extras if isinstance(ev, PromptLogprobs)}
    out = []
    for i, (text, _) in enumerate(prompts):
        candidates = [choices[i * best_of + j] for j in range(best_of)]
        if best_of > n:  # OpenAI: the n with the highest mean log-probability per token
            candidates = sorted(candidates, key=lambda c: c.mean_logprob, reverse=True)[:n]
        for j, c in enumerate(candidates):
            head = text if body.echo else ""
            lp = None
            if body.logprobs is not None:
                lp = _logprobs((prompt_lps.get(i, []) if body.echo else []) + c.tokens, 0)
            out.append({"text": head + c.text, "index": i * n + j, "logprobs": lp,
                        "finish_reason": c.finish_reason})
    completion = sum(c.completion_tokens for c in choices.values())
    return {"id": rid, "object": "text_completion", "created": created, "model": body.model,
            "system_fingerprint": "fp_tuneforge", "choices": out, "usage": usage(prompt_tokens, completion)}


def _submit_all(engine, prepared: Prepared, model, prompts, params, best_of, echo_lp, project):
    handles: list[RequestHandle] = []
    try:
        for _, ids in prompts:
            request = GenerationRequest(model, ids, params, n=best_of, prompt_logprobs=echo_lp,
                                        project=project)
            handles.append(engine.submit(prepared, request))
    except Exception:
        for handle in handles:
            handle.close()
        raise
    return handles


async def _stream(handles, prompts, rid, created, body, n, prompt_tokens,
                  include_usage) -> AsyncIterator[dict]:
    def chunk(index: int, text: str, logprobs=None, finish=None) -> dict:
        data = {"id": rid, "object": "text_completion", "created": created, "model": body.model,
                "system_fingerprint": "fp_tuneforge",
                "choices": [{"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish}]}
        if include_usage:
            data["usage"] = None
        return data

    want_lp = body.logprobs is not None
    offsets = {}
    if body.echo and not want_lp:
        for i, (text, _) in enumerate(prompts):
            for j in range(n):
                yield chunk(i * n + j, text)
                offsets[i * n + j] = len(text)
    completion = 0
    async for i, event in merged(handles):
        if isinstance(event, PromptLogprobs):
            for j in range(n):
                offsets[i * n + j] = len(prompts[i][0])
                yield chunk(i * n + j, prompts[i][0], _logprobs(event.tokens, 0))
        elif isinstance(event, Delta):
            index = i * n + event.index
            lp = _logprobs(event.tokens, offsets.get(index, 0)) if want_lp else None
            offsets[index] = offsets.get(index, 0) + len(event.text)
            yield chunk(index, event.text, lp)
        elif isinstance(event, Finished):
            completion += event.completion_tokens
            yield chunk(i * n + event.index, "", None, event.finish_reason)
    if include_usage:
        yield {"id": rid, "object": "text_completion", "created": created, "model": body.model,
               "system_fingerprint": "fp_tuneforge", "choices": [],
               "usage": usage(prompt_tokens, completion)}
