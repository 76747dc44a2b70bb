"""pull-through cache: cache workspaces (size limit, tag revalidation) and tag checks

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-07 09:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cache_workspaces",
        sa.Column(
            "workspace_id",
            sa.Integer(),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("limit_bytes", sa.BigInteger(), nullable=False),
        sa.Column("revalidate_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "cache_tag_checks",
        sa.Column("repository", sa.String(255), primary_key=True),
        sa.Column("tag", sa.String(128), primary_key=True),
        sa.Column("checked_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cache_tag_checks")
    op.drop_table("cache_workspaces")
