"""Files: metadata rows plus blobs on disk. Used by the Files API and by jobs (training files, results).

A blob is committed before its row is inserted, so a row never points at missing bytes; a crash in
between leaves only an orphan blob, which `FileStore` never lists.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import or_, select, update

from tuneforge.settings import Settings
from tuneforge.store.blobs import Blob, BlobStore, BlobWriter
from tuneforge.store.db import Database
from tuneforge.store.paging import Order, Page, paginate
from tuneforge.store.tables_files import FileRecord

_ALPHABET = string.ascii_letters + string.digits
_ID = re.compile(r"file-[A-Za-z0-9]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
# Purposes the server itself writes (results of jobs and batches); clients cannot upload these.
OUTPUT_PURPOSES = ("assistants_output", "batch_output", "fine-tune-results")


def new_file_id() -> str:
    return "file-" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def is_file_id(value: str) -> bool:
    """Could `value` be a file id? Anything else is answered 'not found' without a query (PostgreSQL
    rejects NUL bytes in parameters, and no id contains one)."""
    return bool(_ID.fullmatch(value))


def clean_filename(name: str) -> str:
    """The client's filename without control characters, capped at 255 characters."""
    return _CONTROL.sub("", name)[:255] or "file"


@dataclass(frozen=True)
class FileInfo:
    id: str
    project: str
    filename: str
    purpose: str
    bytes: int
    sha256: str
    status: str
    status_details: str | None
    created_at: int
    expires_at: int | None
    path: Path

    def to_openai(self) -> dict:
        """The OpenAI File object (sha256 and the path stay server-side)."""
        return {"id": self.id, "object": "file", "bytes": self.bytes, "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": self.status,
                "status_details": self.status_details, "expires_at": self.expires_at}


class FileStore:
    def __init__(self, db: Database, blobs: BlobStore):
        self.db = db
        self.blobs = blobs

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> FileStore:
        return cls(db, BlobStore(settings.files_dir))

    def _info(self, row: FileRecord) -> FileInfo:
        return FileInfo(id=row.id, project=row.project, filename=row.filename, purpose=row.purpose,
                        bytes=row.bytes, sha256=row.sha256, status=row.status,
                        status_details=row.status_details, created_at=row.created_at,
                        expires_at=row.expires_at, path=self.blobs.path(row.id))

    def _visible(self, project: str | None, now: int):
        """Rows a caller may see: not deleted, not expired, and (unless project is None) its own."""
        conds = [FileRecord.deleted_at.is_(None),
                 or_(FileRecord.expires_at.is_(None), FileRecord.expires_at > now)]
        if project is not None:
            conds.append(FileRecord.project == project)
        return conds

    def add(self, blob_writer: BlobWriter, *, project: str, filename: str, purpose: str,
            expires_after: int | None = None, status_details: str | None = None) -> FileInfo:
        """Commit the bytes streamed into `blob_writer` as a new file and record it."""
        file_id = new_file_id()
        blob = blob_writer.commit(file_id)
        return self._record(blob, project=project, filename=filename, purpose=purpose,
                            expires_after=expires_after, status_details=status_details)

    def add_bytes(self, data: bytes, *, project: str, filename: str, purpose: str) -> FileInfo:
        return self._record(self.blobs.put_bytes(new_file_id(), data), project=project,
                            filename=filename, purpose=purpose)

    def add_path(self, source: Path, *, project: str, purpose: str, filename: str | None = None) -> FileInfo:
        """Store a copy of a file on disk, e.g. a job's results CSV (purpose `fine-tune-results`)."""
        return self._record(self.blobs.put_file(new_file_id(), Path(source)), project=project,
                            filename=filename or Path(source).name, purpose=purpose)

    def _record(self, blob: Blob, *, project: str, filename: str, purpose: str,
                expires_after: int | None = None, status_details: str | None = None) -> FileInfo:
        now = int(time.time())
        row = FileRecord(id=blob.name, project=project, filename=clean_filename(filename), purpose=purpose,
                         bytes=blob.size, sha256=blob.sha256, status="processed",
                         status_details=status_details, created_at=now,
                         expires_at=now + expires_after if expires_after else None)
        try:
            with self.db.session() as s:
                s.add(row)
        except Exception:
            self.blobs.delete(blob.name)  # no row will ever point at these bytes
            raise
        return self._info(row)

    def get(self, file_id: str, project: str | None) -> FileInfo | None:
        """The file, or None if it does not exist, was deleted, expired, or belongs to another project.
        `project=None` looks across projects (for the job worker, which runs on behalf of any project)."""
        if not is_file_id(file_id):
            return None
        with self.db.session() as s:
            row = s.scalars(select(FileRecord).where(
                FileRecord.id == file_id, *self._visible(project, int(time.time())))).first()
            return self._info(row) if row else None

    def list(self, project: str, *, purpose: str | None = None, after: str | None = None,
             limit: int = 10000, order: Order = "desc") -> Page[FileInfo]:
        """One page of the project's files, newest first by default. Raises `UnknownCursor`."""
        stmt = select(FileRecord).where(*self._visible(project, int(time.time())))
        if purpose is not None:
            stmt = stmt.where(FileRecord.purpose == purpose)
        with self.db.session() as s:
            page = paginate(s, stmt, id_column=FileRecord.id, sort_columns=[FileRecord.pk],
                            after=after, limit=limit, order=order)
            return Page(items=[self._info(r) for r in page.items], has_more=page.has_more)

    def delete(self, file_id: str, project: str | None) -> bool:
        """Delete the file's bytes and hide its row. False if the caller cannot see such a file."""
        if not is_file_id(file_id):
            return False
        now = int(time.time())
        with self.db.session() as s:
            result = s.execute(update(FileRecord)
                               .where(FileRecord.id == file_id, *self._visible(project, now))
                               .values(deleted_at=now))
            deleted = result.rowcount == 1
        if deleted:
            self.blobs.delete(file_id)
        return deleted
