"""The upload locks between replicas (PostgreSQL advisory locks): one holder at a time, and a
lock given back is free for the next taker at once, in any process."""

from __future__ import annotations

from dockyard.cluster.locks import PostgresUploadLocks
from tests.unit.conftest import PG_ADMIN


async def test_a_released_lock_is_free_at_once_for_another_replica() -> None:
    """One holder at a time; once given back, the next taker (another replica's request right
    after this one's answer) gets it. (The lock is now given back by an unlock before the
    connection closes: closing alone frees it only when the server's backend has gone, after it
    closed the socket, which a loaded machine showed as a 409 on the other replica; that window
    is too short to reproduce here on demand.)"""
    here, there = PostgresUploadLocks(f"{PG_ADMIN}/postgres"), PostgresUploadLocks(f"{PG_ADMIN}/postgres")
    for _ in range(30):
        async with here.hold("session-1") as held:
            assert held
            async with there.hold("session-1") as also:
                assert not also  # one holder at a time
        async with there.hold("session-1") as next_one:
            assert next_one
