"""retention: rules, their runs, and when manifests were last pulled

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-07 08:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "manifest_pulls",
        sa.Column(
            "repository_id",
            sa.Integer(),
            sa.ForeignKey("repositories.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("digest", sa.String(150), primary_key=True),
        sa.Column("last_pulled_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "retention_rules",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("repository", sa.String(255)),
        sa.Column("tag_pattern", sa.String(128), nullable=False, server_default=""),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("count", sa.Integer()),
        sa.Column("ordering", sa.String(10)),
        sa.Column("days", sa.Integer()),
        sa.Column("every_hours", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("daily_at", sa.Integer()),
        sa.Column("next_run_at", sa.Float()),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(140), nullable=False),
    )
    op.create_index("ix_retention_rules_workspace", "retention_rules", ["workspace_id", "id"])
    op.create_index("ix_retention_rules_due", "retention_rules", ["next_run_at"])
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("rule_id", sa.Integer(), sa.ForeignKey("retention_rules.id", ondelete="SET NULL")),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("started_by", sa.String(140), nullable=False),
        sa.Column("job_id", sa.Integer()),
        sa.Column("queued_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float()),
        sa.Column("finished_at", sa.Float()),
        sa.Column("total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("deleted", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("kept", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("items", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_retention_runs_workspace", "retention_runs", ["workspace_id", "id"])
    op.create_index("ix_retention_runs_rule", "retention_runs", ["rule_id", "id"])


def downgrade() -> None:
    op.drop_table("retention_runs")
    op.drop_table("retention_rules")
    op.drop_table("manifest_pulls")
