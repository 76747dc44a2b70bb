"""A push racing an unforced workspace deletion (#18), on a real metadata database (SQLite and
PostgreSQL). Either the push's repository is committed first, and the deletion (which waits for
it) is refused with the list; or the deletion comes first, and the push is told the name is
unknown, never a 500, and leaves no repository without its workspace. On PostgreSQL each test
waits until the second party is blocked on the first one's lock (polled with a deadline);
SQLite serialises writers, so the second one can only start after the first committed."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select, text

from dockyard.app.services import Services
from dockyard.auth.tables import repositories, workspaces
from dockyard.db.engine import Connection
from dockyard.errors import StillHolds
from dockyard.registry import repositories as repos
from dockyard.registry.errors import NameUnknown
from tests.unit.catalog.factories import WORKSPACE, People
from tests.unit.registry.factories import push_blob

DEADLINE = 30.0


async def blocked_on_a_lock(services: Services) -> None:
    """Return once another session of this database waits for a lock (PostgreSQL only)."""
    if services.db.is_sqlite:
        return
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        async with services.db.read() as conn:
            if (await conn.execute(query)).scalar_one():
                return
        await asyncio.sleep(0.05)
    raise AssertionError("no session waited for a lock")


async def test_a_push_that_creates_a_repository_first_makes_the_deletion_refuse(
    services: Services, people: People
) -> None:
    async with services.db.write() as conn:
        await repos.ensure_id(services.db, conn, f"{WORKSPACE}/fresh")  # a push's first write
        deleting = asyncio.create_task(services.identity.workspaces.delete(people.owner, WORKSPACE))
        await blocked_on_a_lock(services)
    with pytest.raises(StillHolds) as refused:
        await deleting
    assert refused.value.holdings == [f"repository {WORKSPACE}/fresh"]
    async with services.db.read() as conn:
        kept = (await conn.execute(select(repositories.c.name))).scalars().all()
    assert kept == [f"{WORKSPACE}/fresh"]


async def test_a_deletion_that_comes_first_leaves_the_push_a_name_unknown(
    services: Services, people: People
) -> None:
    reached, release = asyncio.Event(), asyncio.Event()

    async def pause(conn: Connection, workspace_id: int) -> list[str]:
        """Holds the deletion inside its transaction, after its lock, until released."""
        reached.set()
        await release.wait()
        return []

    services.identity.workspaces.holdings_from(pause)
    deleting = asyncio.create_task(services.identity.workspaces.delete(people.owner, WORKSPACE))
    await asyncio.wait_for(reached.wait(), DEADLINE)
    pushing = asyncio.create_task(push_blob(services, f"{WORKSPACE}/late", b"pushed as the workspace goes"))
    await blocked_on_a_lock(services)
    release.set()
    assert await deleting == []
    outcome = await asyncio.gather(pushing, return_exceptions=True)
    async with services.db.read() as conn:
        rows = (
            await conn.execute(
                select(repositories.c.name, workspaces.c.name).select_from(
                    repositories.outerjoin(workspaces, workspaces.c.id == repositories.c.workspace_id)
                )
            )
        ).all()
    if services.db.is_sqlite:
        # The push ran after the deletion: its namespace had no workspace, so it was made
        # anew (as for an admin's push to a new namespace); nothing is left without one.
        assert all(ws is not None for _, ws in rows), rows
        assert not isinstance(outcome[0], BaseException) or isinstance(outcome[0], NameUnknown), outcome
    else:
        assert isinstance(outcome[0], NameUnknown), outcome
        assert rows == []
