"""Store tests run against SQLite and a real PostgreSQL (see tests/pg.py)."""

from __future__ import annotations

import pytest
from pg import database_url, postgres_url  # noqa: F401  (fixtures)

from tuneforge.store.blobs import BlobStore
from tuneforge.store.db import Database
from tuneforge.store.files import FileStore


@pytest.fixture
def db(database_url):  # noqa: F811
    database = Database(database_url)
    database.init_schema()
    yield database
    database.dispose()


@pytest.fixture
def file_store(db, tmp_path) -> FileStore:
    return FileStore(db, BlobStore(tmp_path / "files"))
