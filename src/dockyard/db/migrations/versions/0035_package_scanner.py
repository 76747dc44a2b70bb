"""catalog: which scanner made each version's package scan, so that scans an older scanner
left partial or failed are made again by a newer one

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-08 00:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("version_package_scans") as batch:
        batch.add_column(sa.Column("scanner", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("version_package_scans") as batch:
        batch.drop_column("scanner")
