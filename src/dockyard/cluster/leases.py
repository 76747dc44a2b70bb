"""Named leases in the metadata database, so that one process among many runs a job."""

from __future__ import annotations

import time

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
