"""Rows of ``build_runs``: one per build, from queued to its end.

::

    queued ──handler starts──> running ──> succeeded | failed | cancelled
      │  ^                       │
      │  └── worker shut down ───┤ (the job goes back to the queue; attempt + 1 when it runs)
      └── cancel ──> cancelled   └── job failed or cancelled without the handler (a worker
                                     crashed and its attempts are used up): see ``settle``

Every transition to an end is conditional on the run not having ended already, so a late
write (a worker that lost its job) cannot overwrite what another recorded. A run's first start
and its end are webhook events (``build.started``, ``build.finished``), recorded in the same
transaction.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Select, select, update

from dockyard.auth.tables import workspaces
from dockyard.builds.tables import build_definitions, build_runs
from dockyard.builds.views import CANCELLED, FAILED, FINISHED, QUEUED, RUNNING, RunView, run_view
from dockyard.db.engine import Connection, Database
from dockyard.jobs.queue import JobQueue
from dockyard.webhooks.outbox import record


def select_runs() -> Any:
    """SELECT runs with their definition's name (``image``) and workspace."""
    return select(build_runs, build_definitions.c.name.label("image"), build_definitions.c.workspace_id).join(
        build_definitions, build_definitions.c.id == build_runs.c.definition_id
    )


async def row(conn: Connection, run_id: int) -> Any | None:
    return (await conn.execute(select_runs().where(build_runs.c.id == run_id))).mappings().first()


def view(m: Any) -> RunView:
    return run_view(m, m["image"])


async def create(
    conn: Connection,
    definition_id: int,
    *,
    version: str,
    content_hash: str,
    spec: dict[str, Any],
    started_by: str,
    started_by_id: int | None,
) -> int:
    run_id: int = (
        await conn.execute(
            build_runs.insert()
            .values(
                definition_id=definition_id,
                status=QUEUED,
                version=version,
                content_hash=content_hash,
                spec=json.dumps(spec, sort_keys=True),
                started_by=started_by,
                started_by_id=started_by_id,
                created_at=time.time(),
            )
            .returning(build_runs.c.id)
        )
    ).scalar_one()
    return run_id


async def set_job(db: Database, run_id: int, job_id: int) -> None:
    async with db.write() as conn:
        await conn.execute(update(build_runs).where(build_runs.c.id == run_id).values(job_id=job_id))


async def begin(db: Database, run_id: int) -> Any | None:
    """Mark the run running (attempt + 1); None if it has ended (cancelled while queued)."""
    async with db.write() as conn:
        result = await conn.execute(
            update(build_runs)
            .where(build_runs.c.id == run_id, build_runs.c.status.in_([QUEUED, RUNNING]))
            .values(status=RUNNING, started_at=time.time(), attempt=build_runs.c.attempt + 1)
        )
        if not result.rowcount:
            return None
        found = await row(conn, run_id)
        if found is not None and found["attempt"] == 1:
            await _tell(conn, found, "build.started")
        return found


async def _tell(conn: Connection, m: Any, name: str) -> None:
    """The run's webhook event ``name``, in the caller's transaction."""
    workspace = (
        await conn.execute(select(workspaces.c.name).where(workspaces.c.id == m["workspace_id"]))
    ).scalar()
    repository = f"{workspace}/{m['image']}"
    data = {
        "run": m["id"],
        "repository": repository,
        "version": m["version"],
        "status": m["status"],
        "started_by": m["started_by"],
        "attempt": m["attempt"],
    }
    if name == "build.finished":
        data |= {"reason": m["reason"], "digest": m["digest"], "pushed": json.loads(m["pushed"])}
        data["push_results"] = json.loads(m["push_results"])
    await record(
        conn, m["workspace_id"], name, f"{repository}/builds/{m['id']}", data, ordering_key=repository
    )


async def requeue(db: Database, run_id: int) -> None:
    """The worker is shutting down: the job goes back to the queue, and so does the run."""
    async with db.write() as conn:
        await conn.execute(
            update(build_runs)
            .where(build_runs.c.id == run_id, build_runs.c.status == RUNNING)
            .values(status=QUEUED)
        )


async def finish(db: Database, run_id: int, status: str, **values: Any) -> bool:
    """End the run with ``status`` unless it already ended; whether this call ended it."""
    async with db.write() as conn:
        return await finish_in(conn, run_id, status, **values)


async def finish_in(conn: Connection, run_id: int, status: str, **values: Any) -> bool:
    """:func:`finish` in the caller's transaction, so what the end brings with it (the image's
    "built" records) commits with it or not at all."""
    if "pushed" in values:
        values["pushed"] = json.dumps(values["pushed"])
    result = await conn.execute(
        update(build_runs)
        .where(build_runs.c.id == run_id, build_runs.c.status.not_in(FINISHED))
        .values(status=status, finished_at=time.time(), **values)
    )
    if not result.rowcount:
        return False
    found = await row(conn, run_id)
    if found is not None:
        await _tell(conn, found, "build.finished")
    return True


async def request_cancel(conn: Connection, run_id: int, who: str) -> None:
    await conn.execute(
        update(build_runs)
        .where(build_runs.c.id == run_id, build_runs.c.cancel_requested_at.is_(None))
        .values(cancel_requested_at=time.time(), cancelled_by=who)
    )


async def set_log_bytes(db: Database, run_id: int, size: int) -> None:
    async with db.write() as conn:
        await conn.execute(update(build_runs).where(build_runs.c.id == run_id).values(log_bytes=size))


async def settle(db: Database, queue: JobQueue, rows: list[Any]) -> bool:
    """Bring runs in line with their jobs when a worker stopped mid-build: back to queued
    when the job was queued again, failed (or cancelled) when the job ended without the
    handler recording it (the last attempt was lost). True if any changed."""
    changed = False
    for m in rows:
        if m["status"] in FINISHED or m["job_id"] is None:
            continue
        job = await queue.get(m["job_id"])
        if job is None:
            continue
        if job.status == "queued" and m["status"] == RUNNING:  # its worker stopped; it will run again
            await requeue(db, m["id"])
            changed = True
            continue
        if job.status not in ("failed", "cancelled", "succeeded"):
            continue
        if job.status == "cancelled" or m["cancel_requested_at"] is not None:
            changed |= await finish(db, m["id"], CANCELLED, reason="cancelled")
        else:
            reason = job.error or "the build's job ended without a result"
            changed |= await finish(db, m["id"], FAILED, reason=f"the build did not finish: {reason}")
    return changed


def jobs_still_needed() -> Select[Any]:
    """The jobs of build runs that have not ended, which the job queue must not purge.

    When a worker stops on a build's last attempt, only the job records the outcome until the
    run is next read and settled from it (:func:`settle`). An ended run keeps everything its
    history shows in its own row, so it needs its job no more. Few runs are unfinished at any
    time, and ix_build_runs_status finds them."""
    return select(build_runs.c.job_id).where(
        build_runs.c.status.not_in(FINISHED), build_runs.c.job_id.is_not(None)
    )
