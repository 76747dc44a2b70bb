"""Named leases: one holder at a time, renewed while its work runs, passed on once it runs out."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import update

from dockyard.cluster import leases
from dockyard.cluster.tables import leases as lease_rows
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


async def _hold_forever(db: Database, taken: asyncio.Event) -> None:
    async with leases.renewing(db, "gc", "first", SECONDS / 2) as held:
        assert held
        taken.set()
        await asyncio.Event().wait()  # the work: runs until cancelled


async def test_a_body_whose_lease_another_holder_took_is_cancelled(database_url: str) -> None:
    db = Database(database_url)
    try:
        taken = asyncio.Event()
        work = asyncio.create_task(_hold_forever(db, taken))
        await taken.wait()
        async with db.write() as conn:  # the lease passes to another holder (it ran out, say)
            await conn.execute(
                update(lease_rows)
                .where(lease_rows.c.name == "gc")
                .values(holder="second", expires_at=time.time() + 60)
            )
        with pytest.raises(leases.LeaseLost):
            await asyncio.wait_for(work, timeout=30)  # the next renewal stops the work
        assert not work.cancelled()  # a clear outcome, not a cancellation of the caller
        assert not await leases.acquire(db, "gc", "first", SECONDS)  # still the other's
    finally:
        await db.dispose()


async def test_a_body_whose_renewals_fail_until_its_lease_runs_out_is_cancelled(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(database_url)
    try:
        taken = asyncio.Event()
        work = asyncio.create_task(_hold_forever(db, taken))
        await taken.wait()
        failures = 0

        async def broken(*args: object) -> bool:
            nonlocal failures
            failures += 1
            raise OSError("database unreachable")

        monkeypatch.setattr(leases, "acquire", broken)
        with pytest.raises(leases.LeaseLost):
            await asyncio.wait_for(work, timeout=30)
        assert failures >= 2  # failed renewals are tried again until the lease runs out
    finally:
        await db.dispose()
