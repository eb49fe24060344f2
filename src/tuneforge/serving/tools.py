"""Tool calls in `/v1/chat/completions`: the request's choice, the constrained grammar for `required` and a
named function, and parsing the model's output (whole or streamed) into OpenAI's `tool_calls`.

The format is data/tool_calls.py's (the one training uses). Output that is not a well-formed call to a
declared function (JSON that does not parse, an unknown name, arguments that are not an object) is
returned as plain text content with the model's own finish reason, as vLLM's tool parsers do; arguments
are not checked against the function's schema in `auto` mode (vLLM does not either). `required` and a
named function constrain decoding, so the call and its arguments follow the schema.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

from tuneforge.data.tool_calls import CLOSE, OPEN, declared_tools, native
from tuneforge.serving.openai_common import bad


@dataclass
class ToolSpec:
    """What the request asks for: the declared tools, the choice, and the response shape."""

    tools: list[dict]
    choice: str = "auto"  # none | auto | required | named
    name: str | None = None  # the forced function when choice is named
    parallel: bool = True
    legacy: bool = False  # deprecated `functions`: answer with `function_call`

    @property
    def names(self) -> set[str]:
        return {t["function"]["name"] for t in self.tools}

    @property
    def prompt_tools(self) -> list[dict]:
        return [] if self.choice == "none" else self.tools


def tool_spec(body) -> ToolSpec | None:
    tools = declared_tools(body.tools, body.functions)
    choice = body.function_call if body.functions and not body.tools else body.tool_choice
    legacy = not body.tools and bool(body.functions)
    if not tools:
        if isinstance(choice, dict) or choice == "required":
            raise bad("'tool_choice' requires 'tools': declare the functions the model may call.",
                      "tool_choice")
        return None
    spec = ToolSpec(tools, parallel=body.parallel_tool_calls is not False and not legacy, legacy=legacy)
    if isinstance(choice, dict):
        spec.choice, spec.name = "named", (choice.get("function") or choice)["name"]
    elif choice in ("none", "auto", "required"):
        spec.choice = choice
    return spec


def _call_schema(tool: dict) -> dict:
    fn = tool["function"]
    params = fn.get("parameters") or {"type": "object", "properties": {}}
    return {"type": "object", "properties": {"name": {"type": "string", "enum": [fn["name"]]},
                                             "arguments": params}, "required": ["name", "arguments"]}


async def constrained_parser(spec: ToolSpec, tokenizer):
    """The enforcer's parser for one call to the allowed function(s) (None when nothing is forced)."""
    if spec.choice not in ("required", "named"):
        return None
    import asyncio

    from lmformatenforcer import JsonSchemaParser
    from lmformatenforcer.characterlevelparser import CharacterLevelParserConfig, SequenceParser, StringParser

    from tuneforge.serving.grammar import compile_schema
    from tuneforge.serving.params import ServingError
    from tuneforge.serving.sampler import enforcer_data

    allowed = [t for t in spec.tools if spec.choice == "required" or t["function"]["name"] == spec.name]
    schemas = [_call_schema(t) for t in allowed]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    try:  # checks the schema and compiles its patterns off the engine thread
        await compile_schema(schema)
    except ServingError as exc:
        raise bad(str(exc).replace("'response_format'", "'tools'"), "tools") from None
    # One space at most between JSON tokens, "name" before "arguments": the trained layout.
    config = CharacterLevelParserConfig(max_consecutive_whitespaces=1, force_json_field_order=True)
    json_parser = JsonSchemaParser(schema, config=config)
    await asyncio.to_thread(enforcer_data, tokenizer)
    if native(tokenizer):
        return json_parser
    return SequenceParser([StringParser(OPEN + "\n"), json_parser, StringParser("\n" + CLOSE)])


@dataclass
class Call:
    id: str
    name: str
    arguments: str  # a JSON string, as OpenAI sends it


def _parse_call(raw: str, names: set[str]) -> Call | None:
    try:
        obj = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    args = obj.get("arguments", obj.get("parameters"))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            return None
    if obj.get("name") not in names or not isinstance(args, dict):
        return None
    return Call(f"call_{secrets.token_hex(12)}", obj["name"],
                json.dumps(args, ensure_ascii=False, separators=(",", ":")))


@dataclass
class ToolStream:
    """Reads the model's text as it comes and sends out ("content", text) or ("call", Call) events.
    Text streams as soon as it cannot be the start of a `<tool_call>`; a call goes out once its block
    closes (or the output ends). A bare JSON answer `{"name": ..., "arguments": ...}` counts too."""

    names: set[str]
    parallel: bool = True
    buffer: str = ""
    in_call: bool = False
    started: bool = False  # any text seen (a bare-JSON answer must start the output)
    bare: bool = False
    calls: list[Call] = field(default_factory=list)

    def _call(self, call: Call) -> list[tuple[str, object]]:
        if self.calls and not self.parallel:
            return []
        self.calls.append(call)
        return [("call", call)]

    def feed(self, text: str) -> list[tuple[str, object]]:
        self.buffer += text
        out: list[tuple[str, object]] = []
        if not self.started and self.buffer.strip():
            self.started = True
            self.bare = self.buffer.lstrip().startswith("{")
        if self.bare:
            return out
        while True:
            if self.in_call:
                end = self.buffer.find(CLOSE)
                if end < 0:
                    return out
                raw, self.buffer, self.in_call = self.buffer[:end], self.buffer[end + len(CLOSE):], False
                call = _parse_call(raw, self.names)
                out += self._call(call) if call else [("content", OPEN + raw + CLOSE)]
                continue
            start = self.buffer.find(OPEN)
            if start >= 0:
                if self.buffer[:start].strip():
                    out.append(("content", self.buffer[:start]))
                self.buffer, self.in_call = self.buffer[start + len(OPEN):], True
                continue
            keep = next((k for k in range(min(len(OPEN) - 1, len(self.buffer)), 0, -1)
                         if OPEN.startswith(self.buffer[-k:])), 0)
            piece = self.buffer[: len(self.buffer) - keep]
            if piece.strip():  # whitespace waits: it may only separate two calls
                out.append(("content", piece))
                self.buffer = self.buffer[len(piece):]
            return out

    def finish(self) -> list[tuple[str, object]]:
        rest, self.buffer = self.buffer, ""
        if self.bare:
            call = _parse_call(rest, self.names)
            return self._call(call) if call else [("content", rest)]
        if self.in_call:
            call = _parse_call(rest.strip(), self.names)
            return self._call(call) if call else [("content", OPEN + rest)]
        return [("content", rest)] if rest and not (self.calls and not rest.strip()) else []


def split_output(text: str, spec: ToolSpec) -> tuple[str | None, list[Call]]:
    """(content or None, calls) of a whole answer."""
    stream = ToolStream(spec.names, spec.parallel)
    events = stream.feed(text) + stream.finish()
    content = "".join(v for k, v in events if k == "content")
    calls = [v for k, v in events if k == "call"]
    if calls and not content.strip():
        return None, calls
    return content, calls


def message_fields(calls: list[Call], legacy: bool) -> dict:
    if legacy:
        return {"function_call": {"name": calls[0].name, "arguments": calls[0].arguments}}
    return {"tool_calls": [{"id": c.id, "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments}} for c in calls]}


ARG_FRAGMENT = 24  # characters of arguments per streamed delta


def call_deltas(call: Call, index: int, legacy: bool) -> list[dict]:
    """The deltas of one streamed call: id, type and name with empty arguments, then argument pieces."""
    pieces = [call.arguments[i:i + ARG_FRAGMENT] for i in range(0, len(call.arguments), ARG_FRAGMENT)]
    if legacy:
        return [{"function_call": {"name": call.name, "arguments": ""}}] + [
            {"function_call": {"arguments": p}} for p in pieces]
    first = {"index": index, "id": call.id, "type": "function",
             "function": {"name": call.name, "arguments": ""}}
    return [{"tool_calls": [first]}] + [{"tool_calls": [{"index": index, "function": {"arguments": p}}]}
                                        for p in pieces]


def finish_reason(calls: list[Call], model_reason: str, legacy: bool) -> str:
    if not calls:
        return model_reason
    return "function_call" if legacy else "tool_calls"
