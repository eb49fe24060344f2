"""The row formats tuneforge trains on, as checks over one parsed JSONL row.

Formats (OpenAI's, see docs/data.md): chat `{"messages": [...], "tools"?, "parallel_tool_calls"?,
"functions"?}`, legacy `{"prompt", "completion"}`, and DPO `{"input": {"messages"}, "preferred_output": [msg],
"non_preferred_output": [msg]}` (also the older `*_completion` names). Each check reports to a collector with
the line and the field path, and carries on, so one pass finds every problem in a row.
"""

from __future__ import annotations

import json
from collections.abc import Callable

CHAT, LEGACY, DPO, UNKNOWN = "chat", "legacy", "dpo", "unknown"

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_MESSAGE_KEYS = {"role", "content", "name"}
_ROLE_KEYS = {
    "assistant": {"tool_calls", "function_call", "weight", "refusal"},
    "tool": {"tool_call_id"},
}
CHAT_KEYS = {"messages", "tools", "parallel_tool_calls", "functions"}
LEGACY_KEYS = {"prompt", "completion"}
DPO_KEYS = {
    "input",
    "preferred_output",
    "non_preferred_output",
    "preferred_completion",
    "non_preferred_completion",
}
_UNSUPPORTED_PARTS = {"image_url": "image", "input_audio": "audio", "file": "file", "input_image": "image"}

# add(code, message, field)
Report = Callable[[str, str, str | None], None]


def _type_name(value: object) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def detect_format(row: dict) -> str:
    """Which format a row is meant to be, judged by its keys (case-insensitively, so typos still count)."""
    keys = {str(k).lower() for k in row}
    if "messages" in keys:
        return CHAT
    if "input" in keys and keys & {"preferred_output", "preferred_completion", "non_preferred_output"}:
        return DPO
    if keys & LEGACY_KEYS:
        return LEGACY
    return UNKNOWN


def _case_fixes(row: dict, expected: set[str], add: Report) -> dict:
    """Report keys like `Prompt` for `prompt`; return the row as if they were spelled right."""
    fixed = {}
    for key, value in row.items():
        lower = str(key).lower()
        if key not in expected and lower in expected:
            add("wrong_case_key", f"key `{key}` should be `{lower}` (keys are case-sensitive).", str(key))
            fixed[lower] = value
        else:
            fixed[key] = value
    return fixed


def _unknown_keys(row: dict, allowed: set[str], add: Report, kind: str) -> None:
    for key in row:
        if key not in allowed and str(key).lower() not in allowed:
            add(
                "unknown_key",
                f"key `{key}` is not part of the {kind} format and will be ignored "
                f"(expected {', '.join(sorted(allowed))}).",
                str(key),
            )


def check_row(row: dict, add: Report, method: str = "supervised") -> str:
    """Check one row; returns its format (chat/legacy/dpo/unknown)."""
    fmt = detect_format(row)
    if fmt == CHAT:
        row = _case_fixes(row, CHAT_KEYS, add)
        _unknown_keys(row, CHAT_KEYS, add, "chat")
        check_chat(row, add)
    elif fmt == LEGACY:
        row = _case_fixes(row, LEGACY_KEYS, add)
        _unknown_keys(row, LEGACY_KEYS, add, "prompt/completion")
        check_legacy(row, add)
    elif fmt == DPO:
        row = _case_fixes(row, DPO_KEYS, add)
        _unknown_keys(row, DPO_KEYS, add, "DPO")
        check_dpo(row, add)
    else:
        keys = ", ".join(f"`{k}`" for k in list(row)[:6]) or "no keys"
        add(
            "unknown_format",
            f"the object has {keys}; expected `messages` (chat), `prompt` and `completion` "
            "(legacy) or `input` and `preferred_output` (DPO).",
            None,
        )
    return fmt


def check_legacy(row: dict, add: Report) -> None:
    for key in ("prompt", "completion"):
        if key not in row:
            add(
                "missing_field",
                f"`{key}` is missing; every legacy row needs `prompt` and `completion` "
                "(the prompt may be an empty string).",
                key,
            )
        elif not isinstance(row[key], str):
            add("wrong_type", f"`{key}` must be a string, not {_type_name(row[key])}.", key)
    if isinstance(row.get("completion"), str) and not row["completion"].strip():
        add(
            "empty_completion",
            "`completion` is empty; there is nothing to learn from this row. Remove it.",
            "completion",
        )


def check_chat(row: dict, add: Report, need_assistant: bool = True, path: str = "messages") -> None:
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        if messages is None or messages == []:
            add("missing_messages", "`messages` is missing or empty; add a list of chat messages.", path)
        else:
            add("wrong_type", f"`messages` must be a list of messages, not {_type_name(messages)}.", path)
        return
    call_ids: set[str] = set()
    for i, message in enumerate(messages):
        _check_message(message, f"{path}[{i}]", add, call_ids)
    _check_tools(row, add)
    roles = [m.get("role") for m in messages if isinstance(m, dict)]
    if not need_assistant:
        return
    if "assistant" not in roles:
        add(
            "missing_assistant",
            "no assistant message: add the answer you want the model to learn "
            'as a {"role": "assistant"} message.',
            path,
        )
        return
    trained = [
        m
        for m in messages
        if isinstance(m, dict) and m.get("role") == "assistant" and m.get("weight", 1) != 0
    ]
    if not trained:
        add(
            "no_trained_messages",
            "every assistant message has `weight: 0`, so this example trains nothing. "
            "Set `weight: 1` on at least one.",
            path,
        )
    last = max(i for i, r in enumerate(roles) if r == "assistant")
    if last < len(roles) - 1:
        add(
            "trailing_messages",
            f"{len(roles) - 1 - last} message(s) after the last assistant turn are never "
            "trained; end the example with the assistant's answer.",
            f"{path}[{last + 1}]",
        )


def _check_message(message: object, where: str, add: Report, call_ids: set[str]) -> None:
    if not isinstance(message, dict):
        add("wrong_type", f"each message must be an object, not {_type_name(message)}.", where)
        return
    role = message.get("role")
    if "role" not in message:
        add(
            "missing_role",
            "the message has no `role` (OpenAI: \"Discriminator 'role' is missing in value\").",
            f"{where}.role",
        )
        return
    if not isinstance(role, str):
        add("wrong_type", f"`role` must be a string, not {_type_name(role)}.", f"{where}.role")
        return
    if role not in ROLES:
        hint = f" Did you mean `{role.strip().lower()}`?" if role.strip().lower() in ROLES else ""
        add("unknown_role", f"role `{role}` is not one of {', '.join(ROLES)}.{hint}", f"{where}.role")
        return
    allowed = _MESSAGE_KEYS | _ROLE_KEYS.get(role, set())
    for key in message:
        if key not in allowed:
            add(
                "unknown_message_key",
                f"key `{key}` is not allowed on a {role} message (allowed: {', '.join(sorted(allowed))}).",
                f"{where}.{key}",
            )
    if "weight" in message and role == "assistant":
        weight = message["weight"]
        if isinstance(weight, bool) or weight not in (0, 1):
            add("invalid_weight", f"`weight` must be 0 or 1, not {json.dumps(weight)}.", f"{where}.weight")
    has_call = bool(message.get("tool_calls") or message.get("function_call"))
    if role == "assistant":
        _check_tool_calls(message, where, add, call_ids)
    if role == "tool":
        tcid = message.get("tool_call_id")
        if not isinstance(tcid, str) or not tcid:
            add(
                "invalid_tool_call",
                "a tool message needs `tool_call_id`, the id of the call it answers.",
                f"{where}.tool_call_id",
            )
        elif tcid not in call_ids:
            add(
                "invalid_tool_call",
                f"`tool_call_id` {tcid!r} matches no earlier assistant tool call.",
                f"{where}.tool_call_id",
            )
    if role == "function" and not isinstance(message.get("name"), str):
        add("missing_field", "a function message needs `name`.", f"{where}.name")
    _check_content(message, role, has_call, where, add)


def _check_content(message: dict, role: str, has_call: bool, where: str, add: Report) -> None:
    field = f"{where}.content"
    if "content" not in message or message["content"] is None:
        if not (role == "assistant" and has_call):
            add("missing_content", f"the {role} message has no `content`; add the text.", field)
        return
    content = message["content"]
    if isinstance(content, str):
        if not content.strip() and not has_call:
            add(
                "empty_content",
                f"the {role} message's content is empty; write the text or drop the message.",
                field,
            )
        return
    if not isinstance(content, list):
        add(
            "wrong_type",
            f"`content` must be a string or a list of content parts, not {_type_name(content)}.",
            field,
        )
        return
    text = ""
    for j, part in enumerate(content):
        ptype = part.get("type") if isinstance(part, dict) else None
        if ptype == "text" and isinstance(part.get("text"), str):
            text += part["text"]
        elif ptype in _UNSUPPORTED_PARTS:
            add(
                "unsupported_content",
                f"{_UNSUPPORTED_PARTS[ptype]} input is not supported: the base models "
                "here read text only. Remove the part or describe it in text.",
                f"{field}[{j}]",
            )
        else:
            add("wrong_type", 'a content part must be {"type": "text", "text": "..."}.', f"{field}[{j}]")
    if (
        not text.strip()
        and not has_call
        and not any(isinstance(p, dict) and p.get("type") in _UNSUPPORTED_PARTS for p in content)
    ):
        add("empty_content", f"the {role} message's content is empty.", field)


def _check_tool_calls(message: dict, where: str, add: Report, call_ids: set[str]) -> None:
    calls = message.get("tool_calls")
    if calls is None:
        return
    if not isinstance(calls, list):
        add("invalid_tool_call", "`tool_calls` must be a list.", f"{where}.tool_calls")
        return
    for k, call in enumerate(calls):
        at = f"{where}.tool_calls[{k}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            add(
                "invalid_tool_call",
                'a tool call needs {"id", "type": "function", "function": {"name", "arguments"}}.',
                at,
            )
            continue
        if isinstance(call.get("id"), str):
            call_ids.add(call["id"])
        args = fn.get("arguments")
        try:
            if not isinstance(args, str):
                raise TypeError
            json.loads(args)
        except (TypeError, ValueError):
            add(
                "invalid_tool_call",
                '`arguments` must be a string holding JSON, e.g. "{\\"city\\": \\"Paris\\"}".',
                f"{at}.function.arguments",
            )


def _check_tools(row: dict, add: Report) -> None:
    tools = row.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        add(
            "invalid_tool_call", '`tools` must be a list of {"type": "function", "function": {...}}.', "tools"
        )
        return
    for k, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            add(
                "invalid_tool_call",
                'each tool needs {"type": "function", "function": {"name", "description", "parameters"}}.',
                f"tools[{k}]",
            )


def check_dpo(row: dict, add: Report) -> None:
    inp = row.get("input")
    if not isinstance(inp, dict):
        add(
            "missing_field" if inp is None else "wrong_type",
            "`input` must be an object holding the prompt `messages`.",
            "input",
        )
    else:
        check_chat(inp, add, need_assistant=False, path="input.messages")
    for new, old in (
        ("preferred_output", "preferred_completion"),
        ("non_preferred_output", "non_preferred_completion"),
    ):
        key = new if new in row else old if old in row else None
        if key is None:
            add("missing_field", f"`{new}` is missing: a list with the one assistant message.", new)
            continue
        if key == old:
            add("legacy_dpo_names", f"`{old}` is the 2025 name; it is read as `{new}`.", old)
        out = row[key]
        if not (
            isinstance(out, list)
            and len(out) == 1
            and isinstance(out[0], dict)
            and out[0].get("role") == "assistant"
        ):
            add("invalid_preference", f"`{key}` must be a list of exactly one assistant message.", key)
            continue
        _check_content(out[0], "assistant", bool(out[0].get("tool_calls")), f"{key}[0]", add)
