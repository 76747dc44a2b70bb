"""Migration 0020 turns the credentials workspaces kept into ``distribution``-kind registry
profiles of the same workspace, losing none (the secret is untouched, still encrypted)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

from dockyard.db.engine import Database
from dockyard.db.migrate import alembic_config, upgrade

ROWS = """
INSERT INTO workspaces (id, name, kind, created_at) VALUES (1, 'lab', 'org', 0);
INSERT INTO upstream_credentials (workspace_id, registry, username, secret, created_at, created_by)
    VALUES (1, 'quay.io', 'robot', 'gAAAA-encrypted', 5, 'mia');
"""


def _to_0019_with_rows(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "0019")
    for statement in ROWS.split(";"):
        if statement.strip():
            connection.execute(text(statement))


async def test_kept_credentials_become_distribution_profiles(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_to_0019_with_rows)
        await upgrade(db)
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT workspace_id, registry, username, secret, kind, plain_http, tls_verify, "
                        "ca_bundle, ecr_account FROM upstream_credentials"
                    )
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            (1, "quay.io", "robot", "gAAAA-encrypted", "distribution", None, True, None, None)
        ]
    finally:
        await db.dispose()
