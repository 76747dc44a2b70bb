"""Migration 0026 makes platform-wide registry profiles one per host: duplicates kept before it
(NULL escaped the unique constraint) are renamed ``<host>-duplicate-<id>``, the oldest keeps the
host; afterwards the database itself refuses a second platform-wide profile for a host."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from dockyard.db.engine import Database
from dockyard.db.migrate import alembic_config, upgrade

ROWS = """
INSERT INTO workspaces (id, name, kind, created_at) VALUES (1, 'lab', 'org', 0);
INSERT INTO upstream_credentials (id, workspace_id, registry, username, secret, created_at, created_by)
    VALUES (10, NULL, 'quay.io', 'a', 's1', 1, 'mia');
INSERT INTO upstream_credentials (id, workspace_id, registry, username, secret, created_at, created_by)
    VALUES (11, NULL, 'quay.io', 'b', 's2', 2, 'tom');
INSERT INTO upstream_credentials (id, workspace_id, registry, username, secret, created_at, created_by)
    VALUES (12, NULL, 'reg.example.org:5000', 'c', 's3', 3, 'mia');
INSERT INTO upstream_credentials (id, workspace_id, registry, username, secret, created_at, created_by)
    VALUES (13, NULL, 'reg.example.org:5000', 'd', 's4', 4, 'tom');
INSERT INTO upstream_credentials (id, workspace_id, registry, username, secret, created_at, created_by)
    VALUES (14, NULL, 'quay.io', 'e', 's5', 5, 'ann');
INSERT INTO upstream_credentials (id, workspace_id, registry, username, secret, created_at, created_by)
    VALUES (15, 1, 'quay.io', 'f', 's6', 6, 'mia');
"""
DUPLICATE = (
    "INSERT INTO upstream_credentials (id, workspace_id, registry, username, secret, created_at, created_by) "
    "VALUES (20, NULL, 'quay.io', 'x', 'y', 9, 'z')"
)


def _to_0022_with_rows(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "0022")
    for statement in ROWS.split(";"):
        if statement.strip():
            connection.execute(text(statement))


async def test_duplicate_platform_profiles_are_renamed_and_refused_from_then_on(
    empty_database_url: str,
) -> None:
    db = Database(empty_database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_to_0022_with_rows)
        await upgrade(db)
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT id, workspace_id, registry, username FROM upstream_credentials ORDER BY id")
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            (10, None, "quay.io", "a"),  # the oldest keeps the host
            (11, None, "quay.io-duplicate-11", "b"),
            (12, None, "reg.example.org:5000", "c"),
            (13, None, "reg.example.org-duplicate-13:5000", "d"),  # the port stays a port
            (14, None, "quay.io-duplicate-14", "e"),
            (15, 1, "quay.io", "f"),  # a workspace's own profile is no duplicate
        ]
        with pytest.raises(IntegrityError):
            async with db.engine.begin() as conn:
                await conn.execute(text(DUPLICATE))
        async with db.engine.begin() as conn:  # another workspace's, or another host: fine
            await conn.execute(text(DUPLICATE.replace("(20, NULL, 'quay.io'", "(21, NULL, 'ghcr.io'")))
    finally:
        await db.dispose()
