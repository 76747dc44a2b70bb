"""build definitions: the network their RUN steps get (none or egress)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 22:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing definitions get "none" like new ones: RUN steps used to share the server's
    # network, loopback included, and only an edit of the definition should open the way out again.
    with op.batch_alter_table("build_definitions") as batch:
        batch.add_column(sa.Column("network", sa.String(length=16), server_default="none", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("build_definitions") as batch:
        batch.drop_column("network")
