"""image imports: versions copied from their external reference into Dockyard's storage

Revision ID: 0022
Revises: 0019
Create Date: 2026-12-07 09:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_imports",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("image_id", sa.Integer(), sa.ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("job_id", sa.Integer()),
        sa.Column("source_reference", sa.String(600), nullable=False),
        sa.Column("source_digest", sa.String(150)),
        sa.Column("target_digest", sa.String(150)),
        sa.Column("platforms", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("requested_by", sa.String(140), nullable=False),
        sa.Column("imported_at", sa.Float()),
        sa.Column("error", sa.Text()),
        sa.UniqueConstraint("image_id", "version", name="uq_image_imports_image_version"),
    )

    with op.batch_alter_table("image_versions") as batch:
        batch.add_column(sa.Column("imported_from", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("image_versions") as batch:
        batch.drop_column("imported_from")
    op.drop_table("image_imports")
