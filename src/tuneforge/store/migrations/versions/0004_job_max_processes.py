"""Jobs' `max_processes`: a job's cap on its training processes (data-parallel ranks, docs/scale.md).

Revision ID: 0004_job_max_processes
Revises: 0003_checkpoint_permissions
Create Date: 2026-12-02

Adds one nullable column, so every existing job keeps its row and means what it did (no cap). Added only
if missing: a database made by `create_all` with this code already has it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_job_max_processes"
down_revision = "0003_checkpoint_permissions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("fine_tuning_jobs")}
    if "max_processes" in columns:
        return
    with op.batch_alter_table("fine_tuning_jobs") as batch:
        batch.add_column(sa.Column("max_processes", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fine_tuning_jobs") as batch:
        batch.drop_column("max_processes")
