"""Checkpoint permissions: another project allowed to use one of a project's fine-tuned checkpoints.

OpenAI's `checkpoint.permission` (POST/GET/DELETE /v1/fine_tuning/checkpoints/{id}/permissions). A row
names the checkpoint's model id (`ft:...` or `ft:...:ckpt-step-N`), the project that owns it and the
project it is shared with; `(checkpoint, project_id)` is unique, so granting twice keeps one row.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tuneforge.store.db import Base


class CheckpointPermission(Base):
    __tablename__ = "checkpoint_permissions"
    __table_args__ = (UniqueConstraint("checkpoint", "project_id", name="uq_checkpoint_permissions_grant"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # cp_...
    checkpoint: Mapped[str] = mapped_column(String(512), index=True)  # the fine-tuned model id
    owner_project: Mapped[str] = mapped_column(String(128))
    project_id: Mapped[str] = mapped_column(String(128), index=True)  # the project allowed to use it
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_ns: Mapped[int] = mapped_column(BigInteger)  # orders the list when grants share a second
