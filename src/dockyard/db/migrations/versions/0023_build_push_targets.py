"""build push targets: other registries a build also pushes to, and each push's result

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 12:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("build_definitions") as batch:
        batch.add_column(sa.Column("push_targets", sa.Text(), nullable=False, server_default="[]"))
    with op.batch_alter_table("build_runs") as batch:
        batch.add_column(sa.Column("push_results", sa.Text(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("build_runs") as batch:
        batch.drop_column("push_results")
    with op.batch_alter_table("build_definitions") as batch:
        batch.drop_column("push_targets")
