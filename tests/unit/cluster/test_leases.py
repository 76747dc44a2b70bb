"""Named leases: one holder at a time, renewed while its work runs, passed on once it runs out."""

from __future__ import annotations

import asyncio
import time

from dockyard.cluster import leases
from dockyard.db.engine import Database

SECONDS = 0.6


async def test_a_lease_renewed_while_its_work_runs_is_never_taken_by_another(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with leases.renewing(db, "gc", "first", SECONDS) as held:
            assert held
            end = time.monotonic() + 3 * SECONDS  # the work outlives its lease thrice
            while time.monotonic() < end:
                assert not await leases.acquire(db, "gc", "second", SECONDS)
                await asyncio.sleep(SECONDS / 6)
        async with leases.renewing(db, "gc", "second", SECONDS) as other:
            assert not other  # not released: it runs out
    finally:
        await db.dispose()


async def test_a_lease_whose_holder_stopped_renewing_passes_on(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert await leases.acquire(db, "gc", "dead", SECONDS)  # its holder dies: no renewal
        assert not await leases.acquire(db, "gc", "next", SECONDS)
        deadline = time.monotonic() + 10 * SECONDS
        while not await leases.acquire(db, "gc", "next", SECONDS):
            assert time.monotonic() < deadline, "the lease never ran out"
            await asyncio.sleep(SECONDS / 6)
    finally:
        await db.dispose()
