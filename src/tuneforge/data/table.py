"""The rows `prepare` works on, each remembering the file line it came from, plus the shared remediation
type (OpenAI's `prepare_data` vocabulary: immediate, necessary, optional, error)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Table:
    rows: list[dict]
    lines: list[int]  # 1-based line (or row) number in the input, for messages

    def __len__(self) -> int:
        return len(self.rows)

    def columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for row in self.rows:
            for key in row:
                seen.setdefault(key, None)
        return list(seen)

    def keep(self, predicate: Callable[[dict], bool]) -> Table:
        pairs = [(r, n) for r, n in zip(self.rows, self.lines, strict=True) if predicate(r)]
        return Table([r for r, _ in pairs], [n for _, n in pairs])

    def drop_lines(self, lines: set[int]) -> Table:
        pairs = [(r, n) for r, n in zip(self.rows, self.lines, strict=True) if n not in lines]
        return Table([r for r, _ in pairs], [n for _, n in pairs])

    def map(self, fn: Callable[[dict], dict]) -> Table:
        return Table([fn(dict(r)) for r in self.rows], list(self.lines))

    def column(self, name: str) -> list:
        return [r.get(name) for r in self.rows]


@dataclass
class Remediation:
    name: str
    immediate_msg: str | None = None
    necessary_msg: str | None = None
    necessary_fn: Callable[[Table], Table] | None = None
    optional_msg: str | None = None
    optional_fn: Callable[[Table], Table] | None = None
    error_msg: str | None = None
    details: dict = field(default_factory=dict)


def line_list(lines: list[int], limit: int = 20) -> str:
    """`3, 7, 12` or `3, 7, ... (25 in all)`."""
    shown = ", ".join(str(n) for n in lines[:limit])
    return shown if len(lines) <= limit else f"{shown}, ... ({len(lines)} in all)"


def common_xfix(values: list[str], suffix: bool) -> str:
    """The longest prefix/suffix shared by every value (OpenAI's `get_common_xfix`)."""
    if not values:
        return ""
    shortest = min(values, key=len)
    n = 0
    while n < len(shortest):
        nxt = n + 1
        probe = shortest[-nxt:] if suffix else shortest[:nxt]
        if not all((v[-nxt:] if suffix else v[:nxt]) == probe for v in values):
            break
        n = nxt
    if n == 0:
        return ""
    return shortest[-n:] if suffix else shortest[:n]
