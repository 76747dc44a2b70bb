"""catalog: search documents (PostgreSQL tsvector + pg_trgm, SQLite FTS5) and version labels

Revision ID: 0030
Revises: 0028
Create Date: 2026-12-07 16:00:00

Existing images get their document here (name, description); labels, annotations and history
are added as versions are next inspected, Dockerfiles as definitions are next saved (the
build definitions' current Dockerfiles are copied here too).
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR

revision = "0030"
down_revision = "0028"
branch_labels = None
depends_on = None

# SQLite: the FTS5 index mirrors search_documents through triggers (external content).
FTS = (
    "CREATE VIRTUAL TABLE search_fts USING fts5(title, body, history, dockerfile, "
    "content='search_documents', content_rowid='id', tokenize='unicode61')",
    "CREATE TRIGGER search_fts_ai AFTER INSERT ON search_documents BEGIN "
    "INSERT INTO search_fts(rowid, title, body, history, dockerfile) "
    "VALUES (new.id, new.title, new.body, new.history, new.dockerfile); END",
    "CREATE TRIGGER search_fts_ad AFTER DELETE ON search_documents BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, title, body, history, dockerfile) "
    "VALUES ('delete', old.id, old.title, old.body, old.history, old.dockerfile); END",
    "CREATE TRIGGER search_fts_au AFTER UPDATE ON search_documents BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, title, body, history, dockerfile) "
    "VALUES ('delete', old.id, old.title, old.body, old.history, old.dockerfile); "
    "INSERT INTO search_fts(rowid, title, body, history, dockerfile) "
    "VALUES (new.id, new.title, new.body, new.history, new.dockerfile); END",
)
# The words of a text as search_index.words folds them (lower case, punctuation as spaces).
PG_INSERT = (
    "INSERT INTO search_documents (name, image_id, title, body, history, dockerfile, updated_at) "
    "SELECT name, id, lower(regexp_replace(name, '[^[:alnum:]_]+', ' ', 'g')), "
    "lower(regexp_replace(description, '[^[:alnum:]_]+', ' ', 'g')), '', '', :now FROM images"
)
PG_DOCKERFILES = (
    "UPDATE search_documents d "
    "SET dockerfile = lower(regexp_replace(b.dockerfile, '[^[:alnum:]_]+', ' ', 'g')) "
    "FROM build_definitions b WHERE b.name = d.name AND b.dockerfile IS NOT NULL"
)
PG_TSV = (
    "UPDATE search_documents SET tsv = setweight(to_tsvector('simple', title), 'A') "
    "|| setweight(to_tsvector('simple', body), 'B') || setweight(to_tsvector('simple', history), 'C') "
    "|| setweight(to_tsvector('simple', dockerfile), 'D')"
)
# SQLite has no regular expressions: the words are folded by the next refresh; lower case
# and '/', '-', '.' as spaces find names and descriptions meanwhile.
SQLITE_INSERT = (
    "INSERT INTO search_documents (name, image_id, title, body, history, dockerfile, updated_at) "
    "SELECT name, id, lower(replace(replace(replace(name, '/', ' '), '-', ' '), '.', ' ')), "
    "lower(description), '', '', :now FROM images"
)
SQLITE_DOCKERFILES = (
    "UPDATE search_documents SET dockerfile = lower((SELECT dockerfile FROM build_definitions b "
    "WHERE b.name = search_documents.name)) WHERE name IN "
    "(SELECT name FROM build_definitions WHERE dockerfile IS NOT NULL)"
)


def upgrade() -> None:
    is_pg = op.get_bind().dialect.name == "postgresql"
    if is_pg:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "version_labels",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "version_id", sa.Integer(), sa.ForeignKey("image_versions.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("origin", sa.String(12), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index("ix_version_labels_key", "version_labels", ["key", "version_id"])
    op.create_index("ix_version_labels_version", "version_labels", ["version_id"])
    op.create_index(
        "ix_version_packages_name_version", "version_packages", ["name_key", "version", "version_id"]
    )
    op.create_table(
        "search_documents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("image_id", sa.Integer(), sa.ForeignKey("images.id", ondelete="SET NULL"), nullable=True),
        sa.Column("title", sa.Text(), nullable=False, server_default=""),
        sa.Column("body", sa.Text(), nullable=False, server_default=""),
        sa.Column("history", sa.Text(), nullable=False, server_default=""),
        sa.Column("dockerfile", sa.Text(), nullable=False, server_default=""),
        sa.Column("tsv", sa.Text().with_variant(TSVECTOR(), "postgresql"), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_search_documents_image", "search_documents", ["image_id"])
    op.create_index("ix_search_documents_tsv", "search_documents", ["tsv"], postgresql_using="gin")
    op.create_index(
        "ix_search_documents_trgm",
        "search_documents",
        ["title"],
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    )
    if not is_pg:
        for statement in FTS:
            op.execute(statement)
    _backfill(is_pg)


def _backfill(is_pg: bool) -> None:
    """A document per existing image (with its build definition's Dockerfile)."""
    now = {"now": time.time()}
    if is_pg:
        op.get_bind().execute(sa.text(PG_INSERT), now)
        op.execute(PG_DOCKERFILES)
        op.execute(PG_TSV)
        return
    op.get_bind().execute(sa.text(SQLITE_INSERT), now)
    op.execute(SQLITE_DOCKERFILES)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for trigger in ("search_fts_ai", "search_fts_ad", "search_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_index("ix_search_documents_trgm", table_name="search_documents")
    op.drop_index("ix_search_documents_tsv", table_name="search_documents")
    op.drop_index("ix_search_documents_image", table_name="search_documents")
    op.drop_table("search_documents")
    op.drop_index("ix_version_packages_name_version", table_name="version_packages")
    op.drop_index("ix_version_labels_version", table_name="version_labels")
    op.drop_index("ix_version_labels_key", table_name="version_labels")
    op.drop_table("version_labels")
