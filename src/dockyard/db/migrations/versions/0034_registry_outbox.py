"""registry: an outbox of the registry's events, written in the push's or delete's transaction
and applied at least once (the catalog, the audit log)

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_registry_outbox_repository", "registry_outbox", ["repository", "id"])


def downgrade() -> None:
    op.drop_index("ix_registry_outbox_repository", table_name="registry_outbox")
    op.drop_table("registry_outbox")
