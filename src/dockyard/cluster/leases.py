"""Named leases in the metadata database, so that one process among many runs a job."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import delete, or_, select, update

from dockyard.cluster.tables import leases
from dockyard.db.engine import Database
from dockyard.volumes import InsufficientStorage


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


async def held_by(db: Database, name: str) -> tuple[str, float] | None:
    """(holder, when it runs out) of the lease ``name`` while someone holds it; None otherwise."""
    async with db.read() as conn:
        found = (
            await conn.execute(
                select(leases.c.holder, leases.c.expires_at).where(
                    leases.c.name == name, leases.c.expires_at >= time.time()
                )
            )
        ).first()
    return None if found is None else (str(found[0]), float(found[1]))


async def release(db: Database, name: str, holder: str) -> None:
    async with db.write() as conn:
        await conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))


class LeaseLost(Exception):
    """The lease ran out or passed to another holder while its body ran: the body was cancelled."""


@asynccontextmanager
async def renewing(
    db: Database, name: str, holder: str, seconds: float, *, frees_space: bool = False
) -> AsyncIterator[bool]:
    """Take the lease ``name`` (yields whether it was taken) and keep renewing it every third
    of ``seconds`` while the body runs, so that work longer than the lease is never done by
    two holders at once; a holder that dies stops renewing, and the lease passes on once it
    runs out. Not released at the end: it runs out (another holder starts the next period).

    A renewal that finds another holder, or renewals failing until the lease has run out,
    cancel the body, and the block raises :class:`LeaseLost`.

    ``frees_space``: the body frees disk space (garbage collection), so on a full disk the
    database's reserve is given up to take the lease (the body takes the reserve back)."""
    expires = time.time() + seconds
    try:
        taken = await acquire(db, name, holder, seconds)
    except InsufficientStorage:
        if not (frees_space and await asyncio.to_thread(db.release_reserve)):
            raise
        taken = await acquire(db, name, holder, seconds)
    if not taken:
        yield False
        return
    body = asyncio.current_task()
    assert body is not None
    lost = False

    async def renew() -> None:
        nonlocal expires, lost
        while True:
            await asyncio.sleep(seconds / 3)
            started = time.time()
            try:
                renewed = await acquire(db, name, holder, seconds)
            except Exception:  # a failed renewal is tried again until the lease runs out
                renewed = time.time() < expires
            else:
                expires = started + seconds if renewed else expires
            if not renewed:
                lost = True
                body.cancel()
                return

    task = asyncio.create_task(renew())
    try:
        yield True
    except asyncio.CancelledError:
        if not lost:
            raise
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if lost:
        if body.cancelling():
            body.uncancel()
        raise LeaseLost(f"lease {name!r} lost by {holder!r}; its work was stopped")
