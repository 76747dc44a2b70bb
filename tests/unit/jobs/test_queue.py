"""The job queue on SQLite and PostgreSQL: enqueue, claim, leases, recovery, cancel, dedupe."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from dockyard.db.engine import Database
from dockyard.jobs.queue import Job, JobQueue
from dockyard.jobs.tables import jobs
from tests.unit.conftest import MetadataDatabases
from tests.unit.jobs.conftest import Clock


async def _job(queue: JobQueue, job_id: int) -> Job:
    job = await queue.get(job_id)
    assert job is not None
    return job


async def test_enqueue_then_get(queue: JobQueue, clock: Clock) -> None:
    job_id = await queue.enqueue("build", {"image": "lab/tool", "args": [1, 2]}, max_attempts=3)
    job = await _job(queue, job_id)
    assert job == Job(
        id=job_id,
        kind="build",
        payload={"image": "lab/tool", "args": [1, 2]},
        attempt=1,
        max_attempts=3,
        status="queued",
        created_at=clock.now,
        started_at=None,
        finished_at=None,
        error=None,
        progress={},
        cancel_requested=False,
    )
    assert await queue.get(job_id + 1000) is None


async def test_enqueue_refuses_zero_attempts(queue: JobQueue) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        await queue.enqueue("build", {}, max_attempts=0)


async def test_claim_takes_the_oldest_job_of_the_wanted_kinds(queue: JobQueue, clock: Clock) -> None:
    other = await queue.enqueue("import", {})
    first = await queue.enqueue("build", {"n": 1})
    second = await queue.enqueue("build", {"n": 2})
    clock.advance(5)

    claimed = await queue.claim(["build"], "w1", 30)
    assert claimed is not None
    assert (claimed.id, claimed.status, claimed.started_at, claimed.payload) == (
        first,
        "running",
        clock.now,
        {"n": 1},
    )
    again = await queue.claim(["build"], "w2", 30)
    assert again is not None
    assert again.id == second
    assert await queue.claim(["build"], "w3", 30) is None
    assert await queue.claim([], "w3", 30) is None
    assert (await _job(queue, other)).status == "queued"


async def test_finish_records_the_outcome(queue: JobQueue, clock: Clock) -> None:
    ok, bad = await queue.enqueue("build", {}), await queue.enqueue("build", {})
    await queue.claim(["build"], "w1", 30)
    await queue.claim(["build"], "w2", 30)
    clock.advance(7)
    await queue.finish(ok, "w1", "succeeded")
    await queue.finish(bad, "w2", "failed", "step 3 exited with 1")

    done, failed = await _job(queue, ok), await _job(queue, bad)
    assert (done.status, done.finished_at, done.error) == ("succeeded", clock.now, None)
    assert (failed.status, failed.error) == ("failed", "step 3 exited with 1")


async def test_only_the_lease_holder_may_finish(queue: JobQueue) -> None:
    job_id = await queue.enqueue("build", {})
    await queue.claim(["build"], "w1", 30)
    await queue.finish(job_id, "intruder", "failed", "not mine")
    assert (await _job(queue, job_id)).status == "running"
    with pytest.raises(ValueError, match="final status"):
        await queue.finish(job_id, "w1", "running")  # type: ignore[arg-type]  # what the check is for


async def _claim_all(queue: JobQueue, worker: str) -> list[int]:
    taken = []
    while (job := await queue.claim(["build"], worker, 30)) is not None:
        taken.append(job.id)
        await asyncio.sleep(0)  # let the other claimers in
    return taken


async def test_concurrent_claimers_never_share_a_job(database_url: str, queue: JobQueue) -> None:
    ids = [await queue.enqueue("build", {"n": n}) for n in range(60)]
    databases = [Database(database_url) for _ in range(4)]  # as separate processes would have
    try:
        claims = await asyncio.gather(
            *(_claim_all(JobQueue(db), f"w{i}") for i, db in enumerate(databases)),
        )
    finally:
        for db in databases:
            await db.dispose()
    taken = [job_id for claimed in claims for job_id in claimed]
    assert sorted(taken) == ids  # every job once: none twice, none left behind
    async with queue.db.read() as conn:
        holders = (await conn.execute(select(jobs.c.id, jobs.c.lease_holder))).all()
    by_worker = {f"w{i}": set(claimed) for i, claimed in enumerate(claims)}
    assert all(job_id in by_worker[holder] for job_id, holder in holders)


async def test_postgres_claimers_skip_a_locked_job_instead_of_waiting(
    metadata_databases: MetadataDatabases,
) -> None:
    """A claim in flight elsewhere holds its row lock; the next claimer takes the next job."""
    url = await metadata_databases.migrated_postgres()
    holder_db, claimer_db = Database(url), Database(url)
    try:
        queue = JobQueue(claimer_db)
        first, second = await queue.enqueue("build", {}), await queue.enqueue("build", {})
        async with holder_db.write() as conn:  # an open transaction that locked the oldest job
            await conn.execute(select(jobs.c.id).where(jobs.c.id == first).with_for_update())
            async with asyncio.timeout(30):  # guards against a hang; FOR UPDATE alone would wait here
                claimed = await queue.claim(["build"], "w2", 30)
        assert claimed is not None
        assert claimed.id == second
        assert (await _job(queue, first)).status == "queued"
    finally:
        await holder_db.dispose()
        await claimer_db.dispose()
        metadata_databases.discard(url)


async def test_heartbeat_renews_the_lease_and_records_progress(queue: JobQueue, clock: Clock) -> None:
    job_id = await queue.enqueue("build", {})
    await queue.claim(["build"], "w1", 10)
    clock.advance(8)
    assert await queue.heartbeat(job_id, "w1", 10, {"step": 2, "of": 5})
    assert (await _job(queue, job_id)).progress == {"step": 2, "of": 5}
    clock.advance(8)  # 16 s after the claim, 8 after the heartbeat: the lease still holds
    assert await queue.recover() == 0
    assert await queue.heartbeat(job_id, "w1", 10)  # no progress given: the last one stays
    assert (await _job(queue, job_id)).progress == {"step": 2, "of": 5}
    assert not await queue.heartbeat(job_id, "someone-else", 10)


async def test_recover_retries_a_lost_job_then_fails_it(queue: JobQueue, clock: Clock) -> None:
    job_id = await queue.enqueue("build", {}, max_attempts=2)
    await queue.claim(["build"], "w1", 10)
    clock.advance(11)

    assert await queue.recover() == 1
    retried = await _job(queue, job_id)
    assert (retried.status, retried.attempt, retried.error) == ("queued", 2, None)
    assert not await queue.heartbeat(job_id, "w1", 10)  # the stalled worker learns it lost the job
    await queue.finish(job_id, "w1", "succeeded")  # and can no longer end it
    assert (await _job(queue, job_id)).status == "queued"

    second = await queue.claim(["build"], "w2", 10)
    assert second is not None
    assert second.attempt == 2
    clock.advance(11)
    assert await queue.recover() == 1
    failed = await _job(queue, job_id)
    assert (failed.status, failed.attempt, failed.finished_at) == ("failed", 2, clock.now)
    assert failed.error == "the worker stopped (lost its lease) 2 times"
    assert await queue.recover() == 0


async def test_recover_with_a_single_attempt_fails_at_once(queue: JobQueue, clock: Clock) -> None:
    job_id = await queue.enqueue("build", {}, max_attempts=1)
    await queue.claim(["build"], "w1", 10)
    clock.advance(11)
    assert await queue.recover() == 1
    job = await _job(queue, job_id)
    assert (job.status, job.error) == ("failed", "the worker stopped (lost its lease) 1 time")


async def test_a_lost_job_whose_cancel_was_requested_ends_cancelled(queue: JobQueue, clock: Clock) -> None:
    job_id = await queue.enqueue("build", {})
    await queue.claim(["build"], "w1", 10)
    assert await queue.request_cancel(job_id)
    clock.advance(11)
    assert await queue.recover() == 1
    assert (await _job(queue, job_id)).status == "cancelled"


async def test_cancel_a_queued_job_at_once(queue: JobQueue, clock: Clock) -> None:
    job_id = await queue.enqueue("build", {})
    clock.advance(3)
    assert await queue.request_cancel(job_id)
    job = await _job(queue, job_id)
    assert (job.status, job.cancel_requested, job.finished_at) == ("cancelled", True, clock.now)
    assert await queue.claim(["build"], "w1", 10) is None
    assert not await queue.request_cancel(job_id)  # finished: nothing to cancel
    assert not await queue.request_cancel(job_id + 1000)


async def test_cancel_a_running_job_flags_it_for_its_worker(queue: JobQueue) -> None:
    job_id = await queue.enqueue("build", {})
    await queue.claim(["build"], "w1", 10)
    assert await queue.request_cancel(job_id)
    job = await _job(queue, job_id)
    assert (job.status, job.cancel_requested) == ("running", True)
    assert not await queue.heartbeat(job_id, "w1", 10)  # the worker's cue to stop
    await queue.finish(job_id, "w1", "cancelled")
    assert (await _job(queue, job_id)).status == "cancelled"


async def test_release_puts_a_job_back_without_spending_an_attempt(queue: JobQueue) -> None:
    job_id = await queue.enqueue("build", {})
    await queue.claim(["build"], "w1", 10)
    await queue.release(job_id, "w1")
    job = await _job(queue, job_id)
    assert (job.status, job.attempt) == ("queued", 1)
    again = await queue.claim(["build"], "w2", 10)
    assert again is not None
    assert again.id == job_id


async def test_dedupe_key_allows_one_active_job_per_key(queue: JobQueue) -> None:
    first = await queue.enqueue("build", {"n": 1}, dedupe_key="image:7")
    assert await queue.enqueue("build", {"n": 2}, dedupe_key="image:7") == first
    other = await queue.enqueue("build", {}, dedupe_key="image:8")
    assert other != first
    assert await queue.enqueue("build", {}) not in (first, other)  # no key: never deduplicated

    await queue.claim(["build"], "w1", 10)  # running still counts
    assert await queue.enqueue("build", {}, dedupe_key="image:7") == first
    await queue.finish(first, "w1", "succeeded")
    again = await queue.enqueue("build", {"n": 3}, dedupe_key="image:7")  # finished: a new one
    assert again not in (first, other)
    assert (await _job(queue, again)).payload == {"n": 3}


async def test_concurrent_enqueues_with_one_key_make_one_job(database_url: str, queue: JobQueue) -> None:
    databases = [Database(database_url) for _ in range(4)]
    try:
        ids = await asyncio.gather(
            *(JobQueue(db).enqueue("build", {"from": i}, dedupe_key="same") for i, db in enumerate(databases))
        )
    finally:
        for db in databases:
            await db.dispose()
    assert len(set(ids)) == 1
    assert await queue.claim(["build"], "w1", 10) is not None
    assert await queue.claim(["build"], "w1", 10) is None


async def test_a_job_added_running_is_held_by_its_holder_until_its_lease_runs_out(
    queue: JobQueue, clock: Clock
) -> None:
    """A process that starts work itself adds its job already claimed, in its own transaction;
    a second job with the same key is not added while the first is active; once the holder's
    lease runs out, recovery hands the job to any worker."""
    async with queue.db.write() as conn:
        job_id = await queue.add_running(
            conn, "finish", {"archive": "a"}, "here/1", 30, dedupe_key="finish:a", max_attempts=3
        )
    assert job_id is not None
    job = await _job(queue, job_id)
    assert (job.status, job.attempt, job.started_at) == ("running", 1, clock.now)
    assert await queue.claim(["finish"], "elsewhere", 30) is None  # held: nobody else takes it
    async with queue.db.write() as conn:
        again = await queue.add_running(conn, "finish", {}, "here/2", 30, dedupe_key="finish:a")
    assert again is None
    assert await queue.heartbeat(job_id, "here/1", 30)  # the holder renews it
    clock.advance(31)
    assert await queue.recover() == 1
    claimed = await queue.claim(["finish"], "elsewhere", 30)
    assert claimed is not None
    assert (claimed.id, claimed.attempt, claimed.payload) == (job_id, 2, {"archive": "a"})
    assert not await queue.heartbeat(job_id, "here/1", 30)  # the first holder lost it
    await queue.finish(job_id, "elsewhere", "succeeded")
    async with queue.db.write() as conn:  # ended: the key is free again
        assert await queue.add_running(conn, "finish", {}, "here/3", 30, dedupe_key="finish:a") is not None


async def test_adding_a_running_job_refuses_zero_attempts(queue: JobQueue) -> None:
    async with queue.db.write() as conn:
        with pytest.raises(ValueError, match="max_attempts"):
            await queue.add_running(conn, "finish", {}, "here", 30, dedupe_key="k", max_attempts=0)
