"""Periodic upkeep of the job queue, by one process at a time: recovery of jobs whose worker
stopped, and the purge of jobs that finished longer ago than the retention.

Every process that runs jobs (``dockyard serve``, ``dockyard worker``) runs this loop; the
named lease ``jobs-recover`` lets one of them do the work. Recovery and the purge would be
safe from several processes at once (each of their writes is conditional), the lease only
saves the others the queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from dockyard.cluster import leases
from dockyard.jobs.queue import JobQueue
from dockyard.volumes import InsufficientStorage

log = logging.getLogger("dockyard.jobs")

LEASE = "jobs-recover"
PURGE_EVERY = 3600.0  # seconds between purges: finished jobs pile up slowly, recovery runs often


async def recover_periodically(
    queue: JobQueue, holder: str, interval: float, stop: asyncio.Event, *, retention: float = 0.0
) -> None:
    """Call ``queue.recover()`` now and every ``interval`` seconds until ``stop`` is set.
    With ``retention`` (seconds) above 0, also delete the jobs that finished more than
    ``retention`` seconds ago: at the first turn this process holds the lease, then every
    :data:`PURGE_EVERY` seconds."""
    next_purge = 0.0  # time.monotonic() from which the holder purges again
    while not stop.is_set():
        # The lease outlives a few periods, so that a healthy holder keeps it, and no more:
        # a holder that died (SIGKILL, no release) keeps recovery away until it expires.
        held = False
        try:
            held = await leases.acquire(queue.db, LEASE, holder, 3 * interval)
            if held:
                moved = await queue.recover()
                if moved:
                    log.warning("recovered %d job(s) whose worker stopped", moved)
        except InsufficientStorage as exc:
            log.warning("recovering jobs waits for space: %s", exc)
        except Exception:
            log.exception("recovering jobs failed; retrying next period")
        if held and retention > 0 and time.monotonic() >= next_purge:
            try:
                purged = await queue.purge(queue.clock() - retention)
                next_purge = time.monotonic() + PURGE_EVERY
                if purged:
                    log.info("purged %d job(s) finished more than %g days ago", purged, retention / 86400)
            except InsufficientStorage as exc:
                log.warning("purging finished jobs waits for space: %s", exc)
            except Exception:
                log.exception("purging finished jobs failed; retrying next period")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
    with contextlib.suppress(Exception):
        await leases.release(queue.db, LEASE, holder)
