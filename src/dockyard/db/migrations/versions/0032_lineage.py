"""lineage: layer chains of each version, its base, the FROM of builds made here, and the
per-definition setting to rebuild when the base is updated

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "layer_chains",
        sa.Column(
            "version_id",
            sa.Integer(),
            sa.ForeignKey("image_versions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("platform", sa.String(64), primary_key=True),
        sa.Column("depth", sa.Integer(), primary_key=True),
        sa.Column("chain", sa.String(80), nullable=False),
        sa.Column("top", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_layer_chains_chain", "layer_chains", ["chain", "top"])
    op.create_table(
        "version_lineage",
        sa.Column(
            "version_id",
            sa.Integer(),
            sa.ForeignKey("image_versions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("platform", sa.String(64), nullable=False, server_default=""),
        sa.Column("base_version_id", sa.Integer(), sa.ForeignKey("image_versions.id", ondelete="SET NULL")),
        sa.Column("base_image_id", sa.Integer(), sa.ForeignKey("images.id", ondelete="SET NULL")),
        sa.Column("base_version", sa.String(128)),
        sa.Column("base_digest", sa.String(150)),
        sa.Column("base_chain", sa.String(80)),
        sa.Column("base_pushed_at", sa.Float()),
        sa.Column("depth", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("layers_added", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("computed_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_version_lineage_base", "version_lineage", ["base_version_id", "version_id"])
    op.create_index("ix_version_lineage_base_image", "version_lineage", ["base_image_id"])
    op.create_table(
        "built_from",
        sa.Column("digest", sa.String(150), primary_key=True),
        sa.Column("reference", sa.String(600), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    with op.batch_alter_table("build_definitions") as batch:
        batch.add_column(
            sa.Column("rebuild_on_base_update", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index("ix_build_runs_digest", "build_runs", ["digest"])


def downgrade() -> None:
    op.drop_index("ix_build_runs_digest", table_name="build_runs")
    with op.batch_alter_table("build_definitions") as batch:
        batch.drop_column("rebuild_on_base_update")
    op.drop_table("built_from")
    op.drop_index("ix_version_lineage_base_image", table_name="version_lineage")
    op.drop_index("ix_version_lineage_base", table_name="version_lineage")
    op.drop_table("version_lineage")
    op.drop_index("ix_layer_chains_chain", table_name="layer_chains")
    op.drop_table("layer_chains")
