"""images by workspace and name: a workspace's catalog pages in name order from an index

The catalog lists (``GET /api/v1/images``, ``/api/v1/versions``) filtered by workspace, as the
web UI's workspace switcher asks, sort by image name: with ``(workspace_id, name)`` a page reads
that workspace's images in order and stops, instead of walking every image's name. It replaces
the index on ``workspace_id`` alone, which it serves too.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 05:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.create_index("ix_images_workspace_name", ["workspace_id", "name"], unique=False)
        batch_op.drop_index("ix_images_workspace")


def downgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.create_index("ix_images_workspace", ["workspace_id"], unique=False)
        batch_op.drop_index("ix_images_workspace_name")
