"""Checkpoint permissions: the `checkpoint_permissions` table (a checkpoint shared with other projects).

Revision ID: 0003_checkpoint_permissions
Revises: 0002_model_aliases
Create Date: 2026-12-02

Only adds a table, so every existing row is kept. Created only if missing: a database made by
`create_all` with this code already has it (store/migrations/__init__.py stamps such a database at the
baseline and then runs the later revisions).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_checkpoint_permissions"
down_revision = "0002_model_aliases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("checkpoint_permissions"):
        return
    op.create_table("checkpoint_permissions",
                    sa.Column("id", sa.String(64), nullable=False),
                    sa.Column("checkpoint", sa.String(512), nullable=False),
                    sa.Column("owner_project", sa.String(128), nullable=False),
                    sa.Column("project_id", sa.String(128), nullable=False),
                    sa.Column("created_at", sa.BigInteger(), nullable=False),
                    sa.Column("created_ns", sa.BigInteger(), nullable=False),
                    sa.PrimaryKeyConstraint("id"),
                    sa.UniqueConstraint("checkpoint", "project_id", name="uq_checkpoint_permissions_grant"))
    op.create_index("ix_checkpoint_permissions_checkpoint", "checkpoint_permissions", ["checkpoint"],
                    unique=False)
    op.create_index("ix_checkpoint_permissions_project_id", "checkpoint_permissions", ["project_id"],
                    unique=False)


def downgrade() -> None:
    # Not supported: to go back, restore a copy of the database taken before upgrading.
    raise NotImplementedError("downgrade is not supported")
