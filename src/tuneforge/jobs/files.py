"""What jobs need from the files store (store/files.py): find an uploaded file, store a results CSV.

The worker runs outside the API process too, so it talks to the store directly, not over HTTP.
"""

from __future__ import annotations

import threading
from pathlib import Path

from tuneforge.settings import Settings
from tuneforge.store.db import Database
from tuneforge.store.files import FileInfo, FileStore

# One store per (database, files folder): building it probes the folder each time, and concurrent job
# creates raced on that probe. Keyed by id(db) with the db kept alive in the value.
_stores: dict[tuple[int, Path], tuple[Database, FileStore]] = {}
_stores_lock = threading.Lock()


def file_store(db: Database, settings: Settings) -> FileStore:
    key = (id(db), Path(settings.files_dir))
    with _stores_lock:
        hit = _stores.get(key)
        if hit is None or hit[0] is not db:
            hit = (db, FileStore.from_settings(settings, db))
            _stores[key] = hit
        return hit[1]


def get_file(db: Database, settings: Settings, file_id: str, project: str) -> FileInfo | None:
    """The project's live file with that id, or None (unknown, deleted, or another project's)."""
    return file_store(db, settings).get(file_id, project)


def file_path(db: Database, settings: Settings, file_id: str) -> Path:
    return file_store(db, settings).blobs.path(file_id)


def store_result_file(db: Database, settings: Settings, project: str, filename: str, data: bytes) -> str:
    """Save `data` as a `fine-tune-results` file of the project; returns the new file id."""
    return file_store(db, settings).add_bytes(data, project=project, filename=filename,
                                              purpose="fine-tune-results").id


def file_objects(db: Database, settings: Settings, ids: list[str], project: str) -> list[dict]:
    """OpenAI File objects for the legacy job shape, which embeds files instead of naming them."""
    store = file_store(db, settings)
    out = []
    for file_id in ids:
        info = store.get(file_id, project)
        out.append(info.to_openai() if info else {"id": file_id, "object": "file", "status": "deleted"})
    return out
