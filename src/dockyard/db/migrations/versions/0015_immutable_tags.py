"""immutable tags: per-workspace patterns of tags a push may not move

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "immutable_tags",
        sa.Column(
            "workspace_id",
            sa.Integer(),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("patterns", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("exceptions", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(140), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_table("immutable_tags")
