"""workspace quotas: each workspace's limit and the blobs it stores, counted once

Revision ID: 0018
Revises: 0015
Create Date: 2026-12-07 08:30:00

Backfilled from the links that exist: one ``workspace_blobs`` row per blob linked into any
repository of a workspace (however many), and each workspace's ``used_bytes`` their sum. No
workspace gets a limit of its own: the platform default applies to all of them.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspace_quotas",
        sa.Column(
            "workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("limit_bytes", sa.BigInteger()),
        sa.Column("used_bytes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(140), nullable=False, server_default=""),
    )
    op.create_table(
        "workspace_blobs",
        sa.Column(
            "workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("digest", sa.String(150), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
    )
    op.execute(
        """
        INSERT INTO workspace_blobs (workspace_id, digest, size)
        SELECT DISTINCT r.workspace_id, l.digest, b.size
        FROM repository_blobs l
        JOIN repositories r ON r.id = l.repository_id
        JOIN blobs b ON b.digest = l.digest
        WHERE r.workspace_id IS NOT NULL
        """
    )
    op.execute(
        sa.text(
            """
            INSERT INTO workspace_quotas (workspace_id, limit_bytes, used_bytes, updated_at, updated_by)
            SELECT workspace_id, NULL, SUM(size), :now, ''
            FROM workspace_blobs
            GROUP BY workspace_id
            """
        ).bindparams(now=time.time())
    )


def downgrade() -> None:
    op.drop_table("workspace_blobs")
    op.drop_table("workspace_quotas")
