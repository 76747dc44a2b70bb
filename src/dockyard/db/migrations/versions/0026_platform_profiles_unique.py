"""platform-wide registry profiles: one per host (a partial unique index; NULL escaped the old one)

The unique constraint on (workspace_id, registry) never covered platform-wide profiles
(``workspace_id`` NULL: NULLs are distinct), so two administrators saving the same host at
the same moment on PostgreSQL could keep two. Existing duplicates are not deleted (their
secrets cannot be merged): the oldest keeps the host, each later one is renamed with the
suffix ``-duplicate-<id>`` on the host name (``quay.io`` -> ``quay.io-duplicate-7``,
``reg.example.org:5000`` -> ``reg.example.org-duplicate-7:5000``), which no reference names, so
it is never used; it stays listed for an administrator to look at and delete. Each rename is
logged as a warning.

Revision ID: 0026
Revises: 0023
Create Date: 2026-12-07 12:00:00
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0023"
branch_labels = None
depends_on = None

INDEX = "uq_upstream_credentials_platform_registry"
PLATFORM = "workspace_id IS NULL"
MAX_REGISTRY = 255
log = logging.getLogger("dockyard")


def renamed(registry: str, row_id: int) -> str:
    """``registry`` with ``-duplicate-<id>`` after its host name (before any port)."""
    host, colon, port = registry.rpartition(":")
    if not colon or not port.isdigit():
        host, colon, port = registry, "", ""
    suffix = f"-duplicate-{row_id}"
    tail = f"{suffix}{colon}{port}"
    return f"{host[: MAX_REGISTRY - len(tail)]}{tail}"


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT id, registry FROM upstream_credentials WHERE workspace_id IS NULL ORDER BY registry, id"
        )
    ).all()
    seen: set[str] = set()
    for row_id, registry in rows:
        if registry not in seen:
            seen.add(registry)
            continue
        new = renamed(registry, int(row_id))
        conn.execute(
            sa.text("UPDATE upstream_credentials SET registry = :new WHERE id = :id"),
            {"new": new, "id": row_id},
        )
        log.warning(
            "platform-wide registry profile %s (id %s) duplicated an older one: renamed %s; "
            "delete it once checked (DELETE /api/v1/registries/%s)",
            registry,
            row_id,
            new,
            new,
        )
    op.create_index(
        INDEX,
        "upstream_credentials",
        ["registry"],
        unique=True,
        sqlite_where=sa.text(PLATFORM),
        postgresql_where=sa.text(PLATFORM),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="upstream_credentials")
