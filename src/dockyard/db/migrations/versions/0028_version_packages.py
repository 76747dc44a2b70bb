"""catalog: the packages each version's filesystem declares, and when they were read

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 15:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "version_packages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "version_id",
            sa.Integer(),
            sa.ForeignKey("image_versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("ecosystem", sa.String(12), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("name_key", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=False, server_default=""),
        sa.Column("platform", sa.String(64), nullable=False, server_default=""),
    )
    op.create_index("ix_version_packages_name", "version_packages", ["name_key", "version_id"])
    op.create_index("ix_version_packages_version", "version_packages", ["version_id"])
    op.create_table(
        "version_package_scans",
        sa.Column(
            "version_id",
            sa.Integer(),
            sa.ForeignKey("image_versions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("digest", sa.String(150), nullable=True),
        sa.Column("scanned_at", sa.Float(), nullable=False),
        sa.Column("packages", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("bytes_read", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("detail", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("version_package_scans")
    op.drop_index("ix_version_packages_version", table_name="version_packages")
    op.drop_index("ix_version_packages_name", table_name="version_packages")
    op.drop_table("version_packages")
