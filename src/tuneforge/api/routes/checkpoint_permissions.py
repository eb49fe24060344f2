"""`/v1/fine_tuning/checkpoints/{fine_tuned_model_checkpoint}/permissions`: share a checkpoint with
other projects (OpenAI's checkpoint permissions; logic in models/permissions.py).

Only the owning project manages a checkpoint's permissions; to any other caller the checkpoint does not
exist (404). Model ids hold `:` (and `/` for hub-named bases), hence the `:path` parameters.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool

from tuneforge.api.deps import current_project, get_db
from tuneforge.api.errors import not_found
from tuneforge.api.pagination import cursor_errors, list_page
from tuneforge.api.schemas.common import error_responses
from tuneforge.api.schemas.permissions import (
    PermissionCreate,
    PermissionCreatedList,
    PermissionDeleted,
    PermissionList,
    permission_object,
)
from tuneforge.models import permissions
from tuneforge.store.db import Database

router = APIRouter(tags=["fine-tuning"], responses=error_responses(401))
BASE = "/fine_tuning/checkpoints/{fine_tuned_model_checkpoint:path}/permissions"
# The SDK sends ascending/descending; asc/desc (the other lists' words) are taken too.
OrderWord = Literal["ascending", "descending", "asc", "desc"]


def _no_checkpoint(checkpoint: str):
    return not_found(f"No such fine-tuned model checkpoint: {checkpoint[:600]!r} in this project. Use a "
                     f"`fine_tuned_model_checkpoint` from GET /v1/fine_tuning/jobs/{{id}}/checkpoints of one "
                     f"of your jobs.", param="fine_tuned_model_checkpoint", code="model_not_found")


@router.post(BASE, response_model=PermissionCreatedList, responses=error_responses(400, 404),
             summary="Share a checkpoint with other projects")
async def create_permissions(body: PermissionCreate,
                             fine_tuned_model_checkpoint: str = Path(..., max_length=512),
                             project: str = Depends(current_project), db: Database = Depends(get_db)) -> dict:
    made = await run_in_threadpool(permissions.grant, db, fine_tuned_model_checkpoint, project,
                                   body.project_ids)
    if made is None:
        raise _no_checkpoint(fine_tuned_model_checkpoint)
    return list_page([permission_object(p) for p in made], False)


@router.get(BASE, response_model=PermissionList, responses=error_responses(400, 404),
            summary="List a checkpoint's permissions")
def list_permissions(fine_tuned_model_checkpoint: str = Path(..., max_length=512),
                     after: str | None = Query(None, max_length=200, description="A permission id."),
                     limit: int = Query(10, ge=1, le=100), order: OrderWord = Query("descending"),
                     project_id: str | None = Query(None, max_length=64,
                                                    description="Only this project's permission."),
                     project: str = Depends(current_project), db: Database = Depends(get_db)) -> dict:
    with cursor_errors():
        page = permissions.list_permissions(db, fine_tuned_model_checkpoint, project, after=after,
                                            limit=limit, order="asc" if order.startswith("asc") else "desc",
                                            project_id=project_id)
    if page is None:
        raise _no_checkpoint(fine_tuned_model_checkpoint)
    return list_page([permission_object(p) for p in page.items], page.has_more, with_ids=True)


@router.delete(BASE + "/{permission_id}", response_model=PermissionDeleted, responses=error_responses(404),
               summary="Stop sharing a checkpoint with one project")
def delete_permission(fine_tuned_model_checkpoint: str = Path(..., max_length=512),
                      permission_id: str = Path(..., max_length=200), project: str = Depends(current_project),
                      db: Database = Depends(get_db)) -> dict:
    done = permissions.revoke(db, fine_tuned_model_checkpoint, project, permission_id)
    if done is None:
        raise _no_checkpoint(fine_tuned_model_checkpoint)
    if not done:
        raise not_found(f"No such permission: {permission_id[:200]!r} on checkpoint "
                        f"{fine_tuned_model_checkpoint[:600]!r}. List them with GET on the permissions URL.",
                        param="permission_id", code="not_found")
    return {"id": permission_id, "object": "checkpoint.permission", "deleted": True}
