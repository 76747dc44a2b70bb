"""The worker: claims jobs, runs their handlers and keeps their leases.

A handler is ``async def handler(ctx: JobContext) -> None``: it returns when the job
succeeded and raises when it failed (the exception's message becomes the job's error).
While it runs, a heartbeat task renews the lease every third of its length; when the
heartbeat learns that a cancel was requested, or that the lease was lost, it cancels the
handler's task (``asyncio.CancelledError`` inside the handler: a handler that runs a
subprocess kills it on the way out). A handler may also call ``ctx.heartbeat(progress)``
itself, which records progress and raises :class:`JobCancelled` for the same reasons.

How a run ends, when the worker interrupted it: a requested cancel ends the job
``cancelled``; a lost lease ends nothing (the job is someone else's now); a worker shutting
down puts the job back in the queue, after giving running handlers ``shutdown_grace_seconds``
to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal

from dockyard.jobs.queue import Job, JobQueue

log = logging.getLogger("dockyard.jobs")

Reason = Literal["cancel", "lost", "shutdown"]


class JobCancelled(Exception):
    """The job must stop: a cancel was requested (``reason == "cancel"``), this worker lost
    its lease (``"lost"``) or the worker is shutting down (``"shutdown"``)."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(f"job stopped: {reason}")
        self.reason: Reason = reason


class JobContext:
    """What a handler gets: its job, and a heartbeat to report progress through."""

    def __init__(self, job: Job, queue: JobQueue, holder: str, lease_seconds: float) -> None:
        self.job = job
        self.holder = holder  # the lease holder of this run
        self.reason: Reason | None = None
        self.renewed_at = time.monotonic()
        self._queue = queue
        self._lease_seconds = lease_seconds
        self._task: asyncio.Task[None] | None = None

    @property
    def cancelled(self) -> bool:
        """True once the job must stop (see :class:`JobCancelled`)."""
        return self.reason is not None

    async def heartbeat(self, progress: dict[str, Any] | None = None) -> None:
        """Renew the lease and record ``progress`` (visible in ``JobQueue.get``). Each call
        writes to the database: report every few seconds, not every line of output.

        Raises :class:`JobCancelled` when the job must stop."""
        if self.reason is not None:
            raise JobCancelled(self.reason)
        try:
            if await self._queue.heartbeat(self.job.id, self.holder, self._lease_seconds, progress):
                self.renewed_at = time.monotonic()
                return
            self.reason = await self.why_stopped()
        except Exception as exc:  # a database hiccup fails no job, unless the lease runs out
            log.warning("job %s (%s): heartbeat failed: %s", self.job.id, self.job.kind, exc)
            if time.monotonic() - self.renewed_at < self._lease_seconds:
                return
            self.reason = "lost"
        raise JobCancelled(self.reason)

    async def why_stopped(self) -> Reason:
        """After a refused heartbeat: was a cancel requested, or is the lease gone?"""
        job = await self._queue.get(self.job.id)
        return "cancel" if job is not None and job.cancel_requested else "lost"

    def start(self, handler: Handler) -> asyncio.Task[None]:
        async def run() -> None:
            await handler(self)

        self._task = asyncio.create_task(run(), name=f"job-{self.job.id}")
        return self._task

    def interrupt(self, reason: Reason) -> None:
        """Stop the handler: cancel its task (the worker's side of a refused heartbeat)."""
        if self.reason is None:
            self.reason = reason
        if self._task is not None:
            self._task.cancel()


Handler = Callable[[JobContext], Awaitable[None]]


def _default_name() -> str:
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Runs up to ``concurrency`` jobs at a time, of the kinds ``handlers`` know."""

    def __init__(
        self,
        queue: JobQueue,
        handlers: dict[str, Handler],
        *,
        name: str | None = None,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        concurrency: int = 1,
        shutdown_grace_seconds: float = 10.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.queue = queue
        self.handlers = dict(handlers)
        self.name = name or _default_name()
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.concurrency = concurrency
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self._claims = itertools.count(1)
        self._runs: dict[asyncio.Task[None], JobContext] = {}  # supervising task -> its run

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and run jobs until ``stop`` is set; then give running jobs
        ``shutdown_grace_seconds`` to finish and put the others back in the queue."""
        if not self.handlers:
            await stop.wait()
            return
        freed = asyncio.Event()
        try:
            while not stop.is_set():
                freed.clear()
                if len(self._runs) >= self.concurrency:
                    await _first(stop.wait(), freed.wait())
                    continue
                ctx = await self._claim()
                if ctx is None:
                    await _first(stop.wait(), self.queue.wait_added(), at_most=self.poll_seconds)
                    continue
                self._launch(ctx).add_done_callback(lambda _task: freed.set())
            if self._runs:
                await asyncio.wait(list(self._runs), timeout=self.shutdown_grace_seconds)
        finally:
            await self._interrupt_all()

    async def run_once(self) -> bool:
        """Claim one job and run it to its end; False if there was none (for tests and tools)."""
        ctx = await self._claim()
        if ctx is None:
            return False
        await self._launch(ctx)
        return True

    async def _claim(self) -> JobContext | None:
        holder = f"{self.name}/{next(self._claims)}"  # one per run: a late write of an old run can't match
        try:
            job = await self.queue.claim(list(self.handlers), holder, self.lease_seconds)
        except Exception as exc:
            log.warning("could not claim a job (retrying): %s", exc)
            return None
        return None if job is None else JobContext(job, self.queue, holder, self.lease_seconds)

    def _launch(self, ctx: JobContext) -> asyncio.Task[None]:
        work = ctx.start(self.handlers[ctx.job.kind])
        supervisor = asyncio.create_task(self._supervise(ctx, work))
        self._runs[supervisor] = ctx
        supervisor.add_done_callback(lambda task: self._runs.pop(task, None))
        return supervisor

    async def _supervise(self, ctx: JobContext, work: asyncio.Task[None]) -> None:
        beat = asyncio.create_task(self._keep_lease(ctx))
        cancelled = False
        try:
            while not work.done():
                try:
                    await asyncio.wait([work])
                except asyncio.CancelledError:  # whoever awaits this run is going away: end it first
                    cancelled = True
                    ctx.interrupt("shutdown")
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        try:
            await self._conclude(ctx, work)
        except Exception as exc:  # the database is away: the lease expires and recovery takes over
            log.warning("job %s (%s): could not record its end: %s", ctx.job.id, ctx.job.kind, exc)
        if cancelled:
            raise asyncio.CancelledError

    async def _conclude(self, ctx: JobContext, work: asyncio.Task[None]) -> None:
        job, holder = ctx.job, ctx.holder
        error = None if work.cancelled() else work.exception()
        if ctx.reason == "lost":
            log.warning("job %s (%s): this worker lost its lease; stopped it", job.id, job.kind)
        elif ctx.reason == "cancel":
            log.info("job %s (%s): cancelled", job.id, job.kind)
            await self.queue.finish(job.id, holder, "cancelled")
        elif not work.cancelled() and error is None:
            await self.queue.finish(job.id, holder, "succeeded")
        elif ctx.reason == "shutdown":
            log.info("job %s (%s): the worker is stopping; back to the queue", job.id, job.kind)
            await self.queue.release(job.id, holder)
        else:
            message = "the handler was cancelled" if error is None else str(error) or type(error).__name__
            log.warning("job %s (%s) failed: %s", job.id, job.kind, message)
            log.debug("job %s (%s): the failure", job.id, job.kind, exc_info=error)
            await self.queue.finish(job.id, holder, "failed", message)

    async def _keep_lease(self, ctx: JobContext) -> None:
        """Renew the lease every third of its length; stop the handler when it must stop."""
        job = ctx.job
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            reason: Reason | None
            try:
                held = await self.queue.heartbeat(job.id, ctx.holder, self.lease_seconds)
                reason = None if held else await ctx.why_stopped()
            except Exception as exc:
                log.warning("job %s (%s): heartbeat failed: %s", job.id, job.kind, exc)
                if time.monotonic() - ctx.renewed_at < self.lease_seconds:
                    continue
                reason = "lost"  # the lease ran out: recovery may give the job to another worker
            if reason is None:
                ctx.renewed_at = time.monotonic()
                continue
            ctx.interrupt(reason)
            return

    async def _interrupt_all(self) -> None:
        """Stop every run still going and wait until each has recorded its end."""
        for ctx in list(self._runs.values()):
            ctx.interrupt("shutdown")
        while pending := [task for task in self._runs if not task.done()]:
            await asyncio.wait(pending)


async def _first(*waits: Coroutine[Any, Any, Any], at_most: float | None = None) -> None:
    """Wait until one of ``waits`` completes (or ``at_most`` seconds pass); cancel the others."""
    tasks = [asyncio.create_task(w) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=at_most, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
