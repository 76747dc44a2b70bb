"""webhooks: a rotated signing secret keeps signing beside the new one until its grace ends

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 12:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("previous_secret", sa.Text(), nullable=True))
        batch.add_column(sa.Column("previous_until", sa.Float(), nullable=True))
        batch.add_column(sa.Column("secret_rotated_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("secret_rotated_at")
        batch.drop_column("previous_until")
        batch.drop_column("previous_secret")
