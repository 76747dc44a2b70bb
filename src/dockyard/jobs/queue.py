"""The durable job queue: rows of the ``jobs`` table, claimed by workers under leases.

Life of a job::

    enqueue ─> queued ──claim──> running ──finish──> succeeded | failed | cancelled
                 │  ^               │
      cancel ────┘  └──recover──────┤ lease expired, attempts left (attempt + 1)
     (cancelled)                    └─recover─> failed ("the worker stopped ...") | cancelled

(and ``release``: running -> queued, same attempt, when a worker shuts down mid-job.)
Finished jobs stay for a while (their outcome can be read), then :meth:`JobQueue.purge`
deletes them.

A worker holds a running job by its lease (``lease_holder``, ``lease_expires_at``) and
renews it with :meth:`JobQueue.heartbeat`; every write a worker makes is conditional on
still holding the lease, so a worker that lost its job (it stalled, recovery handed the job
to another) can change nothing. :meth:`JobQueue.recover` is what makes a crashed worker's
job move on instead of staying "running" forever.

Claiming is one statement on both databases: ``UPDATE ... WHERE id = (SELECT ... LIMIT 1
FOR UPDATE SKIP LOCKED) AND status = 'queued' RETURNING ...``. On PostgreSQL the sub-select
locks the row it picks and skips rows other claimers hold, so concurrent claimers take
different jobs without waiting on each other. SQLite has no row locks (SQLAlchemy leaves
the ``FOR UPDATE`` out) but serializes writers (``BEGIN IMMEDIATE``), so the sub-select and
the update see no concurrent change.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Exists, Row, Select, delete, exists, func, insert, select, text, update

from dockyard.db.engine import Connection, Database
from dockyard.jobs.tables import JOB_ACTIVE, jobs

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
PURGE_BATCH = 500  # jobs deleted per transaction: SQLite has one writer, keep its turns short


@functools.lru_cache(maxsize=64)
def _of_kinds(kinds: tuple[str, ...]) -> ColumnElement[bool]:
    """``kind IN kinds``, built once per set of kinds: an ``IN`` list leaves objects in
    reference cycles (only the garbage collector frees them), and every worker polls often."""
    return jobs.c.kind.in_(kinds)


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempt: int  # 1 for the first run; each run lost to a stopped worker adds one
    max_attempts: int
    status: str
    created_at: float
    started_at: float | None  # when the latest run started
    finished_at: float | None
    error: str | None
    progress: dict[str, Any]
    cancel_requested: bool


def _job(row: Row[Any]) -> Job:
    return Job(
        id=row.id,
        kind=row.kind,
        payload=json.loads(row.payload),
        attempt=row.attempt,
        max_attempts=row.max_attempts,
        status=row.status,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
        progress=json.loads(row.progress),
        cancel_requested=bool(row.cancel_requested),
    )


def active_with_key(dedupe_key: str) -> Exists:
    """``EXISTS`` a queued or running job with ``dedupe_key`` (a condition for a feature's
    query: whether its work is still on the queue)."""
    # JOB_ACTIVE as literal SQL: the partial unique index's own condition, so the index is used.
    return exists().where(jobs.c.dedupe_key == dedupe_key, text(JOB_ACTIVE))


def lost_lease_error(times: int) -> str:
    return f"the worker stopped (lost its lease) {times} {'time' if times == 1 else 'times'}"


class JobQueue:
    """Jobs in the metadata database. ``clock`` gives the time leases are measured by (tests
    move it forward instead of waiting)."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self._added = asyncio.Event()
        self._keepers: list[Callable[[], Select[Any]]] = []

    async def wait_added(self) -> None:
        """Return when this process enqueues a job (an idle worker here starts it at once;
        workers elsewhere find it when they next poll)."""
        await self._added.wait()

    def _announce(self) -> None:
        added, self._added = self._added, asyncio.Event()
        added.set()

    async def enqueue(
        self, kind: str, payload: dict[str, Any], *, max_attempts: int = 2, dedupe_key: str | None = None
    ) -> int:
        """Queue a job and return its id. With ``dedupe_key``, while a job with that key is
        queued or running, that job's id is returned and nothing is added."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        values = {
            "kind": kind,
            "payload": json.dumps(payload),
            "status": QUEUED,
            "attempt": 1,
            "max_attempts": max_attempts,
            "dedupe_key": dedupe_key,
            "created_at": self.clock(),
        }
        job_id = await self._insert(values, dedupe_key)
        self._announce()
        return job_id

    async def _insert(self, values: dict[str, Any], dedupe_key: str | None) -> int:
        async with self.db.write() as conn:
            if dedupe_key is None:
                return int(
                    (await conn.execute(insert(jobs).values(values).returning(jobs.c.id))).scalar_one()
                )
            while True:
                job_id = await self._insert_unless_active(conn, values)
                if job_id is None:  # another active job has the key; it may finish meanwhile: retry
                    job_id = (
                        await conn.execute(
                            select(jobs.c.id).where(jobs.c.dedupe_key == dedupe_key, text(JOB_ACTIVE))
                        )
                    ).scalar_one_or_none()
                if job_id is not None:
                    return int(job_id)

    async def add_running(
        self,
        conn: Connection,
        kind: str,
        payload: dict[str, Any],
        holder: str,
        lease_seconds: float,
        *,
        dedupe_key: str,
        max_attempts: int = 2,
    ) -> int | None:
        """Add a job already claimed by ``holder`` (leased for ``lease_seconds``), in the
        caller's transaction: for work a process starts itself because it holds what the work
        needs, which another worker takes over only when this run's lease expires (see
        :meth:`recover`). None, adding nothing, while another job with ``dedupe_key`` is active."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        now = self.clock()
        values = {
            "kind": kind,
            "payload": json.dumps(payload),
            "status": RUNNING,
            "attempt": 1,
            "max_attempts": max_attempts,
            "dedupe_key": dedupe_key,
            "created_at": now,
            "started_at": now,
            "lease_holder": holder,
            "lease_expires_at": now + lease_seconds,
        }
        return await self._insert_unless_active(conn, values)

    async def _insert_unless_active(self, conn: Connection, values: dict[str, Any]) -> int | None:
        """Insert the job; None (nothing inserted) while an active job has its dedupe key."""
        added = await conn.execute(
            self.db.insert(jobs)
            .values(values)
            .on_conflict_do_nothing(index_elements=["dedupe_key"], index_where=text(JOB_ACTIVE))
            .returning(jobs.c.id)
        )
        job_id = added.scalar_one_or_none()
        return None if job_id is None else int(job_id)

    async def get(self, job_id: int) -> Job | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).first()
        return None if row is None else _job(row)

    async def request_cancel(self, job_id: int) -> bool:
        """Cancel a job: a queued one at once; a running one is flagged, and its worker stops
        it at its next heartbeat. False if the job is unknown or already finished."""
        now = self.clock()
        async with self.db.write() as conn:
            queued = await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == QUEUED)
                .values(status=CANCELLED, cancel_requested=True, finished_at=now)
            )
            if queued.rowcount:
                return True
            running = await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == RUNNING)
                .values(cancel_requested=True)
            )
            return bool(running.rowcount)

    async def claim(self, kinds: Sequence[str], worker: str, lease_seconds: float) -> Job | None:
        """Take the oldest queued job of one of ``kinds`` for ``worker``, leased for
        ``lease_seconds``; None when there is none. Safe with any number of claimers."""
        if not kinds:
            return None
        now = self.clock()
        oldest = (
            select(jobs.c.id)
            .where(jobs.c.status == QUEUED, _of_kinds(tuple(kinds)))
            .order_by(jobs.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    update(jobs)
                    .where(jobs.c.id == oldest, jobs.c.status == QUEUED)
                    .values(
                        status=RUNNING,
                        lease_holder=worker,
                        lease_expires_at=now + lease_seconds,
                        started_at=now,
                    )
                    .returning(*jobs.c)
                )
            ).first()
        return None if row is None else _job(row)

    async def heartbeat(
        self, job_id: int, worker: str, lease_seconds: float, progress: dict[str, Any] | None = None
    ) -> bool:
        """Renew the lease (and record ``progress``, if given). False when the worker no
        longer holds the job or a cancel was requested: the worker should stop it."""
        values: dict[str, Any] = {"lease_expires_at": self.clock() + lease_seconds}
        if progress is not None:
            values["progress"] = json.dumps(progress)
        async with self.db.write() as conn:
            cancel = (
                await conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.status == RUNNING, jobs.c.lease_holder == worker)
                    .values(values)
                    .returning(jobs.c.cancel_requested)
                )
            ).first()
        return cancel is not None and not cancel[0]

    async def finish(
        self,
        job_id: int,
        worker: str,
        status: Literal["succeeded", "failed", "cancelled"],
        error: str | None = None,
    ) -> None:
        """End a run. Does nothing if ``worker`` no longer holds the job."""
        if status not in FINISHED:
            raise ValueError(f"not a final status: {status!r}")
        async with self.db.write() as conn:
            await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == RUNNING, jobs.c.lease_holder == worker)
                .values(
                    status=status,
                    error=error,
                    finished_at=self.clock(),
                    lease_holder=None,
                    lease_expires_at=None,
                )
            )

    async def release(self, job_id: int, worker: str) -> None:
        """Put a job back in the queue without counting a lost run (the worker is shutting
        down). Does nothing if ``worker`` no longer holds the job."""
        async with self.db.write() as conn:
            await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == RUNNING, jobs.c.lease_holder == worker)
                .values(status=QUEUED, lease_holder=None, lease_expires_at=None)
            )

    async def recover(self) -> int:
        """Move on the running jobs whose lease expired (their worker stopped): back to the
        queue with ``attempt + 1`` while attempts are left, else failed; cancelled if a
        cancel was requested. Returns how many jobs it moved."""
        now = self.clock()
        expired = (jobs.c.status == RUNNING, jobs.c.lease_expires_at < now)
        columns = (jobs.c.id, jobs.c.attempt, jobs.c.max_attempts, jobs.c.cancel_requested)
        async with self.db.read() as conn:  # the common case, nothing expired, needs no write
            if (await conn.execute(select(func.count()).where(*expired))).scalar_one() == 0:
                return 0
        moved = 0
        async with self.db.write() as conn:
            for job_id, attempt, max_attempts, cancel in (
                await conn.execute(select(*columns).where(*expired))
            ).all():
                values: dict[str, Any] = {"lease_holder": None, "lease_expires_at": None}
                if cancel:
                    values.update(status=CANCELLED, finished_at=now)
                elif attempt < max_attempts:
                    values.update(status=QUEUED, attempt=attempt + 1)
                else:
                    values.update(status=FAILED, finished_at=now, error=lost_lease_error(attempt))
                # Conditional again: on PostgreSQL a heartbeat may have renewed it since the select.
                result = await conn.execute(update(jobs).where(jobs.c.id == job_id, *expired).values(values))
                moved += result.rowcount
        return moved

    def keep_while_needed(self, needed: Callable[[], Select[Any]]) -> None:
        """Never purge the jobs whose ids ``needed()`` selects (one column of job ids, no NULLs).

        A feature whose rows still need a finished job's outcome registers here (the builds
        register the jobs of runs that have not ended; see :func:`dockyard.builds.runs.jobs_still_needed`),
        so the queue itself knows no feature's tables."""
        self._keepers.append(needed)

    async def purge(self, finished_before: float, batch: int = PURGE_BATCH) -> int:
        """Delete the jobs that finished before ``finished_before``; returns how many.

        A job that a feature still needs (:meth:`keep_while_needed`) is kept. Deletes
        ``batch`` jobs per transaction."""
        kept = [jobs.c.id.not_in(needed()) for needed in self._keepers]
        doomed = (
            select(jobs.c.id)
            .where(jobs.c.status.in_(FINISHED), jobs.c.finished_at < finished_before, *kept)
            .order_by(jobs.c.id)
            .limit(batch)
        )
        purged = 0
        while True:
            async with self.db.write() as conn:
                deleted = (await conn.execute(delete(jobs).where(jobs.c.id.in_(doomed)))).rowcount
            purged += deleted
            if deleted < batch:
                return purged
