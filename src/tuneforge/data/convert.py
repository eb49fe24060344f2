"""Turn the datasets people have into OpenAI chat JSONL.

Sources: OpenAI chat rows (kept), legacy prompt/completion (separator, leading space and stop ending
removed), alpaca (`instruction`/`input`/`output`), sharegpt (`conversations` of `from`/`value`), any
table (CSV/TSV/XLSX/JSON) with chosen or recognised question/answer columns, plain text with `Q:`/`A:`
turns, and tweet-style support threads (`threads.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tuneforge.data.io import DataFileError
from tuneforge.data.readers import read_table, read_txt
from tuneforge.data.table import Table, common_xfix
from tuneforge.data.threads import is_tweet_table, threads_to_chat

SOURCES = ("auto", "chat", "legacy", "alpaca", "sharegpt", "columns", "tweets", "txt")
# Recognised (user, assistant) column pairs, first match wins; compared case-insensitively.
COLUMN_PAIRS = [
    ("prompt", "completion"),
    ("question", "answer"),
    ("user", "assistant"),
    ("input", "output"),
    ("query", "response"),
    ("instruction", "output"),
    ("q", "a"),
    ("问题", "答案"),
    ("问", "答"),
    ("customer", "agent"),
]
_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
}
LEGACY_SEPARATORS = [
    " ->",
    "->",
    "\n\n###\n\n",
    "\n\n===\n\n",
    "\n\n---\n\n",
    "\n\n===>\n\n",
    "\n\n--->\n\n",
    "\n\n### =>\n\n",
]
LEGACY_ENDINGS = ["\n", " END", "***", "+++", "&&&", "$$$", "@@@", "%%%", " [END]"]
_TURN = re.compile(
    r"^\s*(Q|A|User|Assistant|Human|AI|Customer|Agent|System|问|答|用户|客服|助手)\s*[:：]\s*", re.IGNORECASE
)
_TURN_ROLES = {
    "q": "user",
    "user": "user",
    "human": "user",
    "customer": "user",
    "问": "user",
    "用户": "user",
    "a": "assistant",
    "assistant": "assistant",
    "ai": "assistant",
    "agent": "assistant",
    "答": "assistant",
    "客服": "assistant",
    "助手": "assistant",
    "system": "system",
}


@dataclass
class ConvertOptions:
    source: str = "auto"
    user_column: str | None = None
    assistant_column: str | None = None
    system_column: str | None = None
    system: str | None = None
    sheet: str | None = None
    agent: str | None = None  # tweets: keep threads answered by this author_id
    keep_mentions: bool = False


def detect_source(table: Table) -> str:
    cols = {c.lower() for c in table.columns()}
    if is_tweet_table(table.columns()):
        return "tweets"
    if "messages" in cols:
        return "chat"
    if "conversations" in cols or "conversation" in cols:
        return "sharegpt"
    if {"instruction", "output"} <= cols:
        return "alpaca"
    if {"prompt", "completion"} <= cols:
        return "legacy"
    return "columns"


def _find(columns: list[str], name: str) -> str | None:
    return next((c for c in columns if c.lower() == name.lower()), None)


def pick_columns(table: Table, opts: ConvertOptions) -> tuple[str, str]:
    columns = table.columns()
    if opts.user_column or opts.assistant_column:
        chosen = []
        for name in (opts.user_column, opts.assistant_column):
            col = _find(columns, name) if name else None
            if col is None:
                raise DataFileError(
                    f"column `{name}` not found; the columns are: {', '.join(columns)}. Pass "
                    "both --user-column and --assistant-column."
                )
            chosen.append(col)
        return chosen[0], chosen[1]
    for user, assistant in COLUMN_PAIRS:
        u, a = _find(columns, user), _find(columns, assistant)
        if u and a:
            return u, a
    raise DataFileError(
        f"cannot tell which columns hold the question and the answer (columns: "
        f"{', '.join(columns)}). Name them: --user-column COL --assistant-column COL."
    )


def _chat(user: str, assistant: str, system: str | None) -> dict:
    messages = [{"role": "system", "content": system}] if system else []
    return {
        "messages": messages
        + [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    }


def _row_system(row: dict, opts: ConvertOptions) -> str | None:
    if opts.system_column:
        col = _find(list(row), opts.system_column)
        if col and str(row[col]).strip():
            return str(row[col])
    return opts.system


def legacy_to_chat(table: Table, system: str | None = None) -> list[dict]:
    """Undo `prepare_data`'s formatting: the common prompt separator, the leading space, the stop ending."""
    prompts = [str(r.get("prompt", "")) for r in table.rows]
    completions = [str(r.get("completion", "")) for r in table.rows]
    p_suffix = common_xfix(prompts, suffix=True)
    sep = next((s for s in LEGACY_SEPARATORS if p_suffix.endswith(s)), "")
    c_suffix = common_xfix(completions, suffix=True)
    stop = next((s for s in LEGACY_ENDINGS if c_suffix.endswith(s)), "")
    rows = []
    for p, c in zip(prompts, completions, strict=True):
        p = p[: len(p) - len(sep)] if sep else p
        c = c[: len(c) - len(stop)] if stop else c
        rows.append(_chat(p.strip(), c.strip(), system))
    return rows


def _alpaca(row: dict, opts: ConvertOptions) -> dict:
    user = str(row.get("instruction", "")).strip()
    extra = str(row.get("input", "") or "").strip()
    if extra:
        user = f"{user}\n\n{extra}"
    system = str(row["system"]) if row.get("system") else _row_system(row, opts)
    return _chat(user, str(row.get("output", "")).strip(), system)


def _sharegpt(row: dict, opts: ConvertOptions, line: int) -> dict:
    turns = row.get("conversations") or row.get("conversation") or []
    messages = [{"role": "system", "content": str(row["system"])}] if row.get("system") else []
    if not messages and opts.system:
        messages.append({"role": "system", "content": opts.system})
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise DataFileError(f"line {line}: conversations[{i}] is not an object.")
        who = str(turn.get("from", turn.get("role", ""))).lower()
        if who not in _SHAREGPT_ROLES:
            raise DataFileError(
                f"line {line}: conversations[{i}].from is `{who}`; expected one of "
                f"{', '.join(sorted(_SHAREGPT_ROLES))}."
            )
        messages.append(
            {"role": _SHAREGPT_ROLES[who], "content": str(turn.get("value", turn.get("content", "")))}
        )
    return {"messages": messages}


def txt_to_chat(path: Path, system: str | None = None) -> list[dict]:
    """Paragraphs (blank-line separated) of `Q:`/`A:` (or `User:`/`Assistant:`, `问：`/`答：`) lines."""
    table = read_txt(path)
    rows, current, role = [], [], None

    def flush() -> None:
        if current:
            rows.append(
                {"messages": ([{"role": "system", "content": system}] if system else []) + list(current)}
            )
            current.clear()

    prev_line = 0
    for row, line in zip(table.rows, table.lines, strict=True):
        text = row["completion"]
        if line > prev_line + 1:
            flush()
        prev_line = line
        match = _TURN.match(text)
        if match:
            role = _TURN_ROLES[match.group(1).lower()]
            current.append({"role": role, "content": text[match.end() :].strip()})
        elif current:
            current[-1]["content"] += "\n" + text.strip()
        else:
            raise DataFileError(
                f"{path}, line {line}: a turn must start with `Q:`/`A:` (or `User:`/`Assistant:`, "
                "`问：`/`答：`). For plain text, use `tuneforge prepare` (each line becomes a "
                "completion)."
            )
    flush()
    return rows


def convert_table(table: Table, opts: ConvertOptions) -> tuple[list[dict], str]:
    source = detect_source(table) if opts.source in ("auto", "txt") else opts.source
    if source == "chat":
        return [{k: v for k, v in r.items()} for r in table.rows], source
    if source == "tweets":
        return threads_to_chat(table, opts.system, opts.agent, opts.keep_mentions), source
    if source == "legacy" and not (opts.user_column or opts.assistant_column):
        return legacy_to_chat(table, opts.system), source
    if source == "alpaca":
        return [_alpaca(r, opts) for r in table.rows], source
    if source == "sharegpt":
        return [_sharegpt(r, opts, n) for r, n in zip(table.rows, table.lines, strict=True)], source
    user, assistant = pick_columns(table, opts)
    return [
        _chat(str(r.get(user, "")).strip(), str(r.get(assistant, "")).strip(), _row_system(r, opts))
        for r in table.rows
    ], f"columns `{user}` -> user, `{assistant}` -> assistant"


def convert_file(path: str | Path, opts: ConvertOptions) -> tuple[list[dict], str, list[tuple[int, str]]]:
    """Chat rows from any supported file, a description of how they were read, and unreadable lines."""
    path = Path(path)
    if path.suffix.lower() == ".txt" and opts.source in ("auto", "txt"):
        return txt_to_chat(path, opts.system), "text turns (Q:/A:)", []
    table, bad = read_table(path, opts.sheet)
    if not table.rows:
        raise DataFileError(f"{path}: no rows to convert.")
    rows, how = convert_table(table, opts)
    return rows, how, bad
