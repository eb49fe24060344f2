"""Shapes shared by every endpoint family: OpenAI's error body, list pages, deletion results."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """`{"error": {"message", "type", "param", "code"}}`, the body of every non-2xx response."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route, so the published OpenAPI schema documents its error bodies."""
    text = {400: "Invalid request (`param` names the field)", 401: "Missing or invalid API key",
            404: "No such object (or it belongs to another project)", 413: "Upload too large",
            409: "Conflict with the object's state"}
    return {s: {"model": ErrorResponse, "description": text.get(s, "Error")} for s in statuses}


class ListPage(BaseModel, Generic[T]):
    """`{"object": "list", "data": [...], "has_more": bool}`: jobs, events (SDK `SyncCursorPage`)."""

    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool = False


class IdListPage(ListPage[T], Generic[T]):
    """A cursor page that also names its first and last ids (files, checkpoints)."""

    first_id: str | None = None
    last_id: str | None = None


class DeletedObject(BaseModel):
    id: str
    object: str
    deleted: bool = Field(True)
