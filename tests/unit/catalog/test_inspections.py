"""Every pending version moves on: the sweep queues an inspection for a version that has none,
and fails one whose inspection runs were all lost (each worker died holding it). On a real
metadata database (SQLite and PostgreSQL); leases expire on a clock the test moves."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from dockyard.app.services import Services
from dockyard.catalog.inspections import ATTEMPTS, JOB_KIND
from dockyard.catalog.tables import image_events, image_versions
from dockyard.jobs.queue import JobQueue
from dockyard.jobs.tables import jobs
from dockyard.jobs.worker import Worker
from dockyard.storage.memory import MemoryDriver
from tests.support.catalog import gzip_layer, image_config
from tests.support.oci import oci_manifest
from tests.unit.jobs.conftest import Clock
from tests.unit.registry.factories import open_services, push_manifest

REPOSITORY = "lab/tool"


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    async with open_services(database_url, tmp_path, MemoryDriver()) as built:
        yield built


async def push(services: Services) -> None:
    """A tag push: the version is pending and its inspection queued (no worker runs it yet)."""
    await push_manifest(services, REPOSITORY, oci_manifest(image_config("amd64"), [gzip_layer("x")]), "v1")


async def version(services: Services) -> dict[str, object]:
    async with services.db.read() as conn:
        row = (await conn.execute(select(image_versions).where(image_versions.c.version == "v1"))).one()
    return dict(row._mapping)


async def inspection_jobs(services: Services) -> list[tuple[str, int]]:
    async with services.db.read() as conn:
        rows = await conn.execute(
            select(jobs.c.status, jobs.c.attempt).where(jobs.c.kind == JOB_KIND).order_by(jobs.c.id)
        )
        return [(row[0], row[1]) for row in rows]


def inspector(services: Services, queue: JobQueue | None = None) -> Worker:
    return Worker(queue or services.jobs, {JOB_KIND: services.inspections.handle}, lease_seconds=1.0)


async def test_a_pending_version_with_no_inspection_gets_one(services: Services) -> None:
    await push(services)
    async with services.db.write() as conn:  # as if the process died between the push and the queueing
        await conn.execute(delete(jobs))

    assert await services.inspections.reconcile() == 1

    assert await inspection_jobs(services) == [("queued", 1)]
    assert await services.inspections.reconcile() == 0  # queued once
    assert await inspector(services).run_once()
    assert (await version(services))["status"] == "available"


async def test_a_live_inspection_is_left_alone(services: Services) -> None:
    await push(services)

    assert await services.inspections.reconcile() == 0

    assert await inspection_jobs(services) == [("queued", 1)]
    assert (await version(services))["status"] == "pending"


async def test_a_version_whose_inspection_runs_were_all_lost_is_failed_with_the_reason(
    services: Services,
) -> None:
    await push(services)
    clock = Clock(time.time())
    queue = JobQueue(services.db, clock)
    for _ in range(ATTEMPTS):  # each run's worker dies: its lease runs out, recovery moves the job on
        assert await queue.claim([JOB_KIND], f"dead-{clock.now}", 1.0) is not None
        clock.advance(2.0)
        assert await queue.recover() == 1
    assert await inspection_jobs(services) == [("failed", ATTEMPTS)]

    assert await services.inspections.reconcile() == 1

    failed = await version(services)
    assert failed["status"] == "failed"
    assert failed["status_reason"] == (
        f"the inspection did not finish: the worker stopped (lost its lease) {ATTEMPTS} times"
    )
    async with services.db.read() as conn:
        last = (await conn.execute(select(image_events).order_by(image_events.c.id.desc()))).first()
    assert last is not None
    assert (last.kind, json.loads(last.detail)["status"]) == ("inspected", "failed")
    assert await services.inspections.reconcile() == 0


async def test_a_new_push_of_the_same_image_is_inspected_again(services: Services) -> None:
    await push(services)
    assert await inspector(services).run_once()
    assert (await version(services))["status"] == "available"

    await push(services)  # the same bytes under the same tag: pending again, a new job

    assert (await version(services))["status"] == "pending"
    assert await services.inspections.reconcile() == 0
    assert await inspector(services).run_once()
    assert (await version(services))["status"] == "available"
    assert await inspection_jobs(services) == [("succeeded", 1), ("succeeded", 1)]
