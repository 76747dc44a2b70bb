"""GC running in the middle of a push, with no grace period to hide behind.

Each test stops a request at one step (see :mod:`tests.unit.registry.pausing`), runs a whole
collection with ``grace=0`` right there, lets the request go on and checks what a client
would get: the push succeeds and its blob can be read, or the upload can be continued.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from sqlalchemy import select

from dockyard.app.services import Services
from dockyard.oci.digest import Digest
from dockyard.registry import tables
from dockyard.registry.paths import blob_path, upload_dir
from tests.unit.registry.factories import age, open_services, push_blob, stream
from tests.unit.registry.pausing import Gate, PausingFilesystemDriver, PausingMemoryDriver

REPO = "team/app"
OTHER = "team/other"


async def blob_state(services: Services, digest: Digest) -> str | None:
    async with services.db.read() as conn:
        stmt = select(tables.blobs.c.state).where(tables.blobs.c.digest == digest)
        row = (await conn.execute(stmt)).first()
    return None if row is None else str(row[0])


async def test_gc_between_the_claim_and_the_link_of_an_upload_keeps_its_blob(
    database_url: str, tmp_path: Path
) -> None:
    """The upload has claimed the blob and is moving its bytes into place when GC runs: the
    blob has no link yet and its claim is older than GC's cutoff, yet it must stay."""
    gate = Gate("move", "blobs/")
    async with open_services(database_url, tmp_path, PausingMemoryDriver(gate), grace=0) as services:
        data = os.urandom(5000)
        digest = Digest.of(data)
        upload = asyncio.create_task(services.uploads.monolithic(REPO, digest, stream(data), len(data)))
        await asyncio.wait_for(gate.reached.wait(), 10)
        await age(services.db, 60)  # the claim is as old as a slow move makes it

        report = await services.gc.run()

        gate.release.set()
        assert await asyncio.wait_for(upload, 10) == digest
        assert digest not in report.blobs
        assert await blob_state(services, digest) == "live"
        assert await services.blobs.size_in(REPO, digest) == len(data)
        assert await services.blobs.read(REPO, digest, len(data)) == data


async def test_gc_between_the_claim_and_the_link_of_an_adopted_blob_keeps_it(
    database_url: str, tmp_path: Path
) -> None:
    """An archive's image adopts a blob the registry stores without a link (its repository
    let go of it): once claimed, GC must not take the bytes the adoption found in place."""
    gate = Gate("stat", "blobs/")
    async with open_services(database_url, tmp_path, PausingMemoryDriver(gate), grace=0) as services:
        data = os.urandom(3000)
        digest = await push_blob(services, REPO, data)
        await services.blobs.unlink(REPO, digest)
        await age(services.db, 60)
        adoption = asyncio.create_task(services.blobs.adopt(OTHER, digest, len(data), None))
        await asyncio.wait_for(gate.reached.wait(), 10)
        await age(services.db, 60)

        report = await services.gc.run()

        gate.release.set()
        assert await asyncio.wait_for(adoption, 10) is False  # found stored: nothing moved
        assert digest not in report.blobs
        assert await services.blobs.read(OTHER, digest, len(data)) == data


async def test_a_claim_left_by_a_crash_lapses_and_gc_collects_the_blob(services: Services) -> None:
    """A process that died between claim and link leaves an unlinked row behind: once its
    claim has lapsed, GC collects it like any other unreferenced blob."""
    digest = Digest.of(b"claimed by a process that died")
    await services.blobs.claim(digest, 30)
    await age(services.db, 2 * 3600)

    kept = await services.gc.run()
    assert digest not in kept.blobs, "the claim still holds"

    async with services.db.write() as conn:
        await conn.execute(tables.blob_claims.update().values(expires_at=time.time() - 1))
    collected = await services.gc.run()
    assert digest in collected.blobs
    assert await blob_state(services, digest) is None


async def test_the_orphan_upload_sweep_leaves_an_upload_being_started_alone(
    database_url: str, tmp_path: Path
) -> None:
    """GC lists upload folders while a session is being created: its folder must not be
    taken for an orphan. The client then sends its chunks and completes the blob."""
    root = tmp_path / "storage"
    gate = Gate("writer", "uploads/")
    async with open_services(
        database_url, tmp_path, PausingFilesystemDriver(root, gate), grace=0
    ) as services:
        starting = asyncio.create_task(services.uploads.start(REPO))
        await asyncio.wait_for(gate.reached.wait(), 10)
        folder = root / next((root / "uploads").iterdir()).relative_to(root)
        old = time.time() - 60
        os.utime(folder, (old, old))

        await services.gc.run()

        gate.release.set()
        session = await asyncio.wait_for(starting, 10)
        assert folder == root / upload_dir(session.id)
        data = os.urandom(2000)
        status = await services.uploads.append(REPO, session.id, stream(data[:700]), 0, 700)
        assert status.offset == 700
        digest = await services.uploads.finish(REPO, session.id, Digest.of(data), stream(data[700:]), None)
        assert (root / blob_path(digest)).read_bytes() == data
