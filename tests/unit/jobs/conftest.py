"""A job queue on a fresh metadata database (SQLite and PostgreSQL), on a clock of its own.

Leases are measured by the queue's clock: a test makes one expire by moving the clock of
the queue that recovers, never by waiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from dockyard.db.engine import Database
from dockyard.jobs.queue import JobQueue


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def queue(db: Database, clock: Clock) -> JobQueue:
    return JobQueue(db, clock)
