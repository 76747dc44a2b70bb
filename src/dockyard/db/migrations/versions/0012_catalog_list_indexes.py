"""catalog list indexes: the version list sorts by size, last change and version in the database

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_image_versions_compressed_size": ["compressed_size"],
    "ix_image_versions_updated_at": ["updated_at"],
    "ix_image_versions_version": ["version"],
}


def upgrade() -> None:
    with op.batch_alter_table("image_versions", schema=None) as batch_op:
        for name, columns in INDEXES.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("image_versions", schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)
