"""Removals of one blob from two regions at once on PostgreSQL (READ COMMITTED) take turns:
the second sees the first's deletion and keeps the last copy. (SQLite serialises write
transactions already.)"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import delete, text

from dockyard.db.engine import Database
from dockyard.errors import NotFound
from dockyard.regions import blobsets
from dockyard.regions.service import RegionService
from dockyard.registry.tables import region_blobs

DIGEST = "sha256:" + "ab" * 32


def _no_storage(name: str) -> Any:
    raise NotFound(name)  # the rows alone are under test


async def _waits_for_a_lock(db: Database) -> bool:
    async with db.read() as conn:
        found = await conn.execute(
            text(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query ILIKE '%region_blobs%'"
            )
        )
        return found.first() is not None


# PostgreSQL only: SQLite serialises write transactions, and the row locks tested are PostgreSQL's.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_removing_a_blob_from_two_regions_at_once_keeps_one_copy(database_url: str) -> None:
    db = Database(database_url)
    regions = SimpleNamespace(get=_no_storage, default=SimpleNamespace(name="eu"))
    service = RegionService(db, cast(Any, None), cast(Any, regions), cast(Any, None))
    try:
        async with db.write() as conn:
            await conn.execute(region_blobs.insert(), [{"region": r, "digest": DIGEST} for r in ("eu", "us")])
        async with db.write() as conn:  # the other removal: it found "us" holding it, deletes "eu"
            assert await blobsets.holders(conn, DIGEST, lock=True) == ["eu", "us"]
            await conn.execute(
                delete(region_blobs).where(region_blobs.c.region == "eu", region_blobs.c.digest == DIGEST)
            )
            removal = asyncio.create_task(service._delete_blobs(1, "us", [DIGEST]))
            deadline = time.monotonic() + 30
            while not removal.done() and not await _waits_for_a_lock(db):  # the second waits its turn
                assert time.monotonic() < deadline, "the second removal neither waited nor ended"
                await asyncio.sleep(0.01)
        await asyncio.wait_for(removal, timeout=30)
        async with db.read() as conn:
            assert await blobsets.holders(conn, DIGEST) == ["us"]  # the last copy is kept
    finally:
        await db.dispose()
