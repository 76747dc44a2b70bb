"""marks: workspace marks, trusted keys and signature checks (trust marks)

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 15:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspace_marks",
        sa.Column(
            "workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("mark", sa.String(10), nullable=False),
        sa.Column("set_at", sa.Float(), nullable=False),
        sa.Column("set_by", sa.String(140), nullable=False, server_default=""),
    )
    op.create_table(
        "trusted_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("key_id", sa.String(80), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("algorithm", sa.String(12), nullable=False),
        sa.Column("pem", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(140), nullable=False, server_default=""),
        sa.UniqueConstraint("workspace_id", "key_id", name="uq_trusted_keys_workspace_key"),
    )
    op.create_table(
        "signature_checks",
        sa.Column(
            "version_id",
            sa.Integer(),
            sa.ForeignKey("image_versions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("digest", sa.String(150), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("key_id", sa.String(80), nullable=True),
        sa.Column("signature_digest", sa.String(150), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
        sa.Column("checked_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_signature_checks_state", "signature_checks", ["state"])


def downgrade() -> None:
    op.drop_index("ix_signature_checks_state", table_name="signature_checks")
    op.drop_table("signature_checks")
    op.drop_table("trusted_keys")
    op.drop_table("workspace_marks")
