"""The Files API shapes (OpenAI `FileObject`, `FileDeleted`, `ListFilesResponse`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from tuneforge.api.schemas.common import DeletedObject, IdListPage

FileStatus = Literal["uploaded", "processed", "error"]


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: FileStatus = "processed"
    status_details: str | None = None
    expires_at: int | None = None


class FileList(IdListPage[FileObject]):
    pass


class FileDeleted(DeletedObject):
    object: Literal["file"] = "file"
