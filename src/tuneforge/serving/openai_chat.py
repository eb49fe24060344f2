"""`/v1/chat/completions`: the model's own chat template, OpenAI's response and chunk shapes."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator

from tuneforge.data import tool_calls
from tuneforge.serving import tools as toolkit
from tuneforge.serving.engine import InferenceEngine
from tuneforge.serving.grammar import compile_schema
from tuneforge.serving.openai_common import (
    bad,
    check_context,
    collect,
    max_prompt_chars,
    merged,
    new_id,
    now,
    sampling_params,
    token_bytes,
    until_disconnected,
    usage,
)
from tuneforge.serving.params import Delta, Finished, GenerationRequest, TokenInfo
from tuneforge.serving.sampler import enforcer_data

_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
_FALLBACK_TEMPLATE = (  # ChatML, for models that ship without a chat template
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _text(content, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad(f"Invalid '{where}': expected a string or an array of content parts.", where)
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text" or not isinstance(part.get("text"), str):
            raise bad(f"Invalid content part '{where}[{j}]' (type {kind!r}): this model reads text only; "
                      "send parts of type 'text'.", f"{where}[{j}]")
        texts.append(part["text"])
    return "".join(texts)


def chat_rows(messages: list[dict], max_chars: int | None = None) -> list[dict]:
    """The messages as the chat template reads them; wrong roles or content are a 400 naming the field,
    and text longer than the model could ever read is refused before it is tokenized."""
    rows, total = [], 0
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise bad(f"Invalid 'messages[{i}]': expected an object with 'role' and 'content'.",
                      f"messages[{i}]")
        role = m.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise bad(f"Invalid value for 'messages[{i}].role': {role!r}. Use one of: "
                      f"{', '.join(sorted(_ROLES))}.", f"messages[{i}].role")
        if m.get("content") is None and role != "assistant":
            raise bad(f"Missing 'messages[{i}].content': every {role} message needs content.",
                      f"messages[{i}].content")
        text = _text(m.get("content"), f"messages[{i}].content")
        total += len(text)
        if max_chars is not None and total > max_chars:
            raise bad(f"The messages have over {max_chars} characters, more than this model's context "
                      "can hold. Please reduce the length of the messages.", "messages",
                      "context_length_exceeded")
        row = {"role": "system" if role == "developer" else role, "content": text}
        row.update(_tool_fields(m, i))
        rows.append(row)
    return rows


def _tool_fields(m: dict, i: int) -> dict:
    """The tool-call fields of a request message (multi-turn tool use), checked enough to render."""
    out = {}
    calls = m.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list) or not all(
                isinstance(c, dict) and isinstance(c.get("function"), dict)
                and isinstance(c["function"].get("name"), str) for c in calls):
            raise bad(f"Invalid 'messages[{i}].tool_calls': expected an array of "
                      '{"id", "type": "function", "function": {"name", "arguments"}}.',
                      f"messages[{i}].tool_calls")
        out["tool_calls"] = calls
    fc = m.get("function_call")
    if fc is not None:
        if not isinstance(fc, dict) or not isinstance(fc.get("name"), str):
            raise bad(f"Invalid 'messages[{i}].function_call': expected {{\"name\", \"arguments\"}}.",
                      f"messages[{i}].function_call")
        out["function_call"] = fc
    for key in ("tool_call_id", "name"):
        if isinstance(m.get(key), str):
            out[key] = m[key]
    return out


def chat_prompt_text(tokenizer, messages: list[dict], tools: list[dict] | None = None) -> str:
    """The prompt as the model reads it; tool conversations in data/tool_calls.py's format (training's)."""
    rows = chat_rows(messages)
    template = None if tokenizer.chat_template else _FALLBACK_TEMPLATE
    if tool_calls.uses_tools(rows, tools or []):
        rows, kwarg, _ = tool_calls.template_rows(tokenizer, rows, tools or [])
        return tool_calls.render(tokenizer, rows, kwarg, True, template)
    return tokenizer.apply_chat_template(rows, add_generation_prompt=True, tokenize=False,
                                         chat_template=template)


def chat_prompt_ids(tokenizer, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
    return tokenizer.encode(chat_prompt_text(tokenizer, messages, tools), add_special_tokens=False)


def _json_schema(body) -> dict | None:
    """The JSON schema the response_format asks for (any object for json_object), or None: no JSON."""
    fmt = body.response_format.type if body.response_format else "text"
    if fmt == "text":
        return None
    schema = {"type": "object"}
    if fmt == "json_schema":
        spec = body.response_format.json_schema or {}
        if spec.get("schema") not in (None, {}):  # none or empty: any JSON object, as before
            schema = spec["schema"]
    return schema


async def _json_parser(schema: dict | None, tokenizer):
    """The schema's parser, compiled off the event loop and the engine thread (None: no JSON)."""
    if schema is None:
        return None
    if importlib.util.find_spec("lmformatenforcer") is None:
        raise bad("response_format json needs the lm-format-enforcer package on the server: "
                  "`pip install lm-format-enforcer`, or drop 'response_format'.", "response_format")
    await asyncio.to_thread(enforcer_data, tokenizer)  # decodes the vocabulary once per tokenizer
    return await compile_schema(schema)


async def _constraint(prepared, body, spec, tok) -> tuple[object | None, dict | None]:
    """(parser, schema) constraining the output: a forced tool call or response_format JSON. A
    request-level backend (vLLM) takes the schema and applies its own structured outputs."""
    schema = _json_schema(body)
    if prepared.backend.remote:
        if spec and spec.choice in ("required", "named"):
            raise bad("A forced 'tool_choice' (required, or a named function) is not served by the vLLM "
                      "backend: use tool_choice 'auto', or serve this model with llama.cpp or pytorch.",
                      "tool_choice")
        return None, schema
    parser = await toolkit.constrained_parser(spec, tok) if spec else None
    return parser or await _json_parser(schema, tok), schema


def _logprob_entry(t: TokenInfo) -> dict:
    return {"token": t.text, "logprob": t.logprob, "bytes": token_bytes(t.text),
            "top_logprobs": [{"token": s, "logprob": lp, "bytes": token_bytes(s)} for _, s, lp in t.top]}


async def create_chat(engine: InferenceEngine, body, project: str, is_disconnected):
    """A `chat.completion` dict, or (stream) an async iterator of `chat.completion.chunk` dicts."""
    if body.top_logprobs is not None and not body.logprobs:
        raise bad("'top_logprobs' requires 'logprobs' to be true.", "top_logprobs")
    if body.stream_options is not None and not body.stream:
        raise bad("'stream_options' is only allowed when 'stream' is true.", "stream_options")
    prepared = await engine.prepare(body.model, project)
    tok = prepared.backend.tokenizer
    chat_rows(body.messages, max_prompt_chars(prepared.backend.context_length))  # cheap checks first
    spec = toolkit.tool_spec(body)
    prompt_tools = spec.prompt_tools if spec else None
    prompt_ids = await asyncio.to_thread(chat_prompt_ids, tok, body.messages, prompt_tools)
    max_tokens = body.max_completion_tokens or body.max_tokens
    check_context(prepared.backend.context_length, len(prompt_ids), max_tokens, "messages")
    max_tokens = max_tokens or engine.settings.default_max_tokens  # the server's cap; the context clamps it
    logprobs = (body.top_logprobs or 0) if body.logprobs else None
    parser, schema = await _constraint(prepared, body, spec, tok)
    params = sampling_params(body, max_tokens, logprobs, parser is not None or schema is not None, len(tok),
                             schema)
    params.json_parser = parser
    n = body.n or 1
    handle = engine.submit(prepared, GenerationRequest(body.model, prompt_ids, params, n=n, project=project))
    rid, created = new_id("chatcmpl"), now()
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        calling = spec if spec and spec.choice != "none" else None
        return _stream(handle, rid, created, body.model, n, len(prompt_ids), include_usage, body.logprobs,
                       calling)
    choices, _ = await until_disconnected(collect([handle], n), is_disconnected)
    out = []
    for i in range(n):
        c = choices[i]
        lp = {"content": [_logprob_entry(t) for t in c.tokens], "refusal": None} if body.logprobs else None
        message = {"role": "assistant", "content": c.text, "refusal": None, "annotations": []}
        reason = c.finish_reason
        if spec and spec.choice != "none":
            message["content"], calls = toolkit.split_output(c.text, spec)
            if calls:
                message.update(toolkit.message_fields(calls, spec.legacy))
            reason = toolkit.finish_reason(calls, reason, spec.legacy)
        out.append({"index": i, "message": message, "logprobs": lp, "finish_reason": reason})
    completion = sum(c.completion_tokens for c in choices.values())
    return {"id": rid, "object": "chat.completion", "created": created, "model": body.model, "choices": out,
            "usage": usage(len(prompt_ids), completion), "service_tier": "default",
            "system_fingerprint": "fp_tuneforge"}


async def _stream(handle, rid: str, created: int, model: str, n: int, prompt_tokens: int,
                  include_usage: bool, want_logprobs: bool, spec=None) -> AsyncIterator[dict]:
    def chunk(choices: list[dict]) -> dict:
        data = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": "fp_tuneforge", "choices": choices}
        if include_usage:
            data["usage"] = None
        return data

    for i in range(n):
        yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                      "finish_reason": None}])
    completion = 0
    readers = {i: toolkit.ToolStream(spec.names, spec.parallel) for i in range(n)} if spec else {}
    async for _, event in merged([handle]):
        if isinstance(event, Delta):
            lp = {"content": [_logprob_entry(t) for t in event.tokens], "refusal": None} if want_logprobs \
                else None
            if spec:
                for delta in _tool_deltas(readers[event.index], readers[event.index].feed(event.text), spec):
                    yield chunk([{"index": event.index, "delta": delta, "logprobs": None,
                                  "finish_reason": None}])
            elif event.text or lp:
                yield chunk([{"index": event.index, "delta": {"content": event.text}, "logprobs": lp,
                              "finish_reason": None}])
        elif isinstance(event, Finished):
            completion += event.completion_tokens
            reason = event.finish_reason
            if spec:
                reader = readers[event.index]
                for delta in _tool_deltas(reader, reader.finish(), spec):
                    yield chunk([{"index": event.index, "delta": delta, "logprobs": None,
                                  "finish_reason": None}])
                reason = toolkit.finish_reason(reader.calls, reason, spec.legacy)
            yield chunk([{"index": event.index, "delta": {}, "logprobs": None, "finish_reason": reason}])
    if include_usage:
        yield {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
               "system_fingerprint": "fp_tuneforge", "choices": [], "usage": usage(prompt_tokens, completion)}


def _tool_deltas(reader, events: list, spec) -> list[dict]:
    out = []
    for kind, value in events:
        if kind == "content":
            out.append({"content": value})
        else:
            out += toolkit.call_deltas(value, reader.calls.index(value), spec.legacy)
    return out
