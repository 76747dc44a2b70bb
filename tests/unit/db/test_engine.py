"""Database.fetch_one: the driver-level reader is created once, however many first calls race."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from dockyard.db.engine import Database
from dockyard.errors import Contention


@pytest.mark.parametrize("empty_database_url", ["postgres"], indirect=True)
async def test_concurrent_first_fetches_open_one_pool(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pools: list[asyncpg.Pool] = []
    create_pool = asyncpg.create_pool

    async def counting_create_pool(*args: Any, **kwargs: Any) -> asyncpg.Pool:
        pool = await create_pool(*args, **kwargs)
        pools.append(pool)
        return pool

    monkeypatch.setattr(asyncpg, "create_pool", counting_create_pool)
    db = Database(empty_database_url, pool_size=5)
    try:
        rows = await asyncio.gather(
            *(
                db.fetch_one("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                for _ in range(40)
            )
        )
    finally:
        await db.dispose()
        left_open = [pool for pool in pools if not pool.is_closing()]
        for pool in left_open:
            pool.terminate()
    assert len(pools) == 1
    assert not left_open
    assert all(row is not None and 1 <= row[0] <= 5 for row in rows)


async def test_concurrent_first_fetches_read(database_url: str) -> None:
    db = Database(database_url)
    try:
        query = "SELECT count(*) FROM repositories WHERE name = $1"
        rows = await asyncio.gather(*(db.fetch_one(query, f"r{n}") for n in range(40)))
        assert rows == [(0,)] * 40
    finally:
        await db.dispose()


@pytest.mark.parametrize("empty_database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
async def test_a_deadlock_or_serialization_failure_is_a_contention(
    empty_database_url: str, sqlstate: str
) -> None:
    """What PostgreSQL aborts for a concurrent transaction is a domain error the edges answer
    "try again", in a write and in a (locking) read alike."""
    db = Database(empty_database_url, pool_size=1)
    abort = text(f"DO $$ BEGIN RAISE EXCEPTION 'aborted' USING ERRCODE = '{sqlstate}'; END $$")
    try:
        for transaction in (db.write, db.read):
            with pytest.raises(Contention, match="try again"):
                async with transaction() as conn:
                    await conn.execute(abort)
    finally:
        await db.dispose()
