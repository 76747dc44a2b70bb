"""registry profiles: upstream_credentials gains a kind, TLS settings, ECR fields; platform-wide rows

Existing credentials stay as ``distribution``-kind profiles of their workspace.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 09:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upstream_credentials") as batch:
        batch.alter_column("workspace_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="distribution"))
        batch.add_column(sa.Column("plain_http", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("tls_verify", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("ca_bundle", sa.Text(), nullable=True))
        batch.add_column(sa.Column("ecr_account", sa.String(12), nullable=True))
        batch.add_column(sa.Column("ecr_region", sa.String(40), nullable=True))
    op.create_index("ix_upstream_credentials_registry", "upstream_credentials", ["registry", "workspace_id"])
    with op.batch_alter_table("image_versions") as batch:
        batch.add_column(
            sa.Column("private_upstream", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("image_versions") as batch:
        batch.drop_column("private_upstream")
    op.drop_index("ix_upstream_credentials_registry", table_name="upstream_credentials")
    op.execute("DELETE FROM upstream_credentials WHERE workspace_id IS NULL")
    with op.batch_alter_table("upstream_credentials") as batch:
        for name in ("ecr_region", "ecr_account", "ca_bundle", "tls_verify", "plain_http", "kind"):
            batch.drop_column(name)
        batch.alter_column("workspace_id", existing_type=sa.Integer(), nullable=False)
