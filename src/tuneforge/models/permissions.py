"""Checkpoint permissions: a project shares one of its fine-tuned checkpoints with other projects.

Only the project that owns a checkpoint (its `fine_tuned_models` row) manages its permissions; to any
other project the checkpoint does not exist (None, so the API answers 404 and leaks nothing). A project
given permission resolves the checkpoint's id wherever it names a model (`models/registry.py`):
`/v1/models`, chat and legacy completions, as a base for continued training. It cannot delete the model.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tuneforge.errors import UserError
from tuneforge.store.db import Database
from tuneforge.store.paging import Order, Page, paginate
from tuneforge.store.tables_files import Project
from tuneforge.store.tables_jobs import FineTunedModel
from tuneforge.store.tables_permissions import CheckpointPermission

MAX_PROJECTS_PER_REQUEST = 100
_PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # the project names of store/keys.py
_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class PermissionInfo:
    id: str
    checkpoint: str
    project_id: str
    created_at: int


def _info(row: CheckpointPermission) -> PermissionInfo:
    return PermissionInfo(row.id, row.checkpoint, row.project_id, row.created_at)


def new_permission_id() -> str:
    return "cp_" + "".join(secrets.choice(_ALNUM) for _ in range(24))


def owns_checkpoint(session, checkpoint: str, project: str) -> bool:
    row = session.get(FineTunedModel, checkpoint)
    return row is not None and row.project == project


def is_shared_with(session, checkpoint: str, project: str) -> bool:
    stmt = select(CheckpointPermission.id).where(CheckpointPermission.checkpoint == checkpoint,
                                                 CheckpointPermission.project_id == project)
    return session.scalars(stmt.limit(1)).first() is not None


def shared_checkpoints(session, project: str) -> list[str]:
    """The model ids other projects have shared with `project`."""
    stmt = select(CheckpointPermission.checkpoint).where(CheckpointPermission.project_id == project)
    return list(session.scalars(stmt))


def _check_project_ids(session, project_ids: list[str], owner: str) -> None:
    if not project_ids:
        raise UserError("project_ids is empty: list at least one project to share the checkpoint with.",
                        param="project_ids", code="invalid_project_ids")
    if len(project_ids) > MAX_PROJECTS_PER_REQUEST:
        raise UserError(f"project_ids has {len(project_ids)} entries; at most {MAX_PROJECTS_PER_REQUEST} "
                        f"per request. Send the rest in another request.", param="project_ids",
                        code="invalid_project_ids")
    for i, pid in enumerate(project_ids):
        if not _PROJECT_ID.match(pid):
            raise UserError(f"project_ids[{i}] = {pid[:80]!r} is not a project id: 1-64 letters, digits, "
                            f"'.', '_' or '-'.", param=f"project_ids[{i}]", code="invalid_project_id")
        if pid == owner:
            raise UserError(f"project_ids[{i}] = {pid!r} is the project that owns this checkpoint; it "
                            f"can use it already. List other projects.", param=f"project_ids[{i}]",
                            code="invalid_project_id")
        if session.get(Project, pid) is None:
            raise UserError(f"project_ids[{i}]: no project {pid!r} on this server. Projects are made "
                            f"with `tuneforge keys create --project NAME`; check the name.",
                            param=f"project_ids[{i}]", code="invalid_project_id")


def grant(db: Database, checkpoint: str, owner: str, project_ids: list[str]) -> list[PermissionInfo] | None:
    """Share `checkpoint` with each project (an existing grant is returned as it is); None when `owner`
    has no such checkpoint. Two requests granting the same project at once make one grant."""
    try:
        return _grant(db, checkpoint, owner, project_ids)
    except IntegrityError:  # the other request inserted it first: now it is there to return
        return _grant(db, checkpoint, owner, project_ids)


def _grant(db: Database, checkpoint: str, owner: str, project_ids: list[str]) -> list[PermissionInfo] | None:
    with db.session() as session:
        if not owns_checkpoint(session, checkpoint, owner):
            return None
        _check_project_ids(session, project_ids, owner)
        out: dict[str, PermissionInfo] = {}
        for pid in project_ids:
            stmt = select(CheckpointPermission).where(CheckpointPermission.checkpoint == checkpoint,
                                                      CheckpointPermission.project_id == pid)
            row = session.scalars(stmt).first()
            if row is None:
                row = CheckpointPermission(id=new_permission_id(), checkpoint=checkpoint, owner_project=owner,
                                           project_id=pid, created_at=int(time.time()),
                                           created_ns=time.time_ns())
                session.add(row)
                session.flush()
            out[pid] = _info(row)
        return list(out.values())


def list_permissions(db: Database, checkpoint: str, owner: str, *, after: str | None, limit: int,
                     order: Order, project_id: str | None = None) -> Page[PermissionInfo] | None:
    """One page of the checkpoint's permissions (raises `UnknownCursor` for a bad `after`); None when
    `owner` has no such checkpoint."""
    with db.session() as session:
        if not owns_checkpoint(session, checkpoint, owner):
            return None
        stmt = select(CheckpointPermission).where(CheckpointPermission.checkpoint == checkpoint)
        if project_id is not None:
            stmt = stmt.where(CheckpointPermission.project_id == project_id)
        page = paginate(session, stmt, id_column=CheckpointPermission.id,
                        sort_columns=[CheckpointPermission.created_ns, CheckpointPermission.id],
                        after=after, limit=limit, order=order)
        return Page([_info(r) for r in page.items], page.has_more)


def revoke(db: Database, checkpoint: str, owner: str, permission_id: str) -> bool | None:
    """Delete one permission: True when deleted, False when the checkpoint has no such permission, None
    when `owner` has no such checkpoint."""
    with db.session() as session:
        if not owns_checkpoint(session, checkpoint, owner):
            return None
        row = session.get(CheckpointPermission, permission_id)
        if row is None or row.checkpoint != checkpoint:
            return False
        session.delete(row)
        return True


def forget_checkpoint(session, checkpoint: str) -> None:
    """Drop every permission of a deleted model (a later model never inherits them)."""
    stmt = select(CheckpointPermission).where(CheckpointPermission.checkpoint == checkpoint)
    for row in session.scalars(stmt):
        session.delete(row)
