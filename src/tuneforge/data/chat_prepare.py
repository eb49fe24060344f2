"""`prepare_data`'s treatment in chat terms: the same necessary/recommended fixes for `messages` rows.

Chat rows need no separator or stop sequence (the chat template marks the turns and the model stops at its
end-of-turn token), so those checks become: a consistent system prompt, clean whitespace, no boilerplate
prefix on every answer, nothing left after the last assistant turn, and examples that fit the context.
"""

from __future__ import annotations

import json
from collections import Counter

from tuneforge.data.rows import ROLES, check_chat
from tuneforge.data.table import Remediation, Table, common_xfix, line_list

_KEYS = {
    "messages",
    "role",
    "content",
    "name",
    "weight",
    "tool_calls",
    "tool_call_id",
    "function_call",
    "tools",
    "parallel_tool_calls",
    "functions",
    "refusal",
}


def _messages(row: dict) -> list[dict]:
    msgs = row.get("messages")
    return [m for m in msgs if isinstance(m, dict)] if isinstance(msgs, list) else []


def _assistant_texts(table: Table) -> list[str]:
    return [
        m["content"]
        for r in table.rows
        for m in _messages(r)
        if m.get("role") == "assistant" and isinstance(m.get("content"), str)
    ]


def num_examples(table: Table, min_examples: int) -> Remediation:
    msg = f"\n- Your file contains {len(table)} chat examples"
    if len(table) < min_examples:
        msg += f". Fine-tuning requires at least {min_examples}; add more before you start a job"
    elif len(table) < 50:
        msg += ". 50 to 100 well-chosen examples usually give a clear improvement"
    return Remediation("num_examples", msg)


def _fix_case(value):
    """Lower-case misspelled keys (`Messages`, `Role`) and roles (`User`) all the way down."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = k.lower() if isinstance(k, str) and k not in _KEYS and k.lower() in _KEYS else k
            if key == "role" and isinstance(v, str) and v not in ROLES and v.strip().lower() in ROLES:
                v = v.strip().lower()
            out[key] = _fix_case(v)
        return out
    if isinstance(value, list):
        return [_fix_case(v) for v in value]
    return value


def key_case(table: Table) -> Remediation | None:
    bad = [n for r, n in zip(table.rows, table.lines, strict=True) if _fix_case(r) != r]
    if not bad:
        return None
    return Remediation(
        "key_case",
        f"\n- Keys or roles with the wrong case (e.g. `Messages`, `User`) on lines: {line_list(bad)}",
        "Lower-case those keys and roles",
        lambda t: t.map(_fix_case),
    )


def unusable_rows(table: Table) -> Remediation | None:
    """Rows that still break the chat format after the case fix: they cannot be trained on."""
    reasons: dict[int, str] = {}
    for row, n in zip(table.rows, table.lines, strict=True):
        problems: list[str] = []

        def add(code: str, message: str, field: str | None, _p: list[str] = problems) -> None:
            from tuneforge.data.findings import CODES

            if CODES[code][0] == "error":
                _p.append(f"{field + ': ' if field else ''}{message}")

        check_chat(row, add)
        if problems:
            reasons[n] = problems[0]
    if not reasons:
        return None
    detail = "".join(f"\n  line {n}: {why}" for n, why in list(reasons.items())[:10])
    more = f"\n  ... and {len(reasons) - 10} more" if len(reasons) > 10 else ""
    return Remediation(
        "unusable_rows",
        f"\n- {len(reasons)} examples cannot be trained on:{detail}{more}",
        f"Remove {len(reasons)} unusable examples (lines {line_list(list(reasons))})",
        lambda t: t.drop_lines(set(reasons)),
    )


def duplicates(table: Table) -> Remediation | None:
    seen: set[str] = set()
    dups = []
    for row, n in zip(table.rows, table.lines, strict=True):
        key = json.dumps(row, sort_keys=True, ensure_ascii=False)
        if key in seen:
            dups.append(n)
        seen.add(key)
    if not dups:
        return None
    return Remediation(
        "duplicated_rows",
        f"\n- There are {len(dups)} duplicated examples. These are lines: {line_list(dups)}",
        optional_msg=f"Remove {len(dups)} duplicate examples",
        optional_fn=lambda t: t.drop_lines(set(dups)),
    )


def long_examples(table: Table, token_counts: dict[int, int] | None, max_tokens: int) -> Remediation | None:
    if not token_counts:
        return None
    longs = [n for n in table.lines if token_counts.get(n, 0) > max_tokens]
    if not longs:
        return None
    return Remediation(
        "long_examples",
        f"\n- There are {len(longs)} examples longer than the {max_tokens}-token "
        f"training context; their ends would be cut off. Lines: {line_list(longs)}",
        optional_msg=f"Remove {len(longs)} long examples",
        optional_fn=lambda t: t.drop_lines(set(longs)),
    )


def _strip_row(row: dict) -> dict:
    msgs = [
        {**m, "content": m["content"].strip()} if isinstance(m.get("content"), str) else m
        for m in _messages(row)
    ]
    return {**row, "messages": msgs}


def whitespace(table: Table) -> Remediation | None:
    bad = [
        n
        for r, n in zip(table.rows, table.lines, strict=True)
        if any(
            isinstance(m.get("content"), str) and m["content"] != m["content"].strip() for m in _messages(r)
        )
    ]
    if not bad:
        return None
    return Remediation(
        "whitespace",
        f"\n- {len(bad)} examples have messages with leading or trailing whitespace "
        f"(lines {line_list(bad)}); the model would learn to produce it",
        optional_msg="Strip leading and trailing whitespace from every message",
        optional_fn=lambda t: t.map(_strip_row),
    )


def system_prompt(table: Table) -> Remediation | None:
    systems = [
        next((m.get("content") for m in _messages(r) if m.get("role") in ("system", "developer")), None)
        for r in table.rows
    ]
    missing = [n for s, n in zip(systems, table.lines, strict=True) if s is None]
    present = Counter(s for s in systems if isinstance(s, str))
    if not missing or not present:
        return None
    common, count = present.most_common(1)[0]
    msg = f"\n- {len(missing)} examples have no system message (lines {line_list(missing)})"
    if count * 2 < len(table):
        return Remediation("system_prompt", msg + "; use the same system prompt when you call the model")
    short = common if len(common) <= 60 else common[:57] + "..."
    return Remediation(
        "system_prompt",
        msg + f", while {count} use `{short}`",
        optional_msg=f"Add the common system prompt to the {len(missing)} examples without one",
        optional_fn=lambda t: t.map(
            lambda r: (
                r
                if any(m.get("role") in ("system", "developer") for m in _messages(r))
                else {**r, "messages": [{"role": "system", "content": common}] + _messages(r)}
            )
        ),
    )


def lower_case(table: Table) -> Remediation | None:
    text = "".join(_assistant_texts(table))
    upper = sum(1 for c in text if c.isalpha() and c.isupper())
    lower = sum(1 for c in text if c.isalpha() and c.islower())
    if upper * 2 <= lower:
        return None

    def low(row: dict) -> dict:
        return {
            **row,
            "messages": [
                {**m, "content": m["content"].lower()}
                if m.get("role") == "assistant" and isinstance(m.get("content"), str)
                else m
                for m in _messages(row)
            ],
        }

    return Remediation(
        "lower_case",
        "\n- More than a third of the assistant answers is uppercase, which tends "
        "to train worse than normal mixed case",
        optional_msg="Lowercase all assistant answers",
        optional_fn=lambda t: t.map(low),
    )


def answer_prefix(table: Table) -> Remediation | None:
    answers = _assistant_texts(table)
    prefix = common_xfix(answers, suffix=False)
    if len(prefix.strip()) < 5 or len(answers) < 2 or all(a == prefix for a in answers):
        return None

    def strip(row: dict) -> dict:
        return {
            **row,
            "messages": [
                {**m, "content": m["content"][len(prefix) :]}
                if m.get("role") == "assistant" and isinstance(m.get("content"), str)
                else m
                for m in _messages(row)
            ],
        }

    return Remediation(
        "common_completion_prefix",
        f"\n- Every assistant answer starts with `{prefix}`; the model would spend tokens repeating it",
        optional_msg=f"Remove prefix `{prefix}` from all assistant answers",
        optional_fn=lambda t: t.map(strip),
    )


def _cut_trailing(row: dict) -> dict:
    msgs = _messages(row)
    last = max((i for i, m in enumerate(msgs) if m.get("role") == "assistant"), default=len(msgs) - 1)
    return {**row, "messages": msgs[: last + 1]}


def trailing_messages(table: Table) -> Remediation | None:
    bad = [n for r, n in zip(table.rows, table.lines, strict=True) if _cut_trailing(r) != r]
    if not bad:
        return None
    return Remediation(
        "trailing_messages",
        f"\n- {len(bad)} examples end after the last assistant answer (lines "
        f"{line_list(bad)}); those messages are never trained",
        optional_msg="Drop the messages after the last assistant answer",
        optional_fn=lambda t: t.map(_cut_trailing),
    )


def end_of_turn_note(eos: str | None) -> Remediation:
    token = f" `{eos}`" if eos else ""
    return Remediation(
        "separator",
        "\n- Chat examples need no separator or stop sequence: the model's chat "
        f"template marks each turn and the model stops at its end-of-turn token{token}",
    )


def validators(
    min_examples: int, token_counts: dict[int, int] | None, max_tokens: int, eos: str | None
) -> list:
    return [
        lambda t: num_examples(t, min_examples),
        key_case,
        unusable_rows,
        duplicates,
        lambda t: long_examples(t, token_counts, max_tokens),
        whitespace,
        system_prompt,
        lower_case,
        answer_prefix,
        trailing_messages,
        lambda t: end_of_turn_note(eos),
    ]
