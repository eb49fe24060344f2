"""The fine-tuning jobs list: a project's jobs, newest first, optionally filtered by metadata.

`GET /v1/fine_tuning/jobs?metadata[key]=value` (several pairs: all must match) and `metadata=null` (jobs
without metadata), as OpenAI's list does. Metadata is a JSON column, so the filter runs in Python over
the project's jobs in list order, after the cursor, stopping as soon as a page is full: the same
`(created_ns, id)` order and cursor rules as every other list (store/paging.py).
"""

from __future__ import annotations

from sqlalchemy import select, tuple_

from tuneforge.errors import UserError
from tuneforge.store.db import Database
from tuneforge.store.paging import Order, Page, UnknownCursor, paginate
from tuneforge.store.tables_jobs import Job

MAX_PAIRS, MAX_KEY, MAX_VALUE = 16, 64, 512  # OpenAI's metadata limits
NO_METADATA = None  # the filter `metadata=null`


def _bad(message: str, param: str) -> UserError:
    return UserError(message, param=param, code="invalid_metadata_filter")


def parse_metadata_filter(pairs: list[tuple[str, str]]) -> dict[str, str] | None | bool:
    """Query pairs in, the filter out: a dict of required pairs, `NO_METADATA` (None) for
    `metadata=null`, or False when the query has no metadata filter. Raises UserError (400) on bad input."""
    wanted: dict[str, str] = {}
    null = False
    for name, value in pairs:
        if name == "metadata":
            if value != "null":
                raise _bad(f"metadata={value[:80]!r}: filter by pairs, `metadata[KEY]=VALUE`, or list jobs "
                           f"without metadata with `metadata=null`.", "metadata")
            null = True
            continue
        if not name.startswith("metadata["):
            continue
        key = name[len("metadata["):-1] if name.endswith("]") else None
        if not key or "[" in key or "]" in key:
            raise _bad(f"{name[:80]!r} is not a metadata filter: write `metadata[KEY]=VALUE` with one key "
                       f"(no nested brackets).", name[:80])
        if len(key) > MAX_KEY or len(value) > MAX_VALUE:
            raise _bad(f"metadata filter {key[:80]!r}: keys are at most {MAX_KEY} characters and values at "
                       f"most {MAX_VALUE}, as job metadata is; no job can match this one.",
                       f"metadata[{key[:64]}]")
        if key in wanted and wanted[key] != value:
            raise _bad(f"metadata[{key}] is given twice with different values; give each key once.",
                       f"metadata[{key}]")
        wanted[key] = value
    if len(wanted) > MAX_PAIRS:
        raise _bad(f"{len(wanted)} metadata filter pairs; at most {MAX_PAIRS} (a job holds at most "
                   f"{MAX_PAIRS}).", "metadata")
    if null and wanted:
        raise _bad("metadata=null (jobs without metadata) cannot be combined with metadata[KEY]=VALUE pairs.",
                   "metadata")
    if null:
        return NO_METADATA
    return wanted or False


def _matches(job: Job, wanted: dict[str, str] | None) -> bool:
    metadata = job.job_metadata or {}
    if wanted is NO_METADATA:
        return not metadata
    return all(metadata.get(k) == v for k, v in wanted.items())


def list_jobs(db: Database, project: str, *, after: str | None, limit: int, order: Order = "desc",
              metadata: dict[str, str] | None | bool = False) -> Page[Job]:
    """One page of the project's current-API jobs; `metadata` as `parse_metadata_filter` returns it.
    Raises `UnknownCursor` when `after` names no job."""
    sort = [Job.created_ns, Job.id]
    with db.session() as session:
        stmt = select(Job).where(Job.project == project, Job.legacy.is_(False))
        if metadata is False:
            return paginate(session, stmt, id_column=Job.id, sort_columns=sort, after=after, limit=limit,
                            order=order)
        if after is not None:
            cursor = session.execute(select(*sort).where(Job.id == after).limit(1)).first() \
                if "\x00" not in after else None
            if cursor is None:
                raise UnknownCursor(after)
            key = tuple_(*sort)
            stmt = stmt.where(key < tuple_(*cursor) if order == "desc" else key > tuple_(*cursor))
        ordering = [c.desc() if order == "desc" else c.asc() for c in sort]
        found: list[Job] = []
        for job in session.scalars(stmt.order_by(*ordering).execution_options(yield_per=200)):
            if _matches(job, metadata):
                found.append(job)
                if len(found) > limit:
                    break
        return Page(found[:limit], len(found) > limit)
