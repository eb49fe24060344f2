"""Cursor pagination for list endpoints: `after`/`limit`/`order` in, OpenAI's list page out.

Usage in a route (the jobs lists use `page_params(default_limit=20, max_limit=100)`):

    def list_things(page: PageParams = Depends(page_params(default_limit=20)), ...):
        with db.session() as s:
            result = paginate(s, select(Thing).where(...), id_column=Thing.id,
                              sort_columns=[Thing.created_at, Thing.id], after=page.after,
                              limit=page.limit, order=page.order)   # may raise UnknownCursor
        return list_page([to_openai(t) for t in result.items], result.has_more, with_ids=True)

`paginate` raises `UnknownCursor`; call it inside `cursor_errors()` (or catch it) to answer 400.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Query

from tuneforge.api.errors import bad_request
from tuneforge.store.paging import Order, Page, UnknownCursor, paginate

__all__ = ["Order", "Page", "PageParams", "UnknownCursor", "cursor_errors", "list_page", "page_params",
           "paginate"]


@dataclass(frozen=True)
class PageParams:
    after: str | None
    limit: int
    order: Order


def page_params(default_limit: int = 20, max_limit: int = 100,
                default_order: Order = "desc") -> Callable[..., PageParams]:
    """A FastAPI dependency reading `after`, `limit` (1..max_limit) and `order` from the query string.
    Out-of-range values become OpenAI-shaped 400s naming the parameter."""

    def dependency(
        after: str | None = Query(None, max_length=200,
                                  description="An object id: return the objects that follow it."),
        limit: int = Query(default_limit, ge=1, le=max_limit, description="How many objects to return."),
        order: Order = Query(default_order, description="`asc` (oldest first) or `desc` (newest first)."),
    ) -> PageParams:
        return PageParams(after=after, limit=limit, order=order)

    return dependency


@contextmanager
def cursor_errors() -> Iterator[None]:
    """Turn `UnknownCursor` into a 400 with `param: "after"`."""
    try:
        yield
    except UnknownCursor as exc:
        raise bad_request(f"No such object: {exc.after!r} (given as 'after'). Pass an id taken from a "
                          f"previous page of this list, or leave 'after' out to start from the top.",
                          param="after") from None


def list_page(data: Sequence[Any], has_more: bool, *, with_ids: bool = False,
              id_of: Callable[[Any], str] = lambda item: item["id"]) -> dict[str, Any]:
    """The OpenAI list object; `with_ids` adds `first_id`/`last_id` (files and checkpoints)."""
    out: dict[str, Any] = {"object": "list", "data": list(data), "has_more": has_more}
    if with_ids:
        out["first_id"] = id_of(data[0]) if data else None
        out["last_id"] = id_of(data[-1]) if data else None
    return out
