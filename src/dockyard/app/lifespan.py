"""What a process runs besides its requests, from start-up to shutdown.

- :func:`run_jobs`: the background jobs of a server (``dockyard serve``) or of
  ``dockyard worker``: the job worker, the periodic recovery and purge of jobs, the
  inspection of pushed images and the periodic reconciliation of the catalog.
- :class:`Lifespan`: a server process's start-up (database check, cross-process caches,
  :mod:`dockyard.app.bootstrap`, the loops above, periodic garbage collection with the purge
  of archive sessions, the queueing of due retention rules, the periodic flush of the pull
  times this process noted (:mod:`dockyard.registry.pulls`), the socket where sibling
  processes pass on requests) and its shutdown in the reverse order (the last flush of pull
  times included), ending with :meth:`~dockyard.app.services.Services.close`.
- :func:`serve_lifespan`: the ASGI lifespan protocol around them.

The loops that one process among many runs hold a named lease from
:mod:`dockyard.cluster.leases`. The job recovery (:mod:`dockyard.jobs.recovery`) and the
catalog's reconciliation (:mod:`dockyard.catalog.inspections`) run at once, then every
period until a stop event, and release their lease at the end; garbage collection (``gc``)
and the retention schedule (``retention``) here wait a period first and are cancelled at
shutdown. One helper for all of them would live in :mod:`dockyard.cluster.leases`; it is not
written yet, so as not to change when each runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from starlette.types import ASGIApp, Receive, Send

from dockyard.app.bootstrap import bootstrap_identity
from dockyard.app.services import Services
from dockyard.cluster import leases
from dockyard.cluster.siblings import SiblingSocket, worker_socket
from dockyard.jobs.recovery import recover_periodically
from dockyard.jobs.worker import Worker

log = logging.getLogger("dockyard")

GC_LEASE = "gc"
RETENTION_LEASE = "retention"


async def run_jobs(services: Services, stop: asyncio.Event, holder: str, *, work: bool = True) -> None:
    """Background jobs until ``stop`` is set: a worker running the registered handlers (when
    ``work``), the periodic recovery of jobs whose worker stopped, and the purge of old finished jobs.
    Every process also inspects pushed images (their own worker, so that a long build never
    holds them up), sweeps the catalog's pending versions, applies the registry's outbox
    (the catalog, the audit log) and delivers webhooks (deliveries are
    claimed with a lease, so processes share them and never send one twice at once)."""
    settings = services.settings
    retention = settings.job_retention_days * 86400
    lease = settings.job_lease_seconds
    loops = [
        recover_periodically(services.jobs, holder, settings.job_recover_seconds, stop, retention=retention),
        services.inspections.run(
            stop, holder, settings.job_recover_seconds, settings.inspect_concurrency, lease
        ),
        services.webhooks.deliverer.run(stop),
    ]
    if services.events.outbox is not None:  # what a crash or a failure left in the registry's outbox
        loops.append(services.events.outbox.run(stop))
    if work:
        worker = Worker(
            services.jobs, services.job_handlers, concurrency=settings.worker_concurrency, lease_seconds=lease
        )
        loops.append(worker.run(stop))
    await asyncio.gather(*loops)


def new_holder() -> str:
    """This process's name on leases and jobs: unique even when a restarted process reuses a pid."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Lifespan:
    """Start-up and shutdown of one server process serving ``app`` with ``services``
    (``app`` also answers on the sibling socket)."""

    def __init__(self, services: Services, app: ASGIApp) -> None:
        self.services = services
        self.app = app
        self.holder = new_holder()
        self._tasks: list[asyncio.Task[None]] = []
        self._jobs_stop = asyncio.Event()
        self._jobs: asyncio.Task[None] | None = None
        self._sibling: SiblingSocket | None = None
        self._pulls: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        services = self.services
        settings = services.settings
        async with services.db.read() as conn:
            await conn.execute(text("SELECT 1"))
        await services.generations.start()
        await bootstrap_identity(settings, services.identity)
        if settings.gc_interval_seconds > 0:
            self._tasks.append(asyncio.create_task(self._gc_loop()))
        if settings.retention_check_seconds > 0:
            self._tasks.append(asyncio.create_task(self._retention_loop()))
        self._pulls = asyncio.create_task(services.pulls.run(self._jobs_stop, settings.pull_flush_seconds))
        self._jobs = asyncio.create_task(
            run_jobs(services, self._jobs_stop, self.holder, work=settings.worker_enabled)
        )
        run_dir = services.archives.run_dir
        if run_dir is not None:
            self._sibling = SiblingSocket(self.app, worker_socket(run_dir, os.getpid()))
            await self._sibling.start()

    async def shutdown(self) -> None:
        self._jobs_stop.set()  # running jobs get a grace period, then go back to the queue
        if self._jobs is not None:
            try:
                await self._jobs
            except Exception:
                log.exception("background jobs ended with an error")
        if self._pulls is not None:  # its last flush: the pulls this process noted
            await self._pulls
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sibling is not None:
            await self._sibling.stop()
        await self.services.close()

    async def _gc_loop(self) -> None:
        """Every ``gc_interval_seconds``, in the process holding the ``gc`` lease: garbage
        collection, then the purge of archive sessions idle for ``upload_purge_seconds``."""
        services = self.services
        interval = services.settings.gc_interval_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                # Renewed while it runs: a collection longer than the lease never runs twice.
                seconds = max(interval, 60.0)
                lease = leases.renewing(services.db, GC_LEASE, self.holder, seconds, frees_space=True)
                async with lease as held:
                    if held:
                        await services.gc.run()
                        purge_before = time.time() - services.settings.upload_purge_seconds
                        await services.archive_purge.run(purge_before)
            except leases.LeaseLost as exc:
                log.warning("periodic garbage collection stopped: %s; retrying next period", exc)
            except Exception:
                log.exception("periodic garbage collection failed; retrying next period")

    async def _retention_loop(self) -> None:
        """Every ``retention_check_seconds``, in the process holding the ``retention`` lease:
        queue the runs of the retention rules whose time came (the job workers run them)."""
        services = self.services
        interval = services.settings.retention_check_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                if await leases.acquire(services.db, RETENTION_LEASE, self.holder, max(interval, 60.0)):
                    await services.retention_runner.queue_due()
            except Exception:
                log.exception("queueing retention runs failed; retrying next period")


async def serve_lifespan(
    receive: Receive,
    send: Send,
    startup: Callable[[], Awaitable[None]],
    shutdown: Callable[[], Awaitable[None]],
) -> None:
    """The ASGI lifespan protocol: ``startup`` on its message (a failure is logged and
    reported, and the server does not start), ``shutdown`` on the last message."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await startup()
            except Exception as exc:
                log.exception("start-up failed")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
