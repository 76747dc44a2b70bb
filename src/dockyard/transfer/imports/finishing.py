"""Finishing an archive import as a durable job, so that a replica killed while it finishes
hands the import on.

When the last chunk is in (``PUT /archives/{id}``), the process holding the import finishes it
(it has what the import read, in memory and in staging) under a job of kind
``archive.finish``, which it adds already claimed in the transaction that marks the session
``importing`` (:meth:`~dockyard.jobs.queue.JobQueue.add_running`), and whose lease it renews
while it works. The finishing goes on when the request that asked for it goes away; it stops
only with its server, which puts the job back on the queue.

When that process dies, its job's lease runs out, the queue's recovery puts the job back,
and any replica's worker takes it (:meth:`Finishing.handle`). Once the holder is known to be
dead (its liveness lock, :mod:`.holders`, is free), the worker takes the import over from the
checkpoint and the journal (:mod:`.journal`) and finishes it. That is the fencing: the import
is taken over only when the process that held it can no longer write; while it lives (its
lease only lapsed in a database hiccup), it is still finishing, and the job waits for it.
A holder that lives but has stopped reporting (its session's heartbeat older than
:data:`.sessions.STALE`) is not waited for either: the job fails, and the session falls back
to what it did before finishing was a job (receiving again from what was kept). Should the
journal not reach the archive's end, the job takes the session back to what was kept
(:mod:`.reclaim`) and fails saying so: the client sends the rest again, as after any crash.

The job exists only with the journal (``DOCKYARD_ARCHIVE_JOURNAL``, as replicas run): without
it no other process could go on from where the finishing one died, so on one machine an
import is finished in the process holding it, and a crash takes the session back to its
checkpoint at once (:mod:`.reclaim`), as it always did. While the job is on the queue, the
session shows ``importing`` (not the fallback for a dead import, :func:`.sessions.stale`) and
:mod:`.reclaim` leaves it to the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import update

from dockyard.cluster.gates import Gate
from dockyard.cluster.locks import UploadLocks
from dockyard.db.engine import Connection, Database
from dockyard.errors import Conflict
from dockyard.jobs.queue import JobQueue
from dockyard.jobs.worker import JobContext
from dockyard.transfer.imports.live import LiveImports, is_current
from dockyard.transfer.imports.outcomes import Outcomes
from dockyard.transfer.imports.reclaim import Reclaimer
from dockyard.transfer.imports.runner import LiveImport
from dockyard.transfer.imports.sessions import FINISH_JOB, IMPORTING, STALE, Session, finish_key, load_session
from dockyard.transfer.tables import archive_uploads

log = logging.getLogger("dockyard.archives")

FINISH_GATE_ENV = "DOCKYARD_TEST_ARCHIVE_FINISH_GATE"  # a test seam: see cluster.gates
MAX_ATTEMPTS = 3  # runs lost to stopped processes before the job gives up (then: .reclaim)
HOLDER_POLL = 5.0  # seconds (at most a third of the lease) between asking about a live holder

T = TypeVar("T")


class JournalShort(Exception):
    """The taken-over import could not reach the archive's end: the client sends the rest."""


class HolderSilent(Exception):
    """The process finishing the import lives but no longer reports: it is not waited for."""


@dataclass(frozen=True)
class Run:
    """This process's run of a finishing job: the job and the lease holder it is claimed by."""

    job_id: int
    holder: str


class Finishing:
    def __init__(
        self,
        db: Database,
        locks: UploadLocks,
        live: LiveImports,
        outcomes: Outcomes,
        reclaimer: Reclaimer,
        queue: JobQueue,
        lease_seconds: float,
        gate: Gate | None = None,
    ) -> None:
        self.db = db
        self.locks = locks
        self.live = live
        self.outcomes = outcomes
        self.reclaimer = reclaimer
        self.queue = queue
        self.lease_seconds = lease_seconds
        self.gate = gate
        self._runs = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._here_now: set[str] = set()  # the archives this process is finishing

    async def begin(self, conn: Connection, archive_id: str) -> Run:
        """The session's finishing job, claimed by this process, in the caller's transaction
        (the one that marks the session importing)."""
        holder = f"{self.live.me[:100]}/finish-{next(self._runs)}"
        job_id = await self.queue.add_running(
            conn,
            FINISH_JOB,
            {"archive": archive_id},
            holder,
            self.lease_seconds,
            dedupe_key=finish_key(archive_id),
            max_attempts=MAX_ATTEMPTS,
        )
        if job_id is None:
            raise Conflict("the archive is being imported; wait until the import has ended")
        return Run(job_id, holder)

    def start_here(
        self, archive_id: str, live: LiveImport, run: Run | None
    ) -> asyncio.Task[Exception | None]:
        """Finish the import held here (under ``run``, with the journal); the task's result
        is the refusal, if the archive was refused. It runs on whoever awaits it (await it
        shielded)."""
        return self._spawn(self._here(archive_id, live, run))

    async def _here(self, archive_id: str, live: LiveImport, run: Run | None) -> Exception | None:
        self._here_now.add(archive_id)
        lease = None if run is None else asyncio.create_task(self._keep(run))
        try:
            if self.gate is not None:
                await self.gate()
            error = await self.outcomes.finish(archive_id, live)
        except asyncio.CancelledError:  # the server stops: the job goes back to the queue
            if run is not None:
                with contextlib.suppress(Exception):
                    await self.queue.release(run.job_id, run.holder)
            raise
        except BaseException:  # recorded in the session (and logged) by Outcomes
            await self._end(run, "the import failed on the server")
            raise
        finally:
            self._here_now.discard(archive_id)
            if lease is not None:
                lease.cancel()
        await self._end(run, None if error is None else str(error))
        return error

    async def _keep(self, run: Run) -> None:
        """Renew the run's lease. Losing it changes nothing here: the import is taken over
        only once this process is dead (see the module's docstring)."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                if not await self.queue.heartbeat(run.job_id, run.holder, self.lease_seconds):
                    log.warning("archive finishing job %s: its lease was lost; finishing goes on", run.job_id)
                    return
            except Exception as exc:
                log.warning("archive finishing job %s: heartbeat failed: %s", run.job_id, exc)

    async def _end(self, run: Run | None, error: str | None) -> None:
        """Record the run's end (if the database is away, the recovered job finds the session
        ended and succeeds)."""
        if run is None:
            return
        with contextlib.suppress(Exception):
            if error is None:
                await self.queue.finish(run.job_id, run.holder, "succeeded")
            else:
                await self.queue.finish(run.job_id, run.holder, "failed", error)

    # --- handing on ---------------------------------------------------------------

    async def handle(self, ctx: JobContext) -> None:
        """The job, recovered after the process finishing it stopped: wait while that process
        lives; once it is dead, take the import over and finish it here."""
        archive_id = str(ctx.job.payload.get("archive", ""))
        while True:
            taken = await self._take_over(archive_id)
            if taken == "ended":
                return
            if isinstance(taken, LiveImport):
                break
            # Another process's liveness has no event to await here: ask again in a while (the
            # worker renews this run's lease meanwhile).
            await asyncio.sleep(min(HOLDER_POLL, self.lease_seconds / 3))
        task = self._spawn(self._finish_taken(archive_id, taken))
        try:
            error = await asyncio.shield(task)
        except asyncio.CancelledError:
            if ctx.reason != "lost":  # stopping, or cancelled: the session resumes from its checkpoint
                task.cancel()
            raise  # lost: the import finishes here all the same; nobody takes it over while we live
        if error is not None:
            raise error

    async def _finish_taken(self, archive_id: str, live: LiveImport) -> Exception | None:
        self._here_now.add(archive_id)
        try:
            return await self.outcomes.finish(archive_id, live)
        finally:
            self._here_now.discard(archive_id)

    async def _take_over(self, archive_id: str) -> LiveImport | Literal["ended", "wait"]:
        """The import, taken over here, when its holder is dead; "wait" while it lives and
        reports (or a request works on the session); "ended" when the session is no longer
        importing. Raises when there is nothing to wait for nor to finish from."""
        s = await self._load(archive_id)
        if s is None or s.state != IMPORTING:
            return "ended"
        if not await self._holder_dead(s):
            if s.updated_at < time.time() - STALE:
                raise HolderSilent(
                    f"the process finishing the import ({s.holder}) has not reported for over "
                    f"{STALE:.0f} s: not waited for; the upload resumes from what was kept"
                )
            return "wait"
        if s.size is None or await self.reclaimer.reachable(archive_id) != s.size:
            if await self.reclaimer.reclaim(archive_id, handing_on=True) is None:
                return "wait"  # a request works on it
            raise JournalShort(
                "the process finishing the import stopped, and what was kept of the archive does "
                "not reach its end: the upload resumes from there, the client sends the rest"
            )
        async with self.locks.hold(archive_id) as held:
            if not held:
                return "wait"
            s = await self._load(archive_id)  # as it is now that it is held
            if s is None or s.state != IMPORTING:
                return "ended"
            if not await self._holder_dead(s):
                return "wait"
            live = await self.live.take_over(s.id, s.generation, s.layer_compression)
            self.live.release(archive_id)  # every byte is in: it is finished below
            if live.fed != s.size:  # the journal changed meanwhile (it cannot, while importing)
                await live.stop()
                raise JournalShort(f"the archive's journal reached {live.fed} of its {s.size} bytes")
            await self._set(live)
            log.info("archive %s: its finishing process stopped; taken over here", archive_id)
            return live

    async def _holder_dead(self, s: Session) -> bool:
        """Whether the session's holder can no longer write: it died (its liveness lock is
        free), or it is this process and is not finishing the import here."""
        if s.holder is None:
            return True
        if s.holder == self.live.me:
            return s.id not in self._here_now
        return await self.reclaimer.holder_gone(s)

    async def _load(self, archive_id: str) -> Session | None:
        async with self.db.read() as conn:
            return await load_session(conn, archive_id)

    async def _set(self, live: LiveImport) -> None:
        async with self.db.write() as conn:
            current = update(archive_uploads).where(is_current(live))
            await conn.execute(current.values(processed=live.fed, updated_at=time.time()))

    # --- tasks --------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(_settled)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Shutdown: stop finishing here (each job goes back to the queue)."""
        for task in list(self._tasks):
            task.cancel()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _settled(task: asyncio.Task[Any]) -> None:
    """Retrieve a task's outcome: what it raised is recorded in its session already."""
    if not task.cancelled():
        task.exception()
