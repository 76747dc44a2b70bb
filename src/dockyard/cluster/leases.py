"""Named leases in the metadata database, so that one process among many runs a job."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import delete, or_, update

from dockyard.cluster.tables import leases
from dockyard.db.engine import Database


async def acquire(db: Database, name: str, holder: str, seconds: float) -> bool:
    """Take (or renew) the lease ``name`` for ``seconds``; False if another holder has it."""
    now = time.time()
    async with db.write() as conn:
        result = await conn.execute(
            update(leases)
            .where(leases.c.name == name, or_(leases.c.holder == holder, leases.c.expires_at < now))
            .values(holder=holder, expires_at=now + seconds)
        )
        if result.rowcount:
            return True
        inserted = await conn.execute(
            db.insert(leases)
            .values(name=name, holder=holder, expires_at=now + seconds)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return bool(inserted.rowcount)


async def release(db: Database, name: str, holder: str) -> None:
    async with db.write() as conn:
        await conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))


@asynccontextmanager
async def renewing(db: Database, name: str, holder: str, seconds: float) -> AsyncIterator[bool]:
    """Take the lease ``name`` (yields whether it was taken) and keep renewing it every third
    of ``seconds`` while the body runs, so that work longer than the lease is never done by
    two holders at once; a holder that dies stops renewing, and the lease passes on once it
    runs out. Not released at the end: it runs out (another holder starts the next period)."""
    if not await acquire(db, name, holder, seconds):
        yield False
        return

    async def renew() -> None:
        while True:
            await asyncio.sleep(seconds / 3)
            with contextlib.suppress(Exception):  # a failed renewal is tried again; expiry is the limit
                await acquire(db, name, holder, seconds)

    task = asyncio.create_task(renew())
    try:
        yield True
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
