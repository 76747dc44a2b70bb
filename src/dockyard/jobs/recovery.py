"""Periodic recovery of jobs whose worker stopped, by one process at a time.

Every process that runs jobs (``dockyard serve``, ``dockyard worker``) runs this loop; the
named lease ``jobs-recover`` lets one of them do the work. Recovery would be safe from
several processes at once (each of its writes is conditional), the lease only saves the
others the queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from dockyard.db import leases
from dockyard.jobs.queue import JobQueue

log = logging.getLogger("dockyard.jobs")

LEASE = "jobs-recover"


async def recover_periodically(queue: JobQueue, holder: str, interval: float, stop: asyncio.Event) -> None:
    """Call ``queue.recover()`` now and every ``interval`` seconds until ``stop`` is set."""
    while not stop.is_set():
        try:
            # The lease outlives a few periods, so that a healthy holder keeps it.
            if await leases.acquire(queue.db, LEASE, holder, max(3 * interval, 30.0)):
                moved = await queue.recover()
                if moved:
                    log.warning("recovered %d job(s) whose worker stopped", moved)
        except Exception:
            log.exception("recovering jobs failed; retrying next period")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
    with contextlib.suppress(Exception):
        await leases.release(queue.db, LEASE, holder)
