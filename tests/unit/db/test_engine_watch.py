"""Database.after_commit_touching: the hook runs after a committed write that changed rows
of a watched table, and only then (not for a rollback, a quiet statement, a write that
changed nothing, or another table)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, update

from dockyard.auth.tables import users
from dockyard.cluster.tables import leases
from dockyard.db.engine import QUIET, Database


async def rolled_back(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(update(users).values(is_admin=True))
        raise RuntimeError("rolled back")


async def test_the_hook_hears_committed_changes_of_watched_tables_only(database_url: str) -> None:
    db = Database(database_url)
    heard: list[int] = []

    async def hook() -> None:
        heard.append(1)

    db.after_commit_touching(frozenset({"users"}), hook)
    row = {"username": "alice", "created_at": 1.0}
    try:
        async with db.write() as conn:
            await conn.execute(insert(users).values(**row))
        assert len(heard) == 1
        async with db.write() as conn:  # nothing matches: nothing changed
            await conn.execute(update(users).where(users.c.username == "nobody").values(is_admin=True))
        async with db.write() as conn:
            await conn.execute(
                update(users)
                .where(users.c.username == "alice")
                .values(last_login_at=2.0)
                .execution_options(**{QUIET: True})
            )
        async with db.write() as conn:
            await conn.execute(insert(leases).values(name="gc", holder="me", expires_at=3.0))
        assert len(heard) == 1
        with pytest.raises(RuntimeError):
            await rolled_back(db)
        assert len(heard) == 1
        async with db.write() as conn:  # the mark of the rolled back one was not left behind
            await conn.execute(delete(leases))
        assert len(heard) == 1
        async with db.write() as conn:
            await conn.execute(delete(users))
        assert len(heard) == 2
    finally:
        await db.dispose()
