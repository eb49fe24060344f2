"""Tool calling in `/v1/chat/completions` through the current `openai` SDK, on the tiny random model: a
named or required choice is constrained to a valid call (plain and streamed), `none` answers in text, bad
tools are a 400 in OpenAI's shape, and the output parser follows the documented rules."""

from __future__ import annotations

import json

import openai
import pytest
from servekit import FT_ID

from tuneforge.serving.tools import ToolSpec, ToolStream, split_output

TOOLS = [
    {"type": "function", "function": {
        "name": "get_order_status", "description": "Look up an order",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string", "maxLength": 8}},
                       "required": ["order_id"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "reset_password", "parameters": {
            "type": "object", "properties": {"email": {"type": "string", "maxLength": 12}},
            "required": ["email"], "additionalProperties": False}}},
]
MESSAGES = [{"role": "user", "content": "Where is order A1?"}]
NAMED = {"type": "function", "function": {"name": "reset_password"}}


def _args(call) -> dict:
    args = json.loads(call.function.arguments)
    assert isinstance(args, dict)
    return args


def test_named_tool_choice_returns_a_valid_call(client):
    r = client.chat.completions.create(model=FT_ID, messages=MESSAGES, tools=TOOLS, tool_choice=NAMED,
                                       temperature=0, max_tokens=60)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message.content
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "reset_password" and set(_args(call)) == {"email"}


def test_named_tool_choice_streams_deltas_the_sdk_accumulates(client):
    with client.chat.completions.stream(model=FT_ID, messages=MESSAGES, tools=TOOLS, tool_choice=NAMED,
                                        temperature=0, max_tokens=60) as stream:
        deltas = [e.chunk for e in stream if e.type == "chunk"]
        final = stream.get_final_completion()
    firsts = [c.choices[0].delta.tool_calls[0] for c in deltas
              if c.choices and c.choices[0].delta.tool_calls and c.choices[0].delta.tool_calls[0].id]
    assert len(firsts) == 1 and firsts[0].function.arguments == "" and firsts[0].type == "function"
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "reset_password" and set(_args(call)) == {"email"}


def test_required_calls_one_of_the_declared_tools(client):
    r = client.chat.completions.create(model=FT_ID, messages=MESSAGES, tools=TOOLS, tool_choice="required",
                                       temperature=0, max_tokens=60)
    (call,) = r.choices[0].message.tool_calls
    expected = {"get_order_status": {"order_id"}, "reset_password": {"email"}}
    assert set(_args(call)) == expected[call.function.name]
    assert r.choices[0].finish_reason == "tool_calls"


def test_tool_choice_none_answers_with_content(client):
    r = client.chat.completions.create(model=FT_ID, messages=MESSAGES, tools=TOOLS, tool_choice="none",
                                       temperature=0, max_tokens=8)
    assert r.choices[0].message.content and not r.choices[0].message.tool_calls
    assert r.choices[0].finish_reason == "length"


def test_multi_turn_tool_history_is_accepted(client):
    history = MESSAGES + [
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_order_status", "arguments": '{"order_id": "A1"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "shipped"}]
    r = client.chat.completions.create(model=FT_ID, messages=history, tools=TOOLS, tool_choice="none",
                                       temperature=0, max_tokens=4)
    assert r.choices[0].message.content


@pytest.mark.parametrize("extra, param", [
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "a string"}}]}, "tools"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "banana"}}}],
      "tool_choice": "required"}, "tools"),
    ({"tool_choice": "required"}, "tool_choice"),
])
def test_bad_tools_are_a_400_in_openais_shape(client, extra, param):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=FT_ID, messages=MESSAGES, max_tokens=4, **extra)
    body = err.value.body
    assert body["param"] == param and body["type"] == "invalid_request_error" and body["message"]


SPEC = ToolSpec(TOOLS)


def test_auto_output_parsing_rules():
    call = '<tool_call>\n{"name": "get_order_status", "arguments": {"order_id": "A1"}}\n</tool_call>'
    content, calls = split_output(call, SPEC)
    assert content is None and calls[0].name == "get_order_status"
    assert json.loads(calls[0].arguments) == {"order_id": "A1"}
    assert split_output("Sure. " + call, SPEC)[0] == "Sure. "
    broken = '<tool_call>\n{"name": "get_order_status", "arguments": {"order_id": </tool_call>'
    assert split_output(broken, SPEC) == (broken, [])  # not JSON: the text comes back as content
    unknown = '<tool_call>{"name": "delete_everything", "arguments": {}}</tool_call>'
    assert split_output(unknown, SPEC) == (unknown, [])
    two = call + "\n" + call.replace("A1", "B2")
    assert len(split_output(two, SPEC)[1]) == 2
    assert len(split_output(two, ToolSpec(TOOLS, parallel=False))[1]) == 1
    assert split_output('{"name": "reset_password", "arguments": {"email": "a@b.c"}}', SPEC)[1]


def test_streamed_parsing_holds_back_only_a_possible_tag():
    reader = ToolStream(SPEC.names)
    events = []
    pieces = ["Hello <to", "ol", '_call>{"name": "reset_password", ', '"arguments": {}}</tool_call>']
    for piece in pieces:
        events += reader.feed(piece)
    events += reader.finish()
    assert events[0] == ("content", "Hello ") and events[1][0] == "call" and len(events) == 2
