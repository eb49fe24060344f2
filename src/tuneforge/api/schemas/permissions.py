"""Checkpoint permission shapes (`checkpoint.permission`, reference §13; SDK
`types/fine_tuning/checkpoints/`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tuneforge.api.schemas.common import IdListPage, ListPage
from tuneforge.models.permissions import PermissionInfo


class PermissionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project_ids: list[str] = Field(..., description="The projects to share the checkpoint with.")


class PermissionObject(BaseModel):
    id: str = Field(..., description="`cp_...`")
    object: Literal["checkpoint.permission"] = "checkpoint.permission"
    created_at: int
    project_id: str


class PermissionDeleted(BaseModel):
    id: str
    object: Literal["checkpoint.permission"] = "checkpoint.permission"
    deleted: bool = True


PermissionCreatedList = ListPage[PermissionObject]
PermissionList = IdListPage[PermissionObject]


def permission_object(info: PermissionInfo) -> dict:
    return {"id": info.id, "object": "checkpoint.permission", "created_at": info.created_at,
            "project_id": info.project_id}
