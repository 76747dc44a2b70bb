"""Migration 0018 counts what workspaces already store: each blob once per workspace, however
many of its repositories link it, and in each workspace that links it."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

from dockyard.db.engine import Database
from dockyard.db.migrate import alembic_config, upgrade

ROWS = """
INSERT INTO workspaces (id, name, kind, created_at) VALUES (1, 'lab', 'org', 0), (2, 'other', 'org', 0),
    (3, 'empty', 'org', 0);
INSERT INTO repositories (id, name, created_at, workspace_id) VALUES (1, 'lab/a', 0, 1), (2, 'lab/b', 0, 1),
    (3, 'other/a', 0, 2), (4, 'legacy', 0, NULL);
INSERT INTO blobs (digest, size, created_at, touched_at)
    VALUES ('sha256:aa', 100, 0, 0), ('sha256:bb', 20, 0, 0), ('sha256:cc', 3, 0, 0);
INSERT INTO repository_blobs (repository_id, digest, touched_at)
    VALUES (1, 'sha256:aa', 0), (2, 'sha256:aa', 0), (2, 'sha256:bb', 0),
        (3, 'sha256:aa', 0), (4, 'sha256:cc', 0);
"""


def _to_0015_with_rows(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "0015")
    for statement in ROWS.split(";"):
        if statement.strip():
            connection.execute(text(statement))


async def test_the_backfill_counts_each_blob_once_per_workspace(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_to_0015_with_rows)
        await upgrade(db)
        async with db.engine.connect() as conn:
            counted = (
                await conn.execute(
                    text("SELECT workspace_id, digest, size FROM workspace_blobs ORDER BY 1, 2")
                )
            ).all()
            quotas = (
                await conn.execute(
                    text("SELECT workspace_id, limit_bytes, used_bytes FROM workspace_quotas ORDER BY 1")
                )
            ).all()
        assert [tuple(r) for r in counted] == [
            (1, "sha256:aa", 100),
            (1, "sha256:bb", 20),
            (2, "sha256:aa", 100),
        ]
        assert [tuple(r) for r in quotas] == [(1, None, 120), (2, None, 100)]
    finally:
        await db.dispose()
