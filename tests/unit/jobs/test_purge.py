"""Purging finished jobs on SQLite and PostgreSQL: old finished jobs go, everything a user or
a build still needs stays, and the recovery loop purges only when a retention is set."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import insert, select

from dockyard.auth.tables import workspaces
from dockyard.builds import runs
from dockyard.builds.tables import build_definitions, build_runs
from dockyard.db.engine import Database
from dockyard.jobs.queue import PURGE_BATCH, JobQueue
from dockyard.jobs.recovery import recover_periodically
from tests.unit.jobs.conftest import Clock

DAY = 86400.0
HANG_GUARD = 30  # seconds; only so that a broken loop fails the test instead of hanging it


async def _ids(queue: JobQueue, job_ids: list[int]) -> list[int]:
    """Those of ``job_ids`` that still exist."""
    return [job_id for job_id in job_ids if await queue.get(job_id) is not None]


async def _finished(queue: JobQueue, status: str = "succeeded") -> int:
    """A job run by a worker to ``status`` (cancelled: while queued) at the clock's time."""
    job_id = await queue.enqueue("done", {})
    if status == "cancelled":
        assert await queue.request_cancel(job_id)
        return job_id
    claimed = await queue.claim(["done"], "w1", 30)
    assert claimed is not None
    assert claimed.id == job_id
    await queue.finish(job_id, "w1", "succeeded" if status == "succeeded" else "failed", None)
    return job_id


async def test_purge_deletes_jobs_finished_before_the_cutoff(queue: JobQueue, clock: Clock) -> None:
    old = [await _finished(queue, status) for status in ("succeeded", "failed", "cancelled")]
    waiting = await queue.enqueue("build", {})  # as old, but never ran: not finished
    running = await queue.enqueue("import", {})
    assert (await queue.claim(["import"], "w2", 10 * DAY)) is not None
    clock.advance(20 * DAY)
    recent = await _finished(queue)
    clock.advance(15 * DAY)

    assert await queue.purge(clock.now - 30 * DAY) == 3
    assert await _ids(queue, [*old, waiting, running, recent]) == [waiting, running, recent]
    assert await queue.purge(clock.now - 30 * DAY) == 0
    assert await queue.purge(clock.now) == 1  # the recent one, once it is old enough
    assert await _ids(queue, [waiting, running, recent]) == [waiting, running]


async def test_purge_deletes_in_batches(queue: JobQueue, clock: Clock) -> None:
    old = [await _finished(queue) for _ in range(5)]
    clock.advance(1)
    assert await queue.purge(clock.now, batch=2) == 5
    assert await _ids(queue, old) == []


async def _build_run(db: Database, job_id: int, status: str) -> int:
    """A build run of a fresh definition that names ``job_id``, as the build service makes it."""
    async with db.write() as conn:
        workspace = (
            await conn.execute(
                insert(workspaces)
                .values(name=f"lab{job_id}", kind="org", created_at=0.0)
                .returning(workspaces.c.id)
            )
        ).scalar_one()
        definition = (
            await conn.execute(
                insert(build_definitions)
                .values(
                    workspace_id=workspace,
                    name=f"lab{job_id}/tool",
                    context="local",
                    content_hash="sha256:0",
                    created_at=0.0,
                    updated_at=0.0,
                )
                .returning(build_definitions.c.id)
            )
        ).scalar_one()
        run_id: int = (
            await conn.execute(
                insert(build_runs)
                .values(
                    definition_id=definition,
                    job_id=job_id,
                    status=status,
                    version="latest",
                    content_hash="sha256:0",
                    spec=json.dumps({}),
                    started_by="alice",
                    created_at=0.0,
                )
                .returning(build_runs.c.id)
            )
        ).scalar_one()
    return run_id


async def _run(db: Database, run_id: int) -> dict[str, object]:
    async with db.read() as conn:
        row = (await conn.execute(select(build_runs).where(build_runs.c.id == run_id))).mappings().one()
    return dict(row)


async def test_a_job_whose_build_has_not_ended_is_kept_until_the_build_settles(
    db: Database, queue: JobQueue, clock: Clock
) -> None:
    queue.keep_while_needed(runs.jobs_still_needed)  # as the app wires the builds
    # A worker stops on the build's last attempt: recovery fails the job, and only the job
    # knows why until the run is next read.
    lost = await queue.enqueue("build", {}, max_attempts=1)
    assert await queue.claim(["build"], "w1", 30) is not None
    run_id = await _build_run(db, lost, "running")
    clock.advance(60)
    assert await queue.recover() == 1
    # A build that ended normally: its run holds all its history shows.
    done = await _finished(queue)
    ended_run = await _build_run(db, done, "succeeded")
    clock.advance(40 * DAY)

    assert await queue.purge(clock.now - 30 * DAY) == 1
    assert await _ids(queue, [lost, done]) == [lost]
    assert (await _run(db, ended_run))["status"] == "succeeded"

    async with db.read() as conn:
        m = await runs.row(conn, run_id)
    assert await runs.settle(db, queue, [m])
    failed = await _run(db, run_id)
    assert failed["status"] == "failed"
    assert failed["reason"] == "the build did not finish: the worker stopped (lost its lease) 1 time"

    assert await queue.purge(clock.now - 30 * DAY) == 1
    assert await _ids(queue, [lost]) == []
    assert (await _run(db, run_id))["status"] == "failed"


class WatchedQueue(JobQueue):
    """The queue, telling the test when the recovery loop has recovered and purged."""

    def __init__(self, db: Database, clock: Clock) -> None:
        super().__init__(db, clock)
        self.recovered = asyncio.Event()
        self.purged = asyncio.Event()

    async def recover(self) -> int:
        moved = await super().recover()
        self.recovered.set()
        return moved

    async def purge(self, finished_before: float, batch: int = PURGE_BATCH) -> int:
        purged = await super().purge(finished_before, batch)
        self.purged.set()
        return purged


async def _loop_until(event: asyncio.Event, queue: JobQueue, retention: float = 0.0) -> None:
    """Run the recovery loop until ``event`` is set, then let it finish its turn and stop."""
    stop = asyncio.Event()
    loop = asyncio.create_task(recover_periodically(queue, "p1", 0.05, stop, retention=retention))
    try:
        async with asyncio.timeout(HANG_GUARD):
            await event.wait()
    finally:
        stop.set()
        await loop


async def test_the_recovery_loop_purges_with_a_retention(db: Database, clock: Clock) -> None:
    queue = WatchedQueue(db, clock)
    old = await _finished(queue)
    clock.advance(31 * DAY)
    young = await _finished(queue)
    await _loop_until(queue.purged, queue, retention=30 * DAY)
    assert await _ids(queue, [old, young]) == [young]


async def test_the_recovery_loop_keeps_every_job_without_a_retention(db: Database, clock: Clock) -> None:
    queue = WatchedQueue(db, clock)
    old = await _finished(queue)
    lost = await queue.enqueue("import", {})
    assert await queue.claim(["import"], "w1", 30) is not None
    clock.advance(365 * DAY)
    await _loop_until(queue.recovered, queue)  # a whole turn of the loop, which would purge after recovering
    assert not queue.purged.is_set()
    assert await _ids(queue, [old, lost]) == [old, lost]
    recovered = await queue.get(lost)
    assert recovered is not None
    assert (recovered.status, recovered.attempt) == ("queued", 2)
