"""Database engine and sessions (SQLAlchemy 2). SQLite (WAL) by default, PostgreSQL by URL.

Table modules (`store/tables_*.py`) subclass `Base`; `Database.init_schema()` creates or upgrades the
schema with the Alembic revisions in `store/migrations/`. Schema changes: see docs/database.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from tuneforge.settings import Settings, ensure_writable_dir


class Base(DeclarativeBase):
    pass


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            ensure_writable_dir(Path(path).parent, "The database folder")
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # WAL lets the worker write while the API reads
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


class Database:
    """One engine and session factory per process; pass it around instead of using globals."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.database_url)

    def init_schema(self) -> None:
        """Create the schema, or upgrade it to this version's (`alembic upgrade head`); safe to call
        from several processes at once, and a no-op when the schema is current."""
        from tuneforge.store import migrations, tables  # noqa: F401  (tables: registers every table)

        migrations.upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
