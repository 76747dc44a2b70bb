"""The worker on SQLite and PostgreSQL: how each way a handler ends becomes the job's status.

Handlers here wait on events the test sets, not on time. Where the worker's own heartbeat
must notice something, its lease is short (0.3 s: a heartbeat every 0.1 s).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from dockyard.db.engine import Database
from dockyard.jobs import worker as worker_module
from dockyard.jobs.queue import Job, JobQueue
from dockyard.jobs.worker import JobCancelled, JobContext, Worker
from tests.support.spies import AsyncioSpy

SHORT_LEASE = 0.3
HANG_GUARD = 30  # seconds; only so that a broken worker fails the test instead of hanging it


async def _job(queue: JobQueue, job_id: int) -> Job:
    job = await queue.get(job_id)
    assert job is not None
    return job


async def test_run_once_runs_a_job_to_success(queue: JobQueue) -> None:
    seen: list[Job] = []

    async def build(ctx: JobContext) -> None:
        seen.append(ctx.job)

    worker = Worker(queue, {"build": build})
    assert not await worker.run_once()  # nothing queued
    job_id = await queue.enqueue("build", {"image": "lab/tool"})
    assert await worker.run_once()
    assert [(job.id, job.payload, job.status) for job in seen] == [(job_id, {"image": "lab/tool"}, "running")]
    done = await _job(queue, job_id)
    assert (done.status, done.error) == ("succeeded", None)


async def test_a_raising_handler_fails_the_job_with_its_message(queue: JobQueue) -> None:
    async def build(ctx: JobContext) -> None:
        raise RuntimeError(f"step 2/3 failed for {ctx.job.payload['image']}")

    async def silent(ctx: JobContext) -> None:
        raise KeyError

    worker = Worker(queue, {"build": build, "silent": silent})
    failing = await queue.enqueue("build", {"image": "lab/tool"})
    mute = await queue.enqueue("silent", {})
    assert await worker.run_once()
    assert await worker.run_once()
    failed = await _job(queue, failing)
    assert (failed.status, failed.error) == ("failed", "step 2/3 failed for lab/tool")
    assert (await _job(queue, mute)).error == "KeyError"  # no message: the exception's name


async def test_progress_is_visible_while_the_job_runs(queue: JobQueue) -> None:
    reported, finish = asyncio.Event(), asyncio.Event()

    async def build(ctx: JobContext) -> None:
        await ctx.heartbeat({"step": 1, "of": 3, "line": "RUN make"})
        reported.set()
        await finish.wait()

    job_id = await queue.enqueue("build", {})
    running = asyncio.create_task(Worker(queue, {"build": build}).run_once())
    async with asyncio.timeout(HANG_GUARD):
        await reported.wait()
    job = await _job(queue, job_id)
    assert (job.status, job.progress) == ("running", {"step": 1, "of": 3, "line": "RUN make"})
    finish.set()
    await running
    assert (await _job(queue, job_id)).progress == {"step": 1, "of": 3, "line": "RUN make"}


async def test_cancel_reaches_a_handler_through_its_heartbeat(queue: JobQueue) -> None:
    started, go = asyncio.Event(), asyncio.Event()
    raised: list[JobCancelled] = []

    async def build(ctx: JobContext) -> None:
        started.set()
        await go.wait()
        try:
            await ctx.heartbeat({"step": 2})
        except JobCancelled as exc:
            raised.append(exc)
            assert ctx.cancelled
            raise

    job_id = await queue.enqueue("build", {})
    running = asyncio.create_task(Worker(queue, {"build": build}).run_once())
    async with asyncio.timeout(HANG_GUARD):
        await started.wait()
    assert await queue.request_cancel(job_id)
    go.set()
    await running
    assert [exc.reason for exc in raised] == ["cancel"]
    job = await _job(queue, job_id)
    assert (job.status, job.error) == ("cancelled", None)


async def test_cancel_stops_a_handler_that_never_beats(queue: JobQueue) -> None:
    """The worker's heartbeat task learns of the cancel and cancels the handler's task."""
    started = asyncio.Event()
    interrupted: list[bool] = []

    async def build(ctx: JobContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # e.g. waiting for a subprocess
        except asyncio.CancelledError:
            interrupted.append(ctx.cancelled)  # where a handler kills its subprocess
            raise

    job_id = await queue.enqueue("build", {})
    running = asyncio.create_task(Worker(queue, {"build": build}, lease_seconds=SHORT_LEASE).run_once())
    async with asyncio.timeout(HANG_GUARD):
        await started.wait()
        assert await queue.request_cancel(job_id)
        await running
    assert interrupted == [True]
    assert (await _job(queue, job_id)).status == "cancelled"


async def test_a_worker_that_lost_its_lease_stops_and_leaves_the_job_alone(db: Database) -> None:
    """Recovery (on a clock far ahead) hands the job on while its worker still runs it; the
    worker's next heartbeat is refused, and it stops the handler without ending the job."""
    worker_queue, recovering = JobQueue(db), JobQueue(db, clock=lambda: time.time() + 3600)
    started = asyncio.Event()
    interrupted: list[bool] = []

    async def build(ctx: JobContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            interrupted.append(ctx.cancelled)
            raise

    job_id = await worker_queue.enqueue("build", {}, max_attempts=3)
    worker = Worker(worker_queue, {"build": build}, lease_seconds=SHORT_LEASE)
    running = asyncio.create_task(worker.run_once())
    async with asyncio.timeout(HANG_GUARD):
        await started.wait()
        assert await recovering.recover() == 1
        await running
    assert interrupted == [True]
    job = await _job(worker_queue, job_id)
    assert (job.status, job.attempt, job.error) == ("queued", 2, None)  # waiting for another worker


async def test_a_handler_learns_of_a_lost_lease_from_its_heartbeat(db: Database) -> None:
    worker_queue, recovering = JobQueue(db), JobQueue(db, clock=lambda: time.time() + 3600)
    started, go = asyncio.Event(), asyncio.Event()
    raised: list[JobCancelled] = []

    async def build(ctx: JobContext) -> None:
        started.set()
        await go.wait()
        try:
            await ctx.heartbeat()
        except JobCancelled as exc:
            raised.append(exc)
            raise

    job_id = await worker_queue.enqueue("build", {})
    running = asyncio.create_task(Worker(worker_queue, {"build": build}).run_once())
    async with asyncio.timeout(HANG_GUARD):
        await started.wait()
        assert await recovering.recover() == 1
        go.set()
        await running
    assert [exc.reason for exc in raised] == ["lost"]
    assert (await _job(worker_queue, job_id)).status == "queued"


async def test_run_works_through_the_queue_until_stopped(queue: JobQueue) -> None:
    done: list[int] = []
    first_three, late_one = asyncio.Event(), asyncio.Event()

    async def build(ctx: JobContext) -> None:
        done.append(ctx.job.payload["n"])
        if len(done) == 3:
            first_three.set()
        if len(done) == 4:
            late_one.set()

    ids = [await queue.enqueue("build", {"n": n}) for n in range(3)]
    other = await queue.enqueue("import", {})  # no handler here: left for another worker
    stop = asyncio.Event()
    # A poll period far longer than the test: the jobs enqueued below start because this
    # process announces them, the first three because the worker looks when it starts.
    running = asyncio.create_task(Worker(queue, {"build": build}, poll_seconds=3600).run(stop))
    async with asyncio.timeout(HANG_GUARD):
        await first_three.wait()
        late = await queue.enqueue("build", {"n": 3})
        await late_one.wait()
        stop.set()
        await running
    assert sorted(done) == [0, 1, 2, 3]
    assert [(await _job(queue, job_id)).status for job_id in [*ids, late]] == ["succeeded"] * 4
    assert (await _job(queue, other)).status == "queued"


async def test_concurrency_runs_jobs_side_by_side(queue: JobQueue) -> None:
    """Each handler waits until two run at once: with one at a time this would never end."""
    running_now, peak, finished = 0, 0, 0
    two_running, all_ran = asyncio.Event(), asyncio.Event()

    async def build(ctx: JobContext) -> None:
        nonlocal running_now, peak, finished
        running_now += 1
        peak = max(peak, running_now)
        if running_now == 2:
            two_running.set()
        await two_running.wait()
        running_now -= 1
        finished += 1
        if finished == 4:
            all_ran.set()

    ids = [await queue.enqueue("build", {}) for _ in range(4)]
    stop = asyncio.Event()
    worker = Worker(queue, {"build": build}, concurrency=2)
    task = asyncio.create_task(worker.run(stop))
    async with asyncio.timeout(HANG_GUARD):
        await all_ran.wait()
        stop.set()
        await task  # the last runs finish within the grace period and are recorded
    assert peak == 2  # never more than the concurrency
    assert [(await _job(queue, job_id)).status for job_id in ids] == ["succeeded"] * 4


async def test_stopping_puts_unfinished_jobs_back_in_the_queue(queue: JobQueue) -> None:
    started = asyncio.Event()

    async def build(ctx: JobContext) -> None:
        started.set()
        await asyncio.Event().wait()

    job_id = await queue.enqueue("build", {})
    stop = asyncio.Event()
    worker = Worker(queue, {"build": build}, shutdown_grace_seconds=0)
    task = asyncio.create_task(worker.run(stop))
    async with asyncio.timeout(HANG_GUARD):
        await started.wait()
        stop.set()
        await task
    job = await _job(queue, job_id)
    assert (job.status, job.attempt) == ("queued", 1)  # a shutdown is not a lost attempt
    assert await queue.claim(["build"], "next-worker", 30) is not None


async def test_stopping_lets_a_job_finish_within_the_grace_period(
    queue: JobQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, finish = asyncio.Event(), asyncio.Event()

    async def build(ctx: JobContext) -> None:
        started.set()
        await finish.wait()

    # The worker gives its running jobs the grace period by waiting for them with that timeout.
    grace = AsyncioSpy("wait", counts=lambda *args, **kwargs: kwargs == {"timeout": HANG_GUARD})
    monkeypatch.setattr(worker_module, "asyncio", grace)
    job_id = await queue.enqueue("build", {})
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(queue, {"build": build}, shutdown_grace_seconds=HANG_GUARD).run(stop))
    async with asyncio.timeout(HANG_GUARD):
        await started.wait()
        stop.set()
        await grace.reached(unless=task)
        assert not task.done()  # waiting for the running job
        finish.set()
        await task
    assert (await _job(queue, job_id)).status == "succeeded"


async def test_a_worker_without_handlers_waits_for_stop(queue: JobQueue) -> None:
    job_id = await queue.enqueue("build", {})
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(queue, {}).run(stop))
    await asyncio.sleep(0)
    stop.set()
    await task
    assert (await _job(queue, job_id)).status == "queued"


async def test_a_cancelled_run_once_ends_its_run_first(queue: JobQueue) -> None:
    """Whoever awaits a run may go away (cancelled); the handler is stopped and the job
    goes back to the queue, never left "running" behind."""
    started = asyncio.Event()
    interrupted: list[bool] = []

    async def build(ctx: JobContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            interrupted.append(ctx.cancelled)
            raise

    job_id = await queue.enqueue("build", {})
    running = asyncio.create_task(Worker(queue, {"build": build}).run_once())
    async with asyncio.timeout(HANG_GUARD):
        await started.wait()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert interrupted == [True]
    job = await _job(queue, job_id)
    assert (job.status, job.attempt) == ("queued", 1)


class FlakyQueue(JobQueue):
    """A queue whose database fails the first heartbeat."""

    failures = 1

    async def heartbeat(
        self, job_id: int, worker: str, lease_seconds: float, progress: dict[str, Any] | None = None
    ) -> bool:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("connection reset by peer")
        return await super().heartbeat(job_id, worker, lease_seconds, progress)


async def test_a_failed_heartbeat_within_the_lease_fails_no_job(db: Database) -> None:
    queue = FlakyQueue(db)

    async def build(ctx: JobContext) -> None:
        await ctx.heartbeat({"step": 1})  # the database hiccups: the run goes on
        await ctx.heartbeat({"step": 2})

    job_id = await queue.enqueue("build", {})
    assert await Worker(queue, {"build": build}).run_once()
    job = await _job(queue, job_id)
    assert (job.status, job.progress) == ("succeeded", {"step": 2})
