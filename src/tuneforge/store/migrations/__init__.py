"""Schema migrations (Alembic): `upgrade(engine)` brings any database to the newest revision.

Called by `Database.init_schema()` on every start of the server, worker and CLI. The Alembic config is
built here in code (no alembic.ini at run time) and runs on the Database's own engine, so SQLite files,
SQLite in memory and PostgreSQL all take the same path. See docs/database.md.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

BASELINE = "0001_baseline"
# The tables the last release before migrations created with `create_all` (the baseline's tables).
BASELINE_TABLES = frozenset({"projects", "api_keys", "files", "fine_tuning_jobs", "fine_tuning_job_events",
                             "fine_tuning_checkpoints", "fine_tuned_models"})
# Any constant bigint works; every tuneforge process uses this one to serialize schema upgrades.
_PG_LOCK_KEY = 0x74756E65666F7267  # "tuneforg"
_HERE = Path(__file__).resolve().parent


class SchemaError(RuntimeError):
    """The database cannot be used by this version of tuneforge (e.g. it is newer than the code)."""


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[Connection]:
    """One transaction that holds the database's schema lock, so a server and a worker starting
    together never both create tables: the second waits, then finds the schema at head."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Released by the commit (or rollback) that ends the transaction.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        elif conn.dialect.name == "sqlite":
            # pysqlite would not BEGIN before DDL; take the file's write lock now (waits up to the
            # connection's busy timeout for another process's upgrade to finish).
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


def _check_known(cfg: Config, revision: str) -> None:
    try:
        ScriptDirectory.from_config(cfg).get_revision(revision)
    except CommandError:
        raise SchemaError(
            f"The database's schema is at revision {revision!r}, which this version of tuneforge does "
            f"not know (its newest is {head_revision()!r}): a newer tuneforge upgraded it. Run that "
            f"newer version, or point TUNEFORGE_DATABASE_URL at another database.") from None


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest revision; a no-op when it is there already."""
    with _schema_lock(engine) as conn:
        cfg = alembic_config(conn)
        revision = current_revision(conn)
        if revision is not None:
            _check_known(cfg, revision)
        else:
            present = BASELINE_TABLES & set(inspect(conn).get_table_names())
            if present == BASELINE_TABLES:
                # Made by a release before migrations (create_all): its schema is the baseline.
                log.info("database created before schema migrations: recording it at %s", BASELINE)
                command.stamp(cfg, BASELINE)
            elif present:
                # An older release without some tables: the baseline creates only the missing ones.
                log.info("database created before schema migrations lacks %s: creating them",
                         ", ".join(sorted(BASELINE_TABLES - present)))
        command.upgrade(cfg, "head")
