"""The one tool-call format, shared by training (data/encode.py) and serving (serving/tools.py).

If the tokenizer's chat template renders tools itself (it mentions both `tools` and `tool_calls`), the
conversation goes through it: `tools=` is passed and assistant calls stay structured. Otherwise (SmolLM2's
ChatML template, for one) the fallback below is used, the same text at training and at inference:

- the tool list is a block appended to the system message (a system message is added when there is none);
- an assistant call is `<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`, one block per call,
  after the message's text if it has any;
- a tool result (role `tool`, or the deprecated `function`) is a user turn
  `<tool_response id="call_..." name="...">\\n...\\n</tool_response>`.
"""

from __future__ import annotations

import json

OPEN, CLOSE = "<tool_call>", "</tool_call>"

_TOOLS_BLOCK = (
    "# Tools\n\nYou can call the functions below. Each line inside <tools></tools> is the JSON signature of "
    "one function:\n<tools>\n{signatures}\n</tools>\n\nTo call a function, reply with a "
    "<tool_call></tool_call> block holding a JSON object with the function's name and arguments, one "
    "block per call:\n"
    f"{OPEN}\n{{\"name\": \"<function name>\", \"arguments\": {{\"<argument>\": \"<value>\"}}}}\n{CLOSE}"
)


def declared_tools(tools, functions=None) -> list[dict]:
    """`tools`, or the deprecated `functions` turned into tools; [] when neither is given."""
    if tools:
        return [t for t in tools if isinstance(t, dict)]
    return [{"type": "function", "function": f} for f in functions or () if isinstance(f, dict)]


def uses_tools(messages: list[dict], tools: list[dict]) -> bool:
    return bool(tools) or any(
        isinstance(m, dict) and (m.get("role") in ("tool", "function") or m.get("tool_calls")
                                 or m.get("function_call")) for m in messages)


def native(tokenizer) -> bool:
    """Whether the tokenizer's own chat template renders tools and tool calls."""
    template = getattr(tokenizer, "chat_template", None)
    return isinstance(template, str) and "tools" in template and "tool_calls" in template


def _text(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict))


def _arguments(raw):
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw if raw is not None else {}


def _calls(message: dict) -> list[dict]:
    """The message's calls as [{"id", "name", "arguments"(parsed)}]."""
    out = []
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        args = _arguments(fn.get("arguments"))
        out.append({"id": call.get("id"), "name": fn.get("name"), "arguments": args})
    if message.get("function_call"):
        fn = message["function_call"]
        out.append({"id": None, "name": fn.get("name"), "arguments": _arguments(fn.get("arguments"))})
    return out


def call_text(name: str, arguments) -> str:
    """One call in the fallback format: what the model is trained to write and what serving parses."""
    return f"{OPEN}\n{json.dumps({'name': name, 'arguments': arguments}, ensure_ascii=False)}\n{CLOSE}"


def _fallback_rows(messages: list[dict], tools: list[dict]) -> tuple[list[dict], int]:
    rows, names = [], {}
    for m in messages:
        role = "system" if m.get("role") == "developer" else m.get("role")
        text = _text(m.get("content"))
        if role == "assistant":
            calls = _calls(m)
            names.update({c["id"]: c["name"] for c in calls if c["id"]})
            parts = ([text] if text else []) + [call_text(c["name"], c["arguments"]) for c in calls]
            rows.append({"role": "assistant", "content": "\n".join(parts)})
        elif role in ("tool", "function"):
            cid = m.get("tool_call_id")
            name = m.get("name") or names.get(cid)
            attrs = (f' id="{cid}"' if cid else "") + (f' name="{name}"' if name else "")
            rows.append({"role": "user", "content": f"<tool_response{attrs}>\n{text}\n</tool_response>"})
        else:
            rows.append({"role": role, "content": text})
    offset = 0
    if tools:
        signatures = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
        block = _TOOLS_BLOCK.replace("{signatures}", signatures)
        if rows and rows[0]["role"] == "system":
            rows[0] = {"role": "system", "content": f"{rows[0]['content']}\n\n{block}".lstrip()}
        else:
            rows.insert(0, {"role": "system", "content": block})
            offset = 1
    return rows, offset


def _native_rows(messages: list[dict]) -> list[dict]:
    rows = []
    for m in messages:
        row = {"role": "system" if m.get("role") == "developer" else m.get("role"),
               "content": _text(m.get("content"))}
        calls = _calls(m)
        if calls:
            row["tool_calls"] = [{"id": c["id"], "type": "function", "function": {
                "name": c["name"], "arguments": c["arguments"]}} for c in calls]
        for key in ("tool_call_id", "name"):
            if m.get(key):
                row[key] = m[key]
        rows.append(row)
    return rows


def template_rows(tokenizer, messages: list[dict], tools: list[dict]) -> tuple[list[dict], list | None, int]:
    """(rows for the chat template, its `tools=` argument, rows added before messages[0])."""
    if native(tokenizer):
        return _native_rows(messages), tools or None, 0
    rows, offset = _fallback_rows(messages, tools)
    return rows, None, offset


def render(tokenizer, rows: list[dict], tools: list | None, generation_prompt: bool,
           chat_template: str | None = None) -> str:
    kwargs = {"tools": tools} if tools else {}
    return tokenizer.apply_chat_template(rows, tokenize=False, add_generation_prompt=generation_prompt,
                                         chat_template=chat_template, **kwargs)
