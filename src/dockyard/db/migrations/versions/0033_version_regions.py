"""regions: the regions each catalog version lives in, and the blobs each region holds

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 15:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "region_blobs",
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("digest", sa.String(150), primary_key=True),
    )
    op.create_index("ix_region_blobs_digest", "region_blobs", ["digest"])
    op.create_table(
        "version_regions",
        sa.Column(
            "version_id",
            sa.Integer(),
            sa.ForeignKey("image_versions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("bytes_total", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("blobs_done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("blobs_total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_version_regions_region", "version_regions", ["region", "status"])


def downgrade() -> None:
    op.drop_index("ix_version_regions_region", table_name="version_regions")
    op.drop_table("version_regions")
    op.drop_index("ix_region_blobs_digest", table_name="region_blobs")
    op.drop_table("region_blobs")
