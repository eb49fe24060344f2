"""Alembic environment. Run by `Database.init_schema()` (which passes its open connection in
`config.attributes["connection"]`) and by the `alembic` command (see docs/database.md)."""

from __future__ import annotations

import os

from alembic import context

from tuneforge.store import tables  # noqa: F401  (registers every table on Base.metadata)
from tuneforge.store.db import Base, make_engine

config = context.config


def _run(connection) -> None:
    # render_as_batch: SQLite cannot ALTER most columns; batch mode copies the table instead.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def _developer_url() -> str:
    """The database a developer's `alembic` command works on: -x url=... or TUNEFORGE_DATABASE_URL."""
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("TUNEFORGE_DATABASE_URL")
    if not url:
        raise SystemExit("Say which database: alembic ... -x url=sqlite:////tmp/scratch.db "
                         "(or set TUNEFORGE_DATABASE_URL)")
    return url


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = make_engine(_developer_url())
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()
