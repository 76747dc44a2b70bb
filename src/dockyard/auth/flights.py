"""Concurrent identical calls share one run (a "single flight").

Used for password logins: when a whole cluster starts jobs with the same credentials at the
same moment, one attempt is counted by the throttle and pays argon2, and the others wait for
its answer (its subject, or its refusal) instead of each reserving an attempt of their own,
which would lock the name out of an address with nothing but correct passwords. The run is
a task of its own, so a caller that goes away does not cancel it for the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
T = TypeVar("T")


class Flights(Generic[K, T]):
    def __init__(self) -> None:
        self._running: dict[K, asyncio.Task[T]] = {}

    async def run(self, key: K, start: Callable[[], Awaitable[T]]) -> T:
        """``start()``'s result, or that of the run for ``key`` already under way."""
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(start())
            self._running[key] = task
            task.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(task)

    def _landed(self, key: K, task: asyncio.Task[T]) -> None:
        self._running.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved, should every caller have gone away: no warning in the log
