"""Every finding code, each triggered by a real file, with the line and field a user would be pointed to."""

from __future__ import annotations

import json

import pytest

from tuneforge.data.findings import CODES
from tuneforge.data.validate import validate_file

SYS = {"role": "system", "content": "You are helpful."}
USER = {"role": "user", "content": "Hi"}
ASSISTANT = {"role": "assistant", "content": "Hello!"}


def chat(*messages, **extra) -> str:
    return json.dumps({"messages": list(messages), **extra}, ensure_ascii=False)


def good(i: int) -> str:
    return chat(
        SYS, {"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}
    )


def with_filler(line: str, n: int = 12) -> bytes:
    """The bad line first, then enough good lines that `too_few_examples` stays out of the way."""
    return "\n".join([line] + [good(i) for i in range(n)]).encode() + b"\n"


DPO_ROW = {
    "input": {"messages": [USER]},
    "preferred_output": [ASSISTANT],
    "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
}

# code -> (file bytes, expected line, expected field, validate_file kwargs)
CASES: dict[str, tuple[bytes, int | None, str | None, dict]] = {
    "empty_file": (b"", None, None, {}),
    "binary_file": (b"\x00\x01\x02binary\x00" * 10, None, None, {}),
    "json_array": (json.dumps([json.loads(good(i)) for i in range(12)]).encode(), 1, None, {}),
    "utf8_bom": (b"\xef\xbb\xbf" + with_filler(good(99)), 1, None, {}),
    "crlf_line_endings": (with_filler(good(99)).replace(b"\n", b"\r\n"), 1, None, {}),
    "blank_line": (with_filler(good(99)).replace(b"\n", b"\n\n", 1), 2, None, {}),
    "invalid_utf8": (with_filler(good(99)).replace(b"question 0", b"question \xff\xfe"), 2, None, {}),
    "line_too_long": (
        with_filler(chat(SYS, {"role": "user", "content": "x" * (5 * 1024 * 1024)}, ASSISTANT)),
        1,
        None,
        {},
    ),
    "too_few_examples": ("\n".join(good(i) for i in range(3)).encode(), None, None, {}),
    "few_examples": ("\n".join(good(i) for i in range(20)).encode(), None, None, {}),
    "mixed_formats": (with_filler(json.dumps({"prompt": "a", "completion": "b"})), 1, None, {}),
    "method_mismatch": (with_filler(good(99)), None, None, {"method": "dpo"}),
    "invalid_json": (with_filler('{"messages": [}'), 1, None, {}),
    "not_an_object": (with_filler('"just a string"'), 1, None, {}),
    "unknown_format": (with_filler(json.dumps({"question": "q", "answer": "a"})), 1, None, {}),
    "unknown_key": (with_filler(chat(SYS, USER, ASSISTANT, metadata={"id": 1})), 1, "metadata", {}),
    "wrong_type": (
        with_filler(chat(SYS, {"role": "user", "content": 42}, ASSISTANT)),
        1,
        "messages[1].content",
        {},
    ),
    "wrong_case_key": (with_filler(json.dumps({"Messages": [SYS, USER, ASSISTANT]})), 1, "Messages", {}),
    "missing_field": (with_filler(json.dumps({"prompt": "only a prompt"})), 1, "completion", {}),
    "missing_messages": (with_filler(json.dumps({"messages": []})), 1, "messages", {}),
    "missing_role": (with_filler(chat(SYS, {"content": "no role"}, ASSISTANT)), 1, "messages[1].role", {}),
    "unknown_role": (
        with_filler(chat(SYS, {"role": "customer", "content": "Hi"}, ASSISTANT)),
        1,
        "messages[1].role",
        {},
    ),
    "unknown_message_key": (
        with_filler(chat(SYS, {**USER, "lang": "en"}, ASSISTANT)),
        1,
        "messages[1].lang",
        {},
    ),
    "missing_content": (with_filler(chat(SYS, {"role": "user"}, ASSISTANT)), 1, "messages[1].content", {}),
    "empty_content": (
        with_filler(chat(SYS, USER, {"role": "assistant", "content": "   "})),
        1,
        "messages[2].content",
        {},
    ),
    "unsupported_content": (
        with_filler(
            chat(
                SYS,
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    ],
                },
                ASSISTANT,
            )
        ),
        1,
        "messages[1].content[1]",
        {},
    ),
    "invalid_weight": (with_filler(chat(SYS, USER, {**ASSISTANT, "weight": 2})), 1, "messages[2].weight", {}),
    "missing_assistant": (with_filler(chat(SYS, USER)), 1, "messages", {}),
    "no_trained_messages": (with_filler(chat(SYS, USER, {**ASSISTANT, "weight": 0})), 1, "messages", {}),
    "trailing_messages": (with_filler(chat(SYS, USER, ASSISTANT, USER)), 1, "messages[3]", {}),
    "invalid_tool_call": (
        with_filler(
            chat(
                SYS,
                USER,
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "track", "arguments": "{not json"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "{}"},
                ASSISTANT,
            )
        ),
        1,
        "messages[2].tool_calls[0].function.arguments",
        {},
    ),
    "empty_completion": (with_filler(json.dumps({"prompt": "q", "completion": ""}), 0), 1, "completion", {}),
    "invalid_preference": (
        json.dumps({**DPO_ROW, "preferred_output": ASSISTANT}).encode(),
        1,
        "preferred_output",
        {"method": "dpo", "min_examples": 1},
    ),
    "legacy_dpo_names": (
        json.dumps(
            {
                "input": DPO_ROW["input"],
                "preferred_completion": [ASSISTANT],
                "non_preferred_completion": [ASSISTANT],
            }
        ).encode(),
        1,
        "preferred_completion",
        {"method": "dpo", "min_examples": 1},
    ),
    "duplicate_example": (with_filler(good(3)), 5, None, {}),
    "too_long": (
        with_filler(chat(SYS, {"role": "user", "content": "word " * 3000}, ASSISTANT)),
        1,
        None,
        {"tokenizer": True, "max_tokens": 1024},
    ),
}


def test_every_code_has_a_case():
    assert set(CASES) == set(CODES)


@pytest.mark.parametrize("code", sorted(CASES))
def test_finding(code, tmp_path, request):
    content, line, field, kwargs = CASES[code]
    kwargs = dict(kwargs)
    if kwargs.pop("tokenizer", False):
        kwargs["tokenizer"] = request.getfixturevalue("tokenizer")
    path = tmp_path / "data.jsonl"
    path.write_bytes(content)
    report = validate_file(path, **kwargs)
    hits = [f for f in report.findings if f.code == code]
    assert hits, f"{code} not reported; got {report.counts}"
    hit = hits[0]
    assert hit.line == line
    assert hit.field == field
    assert hit.severity == CODES[code][0]
    assert hit.message and "\n" not in hit.message
    assert report.ok == (not any(f.severity == "error" for f in report.findings))
    # JSON output carries the same finding.
    assert any(f["code"] == code for f in json.loads(json.dumps(report.to_json()))["findings"])


def test_every_problem_reported_not_just_the_first(tmp_path):
    lines = [
        chat(SYS, {"content": "no role"}, ASSISTANT),
        "{broken",
        chat(SYS, USER),
        chat(SYS, USER, {"role": "assistant", "content": ""}),
    ] + [good(i) for i in range(10)]
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = validate_file(path)
    assert [(f.line, f.code) for f in report.errors] == [
        (1, "missing_role"),
        (2, "invalid_json"),
        (3, "missing_assistant"),
        (4, "empty_content"),
    ]


def test_valid_file_is_ok_and_counts_examples(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text("\n".join(good(i) for i in range(60)) + "\n")
    report = validate_file(path)
    assert report.ok and report.format == "chat" and report.n_examples == 60
    assert report.findings == [] and report.openai_error() is None


def test_tool_calling_and_weights_are_valid(tmp_path):
    row = chat(
        SYS,
        USER,
        {"role": "assistant", "weight": 0, "content": "Let me check."},
        USER,
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "track", "arguments": '{"id": 1}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "shipped"},
        ASSISTANT,
        tools=[{"type": "function", "function": {"name": "track", "parameters": {}}}],
    )
    path = tmp_path / "tools.jsonl"
    path.write_text("\n".join([row] + [good(i) for i in range(60)]) + "\n")
    assert validate_file(path).findings == []
