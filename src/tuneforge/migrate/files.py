"""Copy files from the source to the target, byte for byte, once.

A file is downloaded to a temporary folder while its sha256 is computed, then reused when the target
already holds the same bytes (the Files API exposes no checksum, so target files of the same size are
downloaded and hashed, once per run), else uploaded. An upload is one request the server commits whole,
so an interrupted run leaves no partial file, and the next run finds what the last one uploaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import openai

from tuneforge.migrate.errors import MigrateError, describe
from tuneforge.migrate.progress import Bars, CountingReader
from tuneforge.migrate.source import SourceFile

# Training and validation files must be fine-tune files on the target; result files are kept as user data.
PURPOSE = {"training": "fine-tune", "validation": "fine-tune", "result": "user_data"}
CHUNK = 1 << 20


@dataclass
class Copied:
    source_id: str
    target_id: str
    bytes: int
    sha256: str
    reused: bool


class FileCopier:
    def __init__(self, source: openai.OpenAI, target: openai.OpenAI, workdir: Path,
                 say: Callable[[str], None], bars: Bars | None = None):
        self.source, self.target, self.workdir, self.say = source, target, workdir, say
        self.bars = bars
        self._done: dict[tuple[str, str], Copied] = {}  # (source id, purpose) -> copy, this run
        self._target_files: list[dict] | None = None
        self._target_hashes: dict[str, str] = {}

    def copy(self, f: SourceFile) -> Copied:
        """The target's copy of source file `f` (reused or uploaded); MigrateError names the file."""
        purpose = PURPOSE[f.role]
        if (f.id, purpose) in self._done:
            return self._done[(f.id, purpose)]
        path = self.workdir / f.id
        digest, size = self._download(f, path)
        same = self._find(size, digest, purpose)
        if same is not None:
            self.say(f"  {f.role} file {f.id}: already on the target as {same} (same sha256), skipped")
            copied = Copied(f.id, same, size, digest, True)
        else:
            copied = Copied(f.id, self._upload(f, path, purpose, digest), size, digest, False)
            self.say(f"  {f.role} file {f.id}: uploaded as {copied.target_id} ({size} bytes)")
        path.unlink(missing_ok=True)
        self._done[(f.id, purpose)] = copied
        return copied

    def _download(self, f: SourceFile, path: Path) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        try:
            with self._bar(f"download {f.id}", f.bytes) as advance, \
                    self.source.files.with_streaming_response.content(f.id) as response, \
                    path.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                    advance(len(chunk))
        except openai.NotFoundError:
            raise MigrateError(f"{f.role} file {f.id} no longer exists on the source") from None
        except openai.APIError as exc:
            raise MigrateError(f"downloading {f.role} file {f.id} from the source failed: "
                               f"{describe(exc)}") from None
        if f.bytes is not None and size != f.bytes:
            raise MigrateError(f"downloading {f.role} file {f.id}: got {size} bytes, the source says "
                               f"{f.bytes}; run again to retry")
        return digest.hexdigest(), size

    def _bar(self, label: str, total: int | None):
        return self.bars.transfer(label, total) if self.bars else nullcontext(lambda _n: None)

    def _find(self, size: int, digest: str, purpose: str) -> str | None:
        if self._target_files is None:
            self._target_files = [o.model_dump() for o in self.target.files.list()]
        for obj in self._target_files:
            if obj.get("bytes") != size or (purpose == "fine-tune" and obj.get("purpose") != purpose):
                continue
            if obj["id"] not in self._target_hashes:
                data = self.target.files.content(obj["id"]).read()
                self._target_hashes[obj["id"]] = hashlib.sha256(data).hexdigest()
            if self._target_hashes[obj["id"]] == digest:
                return obj["id"]
        return None

    def _upload(self, f: SourceFile, path: Path, purpose: str, digest: str) -> str:
        name = f.filename or f"{f.id}.jsonl"
        try:
            with self._bar(f"upload {name}", path.stat().st_size) as advance, path.open("rb") as fh:
                obj = self.target.files.create(file=(name, CountingReader(fh, advance)), purpose=purpose)
        except openai.APIError as exc:
            raise MigrateError(f"uploading {f.role} file {f.id} to the target failed: {describe(exc)}") \
                from None
        self._target_files = [*(self._target_files or []), obj.model_dump()]
        self._target_hashes[obj.id] = digest
        return obj.id
