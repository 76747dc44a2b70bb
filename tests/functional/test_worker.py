"""A worker process killed while it runs a job: the job is retried, then failed, never stuck.

The killed process is a small script that runs a :class:`~dockyard.jobs.worker.Worker`
with a handler of its own (one that reports progress and then holds the job), with a 2 s
lease; it is SIGKILLed mid-job. What recovers the job is the real thing, in its own process:
``dockyard worker`` or ``dockyard serve``, with a short recovery period. The test only waits
for the state each step must reach (polling the database, with a deadline).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from dockyard.db.engine import Database
from dockyard.jobs.queue import Job, JobQueue
from tests.support.servers import postgres_database, private_dockyard

DEADLINE = 60.0  # seconds for each awaited state; only reached if something is broken

HOLDER = """
import asyncio, os, sys
from dockyard.db.engine import Database
from dockyard.jobs.queue import JobQueue
from dockyard.jobs.worker import Worker

async def hold(ctx):
    await ctx.heartbeat({"pid": os.getpid(), "attempt": ctx.job.attempt})
    await asyncio.Event().wait()  # a long build

async def main():
    worker = Worker(JobQueue(Database(sys.argv[1])), {"test.hold": hold}, lease_seconds=2.0, poll_seconds=0.1)
    await worker.run(asyncio.Event())

asyncio.run(main())
"""


def _environment(data_dir: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env.update({"DOCKYARD_DATA_DIR": str(data_dir), "DOCKYARD_JOB_RECOVER_SECONDS": "0.2"})
    if database_url:
        env["DOCKYARD_DATABASE_URL"] = database_url
    return env


@contextmanager
def _process(args: list[str], log_path: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def _wait_for_job(queue: JobQueue, job_id: int, what: str, ready: Callable[[Job], bool]) -> Job:
    """Poll the database until ``ready(job)`` holds."""
    deadline = time.monotonic() + DEADLINE
    while True:
        job = await queue.get(job_id)
        assert job is not None
        if ready(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job never became {what}: {job}")
        await asyncio.sleep(0.1)


def _wait_for_log(path: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + DEADLINE
    while text not in path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{text!r} never appeared:\n{path.read_text(errors='replace')}")
        time.sleep(0.1)


async def _kill_a_worker_mid_job(
    queue: JobQueue, job_id: int, url: str, tmp_path: Path, env: dict[str, str]
) -> None:
    attempt = (await _wait_for_job(queue, job_id, "queued", lambda j: j.status == "queued")).attempt
    with _process([sys.executable, "-c", HOLDER, url], tmp_path / f"holder-{attempt}.log", env) as holder:
        job = await _wait_for_job(
            queue, job_id, "running in the holder", lambda j: j.progress.get("pid") == holder.pid
        )
        assert (job.status, job.attempt, job.progress["attempt"]) == ("running", attempt, attempt)
        holder.send_signal(signal.SIGKILL)  # a crash: no shutdown code runs, the lease stays behind
        holder.wait()


async def _scenario(url: str, tmp_path: Path, env: dict[str, str], *, until_failed: bool) -> None:
    """Kill a worker mid-job: the job goes back to the queue; kill the next: it fails."""
    db = Database(url)
    try:
        queue = JobQueue(db)
        job_id = await queue.enqueue("test.hold", {"image": "lab/tool"}, max_attempts=2)

        await _kill_a_worker_mid_job(queue, job_id, url, tmp_path, env)
        retried = await _wait_for_job(queue, job_id, "queued again", lambda j: j.status != "running")
        assert (retried.status, retried.attempt, retried.error) == ("queued", 2, None)
        if not until_failed:
            return
        await _kill_a_worker_mid_job(queue, job_id, url, tmp_path, env)
        failed = await _wait_for_job(queue, job_id, "failed", lambda j: j.status != "running")
        assert (failed.status, failed.attempt) == ("failed", 2)
        assert failed.error == "the worker stopped (lost its lease) 2 times"
    finally:
        await db.dispose()


@contextmanager
def _database(db_kind: str, data_dir: Path) -> Iterator[str]:
    """The database URL for the test's own data: a fresh PostgreSQL database, or SQLite there."""
    if db_kind == "postgres":
        with postgres_database() as url:
            yield url
    else:
        yield f"sqlite+aiosqlite:///{data_dir / 'dockyard.db'}"


def test_dockyard_worker_recovers_a_killed_workers_job_then_stops_on_sigterm(
    db_kind: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    with ExitStack() as stack:
        url = stack.enter_context(_database(db_kind, data_dir))
        env = _environment(data_dir, url if db_kind == "postgres" else "")
        log_path = tmp_path / "worker.log"
        worker = stack.enter_context(_process([sys.executable, "-m", "dockyard", "worker"], log_path, env))
        _wait_for_log(log_path, "worker (schema", worker)  # migrated, running

        asyncio.run(_scenario(url, tmp_path, env, until_failed=True))

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=DEADLINE) == 0, log_path.read_text()
        assert "worker stopped" in log_path.read_text()


def test_dockyard_serve_recovers_a_killed_workers_job(db_kind: str, tmp_path: Path) -> None:
    """The server runs the same recovery (by default), so jobs move on without a separate worker."""
    extra = {"DOCKYARD_JOB_RECOVER_SECONDS": "0.2", "DOCKYARD_WORKERS": "1"}
    with private_dockyard(db_kind, tmp_path, extra) as (server, _restart):
        url = server.database_url or f"sqlite+aiosqlite:///{server.data_dir / 'dockyard.db'}"
        asyncio.run(_scenario(url, tmp_path, server.env, until_failed=False))
