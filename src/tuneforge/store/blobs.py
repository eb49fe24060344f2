"""File bytes on disk, written atomically: a temp file in the same folder tree, fsync, then rename.

A reader never sees a half-written blob: until `commit()` the bytes live under `.tmp/`, and the rename
into place is atomic on POSIX filesystems. The sha256 is computed while the bytes stream through.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tuneforge.settings import ensure_writable_dir

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
CHUNK = 1024 * 1024


class BlobError(ValueError):
    """A blob name that could escape the store, or a blob that is missing."""


@dataclass(frozen=True)
class Blob:
    name: str
    path: Path
    size: int
    sha256: str


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise BlobError(f"invalid blob name {name!r}: use letters, digits, '.', '_' and '-' only")
    return name


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """Streams bytes into a temp file; `commit(name)` makes them a blob, `abort()` throws them away."""

    def __init__(self, store: BlobStore):
        self._store = store
        fd, tmp = tempfile.mkstemp(dir=store.tmp_dir, prefix="upload-")
        self._file = os.fdopen(fd, "wb")
        self._tmp = Path(tmp)
        self._hash = hashlib.sha256()
        self.size = 0
        self._done = False

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)

    def commit(self, name: str) -> Blob:
        target = self._store.path(name)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, target)
        _fsync_dir(target.parent)  # make the rename itself durable
        self._done = True
        return Blob(name=name, path=target, size=self.size, sha256=self._hash.hexdigest())

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._file.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.abort()  # a no-op after commit()


class BlobStore:
    """A flat folder of blobs named by id (e.g. `file-abc...`), plus `.tmp/` for writes in progress."""

    def __init__(self, root: Path):
        self.root = ensure_writable_dir(Path(root), "The files folder")
        self.tmp_dir = ensure_writable_dir(self.root / ".tmp", "The files folder")

    def path(self, name: str) -> Path:
        return self.root / _check_name(name)

    def writer(self) -> BlobWriter:
        return BlobWriter(self)

    def put_bytes(self, name: str, data: bytes) -> Blob:
        with self.writer() as w:
            w.write(data)
            return w.commit(name)

    def put_file(self, name: str, source: Path) -> Blob:
        """Copy `source` into the store (streamed, never read whole into memory)."""
        with self.writer() as w, open(source, "rb") as fh:
            while chunk := fh.read(CHUNK):
                w.write(chunk)
            return w.commit(name)

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)
