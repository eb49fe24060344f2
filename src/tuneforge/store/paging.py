"""Cursor pagination over a SQLAlchemy select, the way OpenAI's lists page.

`after` names the last id the client saw; the next page holds the rows that follow it in the list's
order. Rows are ordered by `sort_columns` (which must identify a row uniquely, e.g. `(created_at, id)`
or an autoincrement key), so pages never skip or repeat rows even when timestamps tie.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

T = TypeVar("T")
Order = Literal["asc", "desc"]


class UnknownCursor(LookupError):
    """`after` names an id that the list has never held."""

    def __init__(self, after: str):
        super().__init__(f"No such object for 'after': {after}.")
        self.after = after


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool


def paginate(
    session: Session,
    stmt: Select[Any],
    *,
    id_column: InstrumentedAttribute[Any],
    sort_columns: Sequence[InstrumentedAttribute[Any]],
    after: str | None,
    limit: int,
    order: Order = "desc",
) -> Page[Any]:
    """Run `stmt` (a select of ORM entities, already filtered) one page at a time.

    Raises `UnknownCursor` when `after` is not an id of the table. The cursor row is looked up without
    the list's filters, so a cursor that was deleted (soft-deleted) or filtered out still works.
    """
    if after is not None:
        if "\x00" in after:  # PostgreSQL rejects NUL in parameters, and no id holds one
            raise UnknownCursor(after)
        cursor = session.execute(select(*sort_columns).where(id_column == after).limit(1)).first()
        if cursor is None:
            raise UnknownCursor(after)
        key, values = tuple_(*sort_columns), tuple_(*cursor)
        stmt = stmt.where(key < values if order == "desc" else key > values)
    ordering = [c.desc() if order == "desc" else c.asc() for c in sort_columns]
    rows = list(session.scalars(stmt.order_by(*ordering).limit(limit + 1)))
    return Page(items=rows[:limit], has_more=len(rows) > limit)
