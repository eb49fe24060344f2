"""Model aliases: the `model_aliases` table (a migrated model answers under its source id).

Revision ID: 0002_model_aliases
Revises: 0001_baseline
Create Date: 2026-12-02

Only adds a table, so every existing row is kept. Created only if missing: a database made by
`create_all` with this code already has it (store/migrations/__init__.py stamps such a database at the
baseline and then runs this revision).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_model_aliases"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("model_aliases"):
        return
    op.create_table("model_aliases",
                    sa.Column("project", sa.String(128), nullable=False),
                    sa.Column("id", sa.String(512), nullable=False),
                    sa.Column("job_id", sa.String(64), nullable=False),
                    sa.Column("created", sa.BigInteger(), nullable=False),
                    sa.PrimaryKeyConstraint("project", "id"))
    op.create_index("ix_model_aliases_job_id", "model_aliases", ["job_id"], unique=False)


def downgrade() -> None:
    # Not supported: to go back, restore a copy of the database taken before upgrading.
    raise NotImplementedError("downgrade is not supported")
