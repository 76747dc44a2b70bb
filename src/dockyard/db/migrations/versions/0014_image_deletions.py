"""image deletions: a deleted image's history outlives it

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_deletions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("image_name", sa.String(255), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(140), nullable=False, server_default=""),
        sa.Column("detail", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("history", sa.Text(), nullable=False, server_default="[]"),
    )
    op.create_index("ix_image_deletions_name", "image_deletions", ["image_name", "id"])


def downgrade() -> None:
    op.drop_index("ix_image_deletions_name", table_name="image_deletions")
    op.drop_table("image_deletions")
