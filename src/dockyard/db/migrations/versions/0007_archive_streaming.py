"""archive uploads import as they arrive: resume point, importer generation and holder

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 11:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("archive_uploads") as batch:
        batch.add_column(sa.Column("resume_offset", sa.BigInteger(), server_default="0", nullable=False))
        batch.add_column(sa.Column("generation", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("holder", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("archive_uploads") as batch:
        batch.drop_column("holder")
        batch.drop_column("generation")
        batch.drop_column("resume_offset")
