"""blob claims: GC leaves a blob alone between an upload's claim and its link

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob_claims",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=150), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blob_claims")),
    )
    with op.batch_alter_table("blob_claims", schema=None) as batch_op:
        batch_op.create_index("ix_blob_claims_digest", ["digest"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("blob_claims", schema=None) as batch_op:
        batch_op.drop_index("ix_blob_claims_digest")
    op.drop_table("blob_claims")
