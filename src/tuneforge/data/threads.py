"""Customer-support threads exported as tweet-style rows, rebuilt into chat conversations.

Columns (the Kaggle "Customer Support on Twitter" export the seed tutorial uses): `tweet_id, author_id,
inbound, created_at, text, response_tweet_id, in_response_to_tweet_id`. `inbound` is true for customer
tweets. Every path from a thread's first tweet to a leaf becomes one conversation: customer tweets are
`user` turns, company tweets `assistant` turns (consecutive tweets of one side are joined), and the
conversation ends at the last company answer.
"""

from __future__ import annotations

import re
from datetime import datetime

from tuneforge.data.io import DataFileError
from tuneforge.data.table import Table

COLUMNS = (
    "tweet_id",
    "author_id",
    "inbound",
    "created_at",
    "text",
    "response_tweet_id",
    "in_response_to_tweet_id",
)
_MENTIONS = re.compile(r"^(?:@\w+[\s,:]*)+")


def is_tweet_table(columns: list[str]) -> bool:
    return {"tweet_id", "inbound", "text", "in_response_to_tweet_id"} <= set(columns)


def _truthy(value: str) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes", "t")


def _id(value) -> str:
    """`123.0` (a float from a spreadsheet) and `123` are the same tweet."""
    text = str(value or "").strip()
    return text[:-2] if text.endswith(".0") else text


def _time_key(value: str) -> float:
    """Seconds since the epoch; unparseable times sort last (then by file order)."""
    for fmt in (
        "%a %b %d %H:%M:%S %z %Y",
        "%Y-%m-%d %H:%M:%S%z",
        "%Y-%m-%dT%H:%M:%S%z",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
    ):
        try:
            return datetime.strptime(value.strip(), fmt).timestamp()
        except ValueError:
            continue
    return float("inf")


def clean_text(text: str, keep_mentions: bool) -> str:
    text = text.strip()
    return text if keep_mentions else _MENTIONS.sub("", text).strip()


def threads_to_chat(
    table: Table, system: str | None = None, agent: str | None = None, keep_mentions: bool = False
) -> list[dict]:
    """Conversations rebuilt from tweet rows, in the order their first tweet appears."""
    missing = [
        c for c in ("tweet_id", "inbound", "text", "in_response_to_tweet_id") if c not in table.columns()
    ]
    if missing:
        raise DataFileError(
            f"tweet export is missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}."
        )
    tweets: dict[str, dict] = {}
    order: list[str] = []
    for row, line in zip(table.rows, table.lines, strict=True):
        tid = _id(row.get("tweet_id"))
        if not tid:
            raise DataFileError(f"line {line}: `tweet_id` is empty.")
        tweets[tid] = row
        order.append(tid)
    children: dict[str, list[str]] = {}
    roots = []
    for tid in order:
        parent = _id(tweets[tid].get("in_response_to_tweet_id"))
        if parent and parent in tweets:
            children.setdefault(parent, []).append(tid)
        else:
            roots.append(tid)
    position = {tid: i for i, tid in enumerate(order)}
    for kids in children.values():
        kids.sort(key=lambda t: (_time_key(str(tweets[t].get("created_at", ""))), position[t]))
    conversations = []
    for root in roots:
        if not _truthy(tweets[root].get("inbound", "")):
            continue  # a thread the company started (an announcement) has no customer question
        stack = [[root]]
        while stack:  # depth-first over every root-to-leaf path, without recursion
            path = stack.pop()
            kids = children.get(path[-1], [])
            if kids:
                stack.extend(path + [k] for k in reversed(kids))
                continue
            conv = _conversation([tweets[t] for t in path], system, agent, keep_mentions)
            if conv:
                conversations.append(conv)
    return conversations


def _conversation(
    path: list[dict], system: str | None, agent: str | None, keep_mentions: bool
) -> dict | None:
    messages: list[dict] = []
    agents = set()
    for tweet in path:
        role = "user" if _truthy(tweet.get("inbound", "")) else "assistant"
        if role == "assistant":
            agents.add(str(tweet.get("author_id", "")))
        text = clean_text(str(tweet.get("text", "")), keep_mentions)
        if not text:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n" + text
        else:
            messages.append({"role": role, "content": text})
    while messages and messages[-1]["role"] != "assistant":
        messages.pop()
    if not any(m["role"] == "user" for m in messages) or (agent and agent not in agents):
        return None
    if messages[0]["role"] == "assistant":
        return None
    if system:
        messages.insert(0, {"role": "system", "content": system})
    return {"messages": messages}
